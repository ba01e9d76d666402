#include "http/http_service.h"

#include <algorithm>
#include <cctype>

namespace magnetar::http {

namespace {

std::string_view StripPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {  // [::1]:8080
    auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(':') == colon) return host.substr(0, colon);
  return host;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

bool HttpService::HostTrusted(std::string_view host_header) const {
  const std::string_view host = StripPort(host_header);
  for (const auto& pattern : options_.trusted_hosts) {
    if (pattern == "*") return true;
    if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
      std::string_view suffix = std::string_view(pattern).substr(1);  // ".example.com"
      if (host.size() > suffix.size() && IEquals(host.substr(host.size() - suffix.size()), suffix))
        return true;
    } else if (IEquals(host, pattern)) {
      return true;
    }
  }
  return false;
}

bool HttpService::OriginAllowed(std::string_view origin) const {
  if (origin.empty()) return false;
  for (const auto& allowed : options_.allowed_origins) {
    // "*" = any origin, as Starlette's allow_origins=["*"] (a startup guard refuses it off
    // loopback unless insecure defaults are allowed).
    if (allowed == origin || allowed == "*") return true;
  }
  return false;
}

bool IsSameOrigin(const RequestContext& ctx) {
  const std::string_view origin = ctx.Header(boost::beast::http::field::origin);
  const std::string_view host = ctx.Header(boost::beast::http::field::host);
  const std::string_view scheme = ctx.is_tls ? "https://" : "http://";
  if (host.empty() || origin.size() != scheme.size() + host.size()) return false;
  if (origin.substr(0, scheme.size()) != scheme) return false;
  const std::string_view origin_host = origin.substr(scheme.size());
  for (size_t i = 0; i < host.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(origin_host[i])) !=
        std::tolower(static_cast<unsigned char>(host[i]))) {
      return false;
    }
  }
  return true;
}

Response NotFoundResponse() { return Response::Json(404, R"({"detail":"Not Found"})"); }
Response MethodNotAllowedResponse() {
  return Response::Json(405, R"({"detail":"Method Not Allowed"})");
}
Response InternalErrorResponse() {
  return Response::Json(500, R"({"error":"INTERNAL_ERROR","message":"An internal error occurred"})");
}
Response PayloadTooLargeResponse() {
  return Response::Json(
      413, R"({"error":"PAYLOAD_TOO_LARGE","message":"request body exceeds configured limit"})");
}

}  // namespace magnetar::http
