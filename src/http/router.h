#pragma once

// Router: method + path template ("/api/v1/topics/{topic_name}/messages") -> handler.
// Built once at start-up, then read-only (safe to share between threads).

#include <string>
#include <string_view>
#include <vector>

#include "http/types.h"

namespace magnetar::http {

class Router {
 public:
  void Add(Verb method, std::string path_template, Handler handler);

  struct Match {
    enum class Kind { kFound, kNotFound, kMethodNotAllowed, kRedirect } kind = Kind::kNotFound;
    const Handler* handler = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
    std::string redirect_to;  // kRedirect: the path without its trailing slash
  };

  // `segments` are the decoded path segments ("/a/b" -> {"a","b"}); `trailing_slash` tells
  // whether the raw path ended in '/' (FastAPI answers those with a 307 to the slash-less path).
  Match Find(Verb method, const std::vector<std::string>& segments, bool trailing_slash,
             std::string_view raw_path) const;

 private:
  struct Route {
    Verb method;
    std::vector<std::string> segments;  // "{name}" = capture one segment
    bool trailing_slash;
    Handler handler;
  };
  static bool SegmentsMatch(const Route& r, const std::vector<std::string>& segments,
                            std::vector<std::pair<std::string, std::string>>* params);

  std::vector<Route> routes_;
};

std::vector<std::string> SplitPath(std::string_view path);

}  // namespace magnetar::http
