#include "http/target.h"

#include <boost/url/parse.hpp>

namespace magnetar::http {

bool ParseTarget(std::string_view target, RequestContext& ctx, ParsedTarget& out) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return false;
  ctx.path = url->path();
  out.raw_path = std::string(url->encoded_path());
  out.trailing_slash = out.raw_path.size() > 1 && out.raw_path.back() == '/';
  for (auto seg : url->segments()) {
    if (!seg.empty()) out.segments.push_back(seg);
  }
  for (auto param : url->params()) ctx.query.emplace_back(param.key, param.value);
  return true;
}

}  // namespace magnetar::http
