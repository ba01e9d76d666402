#include "http/target.h"

#include <array>
#include <boost/url/parse.hpp>

namespace magnetar::http {

namespace {

// The bytes a path may hold without percent-encoding (RFC 3986 pchar minus '%', plus '/').
constexpr std::array<bool, 256> kPlainPathBytes = [] {
  std::array<bool, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (unsigned char c : std::string_view("-._~!$&'()*+,;=:@/")) table[c] = true;
  return table;
}();

// The common target, a path of plain bytes without a query ("/api/v1/messages"), split without
// the general parser, which costs a few thousand instructions per request. Nothing is decoded
// (there is no '%'), so the result is what the general parser gives. False: not that form.
bool ParsePlainPath(std::string_view target, RequestContext& ctx, ParsedTarget& out) {
  if (target.empty() || target.front() != '/') return false;
  for (unsigned char c : target) {
    if (!kPlainPathBytes[c]) return false;
  }
  ctx.path = std::string(target);
  out.raw_path = ctx.path;
  out.trailing_slash = target.size() > 1 && target.back() == '/';
  size_t start = 1;
  while (start <= target.size()) {
    size_t end = target.find('/', start);
    if (end == std::string_view::npos) end = target.size();
    if (end > start) out.segments.emplace_back(target.substr(start, end - start));
    start = end + 1;
  }
  return true;
}

}  // namespace

namespace detail {

bool ParseTargetGeneral(std::string_view target, RequestContext& ctx, ParsedTarget& out) {
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

}  // namespace detail

bool ParseTarget(std::string_view target, RequestContext& ctx, ParsedTarget& out) {
  return ParsePlainPath(target, ctx, out) || detail::ParseTargetGeneral(target, ctx, out);
}

}  // namespace magnetar::http
