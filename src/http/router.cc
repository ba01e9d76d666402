#include "http/router.h"

namespace magnetar::http {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

void Router::Add(Verb method, std::string path_template, Handler handler) {
  const bool trailing = path_template.size() > 1 && path_template.back() == '/';
  routes_.push_back(Route{method, SplitPath(path_template), trailing, std::move(handler)});
}

bool Router::SegmentsMatch(const Route& r, const std::vector<std::string>& segments,
                           std::vector<std::pair<std::string, std::string>>* params) {
  if (r.segments.size() != segments.size()) return false;
  std::vector<std::pair<std::string, std::string>> captured;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& t = r.segments[i];
    if (t.size() > 2 && t.front() == '{' && t.back() == '}') {
      if (segments[i].empty()) return false;
      captured.emplace_back(t.substr(1, t.size() - 2), segments[i]);
    } else if (t != segments[i]) {
      return false;
    }
  }
  if (params) *params = std::move(captured);
  return true;
}

Router::Match Router::Find(Verb method, const std::vector<std::string>& segments,
                           bool trailing_slash, std::string_view raw_path) const {
  Match match;
  bool path_known = false;
  for (const auto& r : routes_) {
    if (r.trailing_slash != trailing_slash) continue;
    std::vector<std::pair<std::string, std::string>> params;
    if (!SegmentsMatch(r, segments, &params)) continue;
    path_known = true;
    // HEAD is answered like GET (FastAPI does too for routes declared GET? it does not; keep strict).
    if (r.method == method) {
      match.kind = Match::Kind::kFound;
      match.handler = &r.handler;
      match.params = std::move(params);
      return match;
    }
  }
  if (path_known) {
    match.kind = Match::Kind::kMethodNotAllowed;
    return match;
  }
  if (trailing_slash) {
    for (const auto& r : routes_) {
      if (!r.trailing_slash && SegmentsMatch(r, segments, nullptr)) {
        match.kind = Match::Kind::kRedirect;
        std::string_view to = raw_path.substr(0, raw_path.size() - 1);
        // Empty segments are ignored when matching, but "//api/v1/topics" in a Location header is
        // protocol-relative (host "api"): an open redirect. Keep a single leading slash.
        while (to.size() > 1 && to[0] == '/' && to[1] == '/') to.remove_prefix(1);
        match.redirect_to = std::string(to);
        return match;
      }
    }
  }
  return match;
}

}  // namespace magnetar::http
