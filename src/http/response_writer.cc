#include "http/response_writer.h"

#include <boost/beast/http/status.hpp>

#include <charconv>

namespace magnetar::http {
namespace {

// Header names and values come from handlers, not from clients, but a stray CR or LF would split
// the header block, so they are dropped rather than trusted.
void AppendHeaderText(std::string& out, std::string_view text) {
  for (char c : text) {
    if (c != '\r' && c != '\n') out.push_back(c);
  }
}

void AppendHeader(std::string& out, std::string_view name, std::string_view value) {
  AppendHeaderText(out, name);
  out.append(": ");
  AppendHeaderText(out, value);
  out.append("\r\n");
}

bool HasNoBody(unsigned status) { return status < 200 || status == 204 || status == 304; }

void AppendNumber(std::string& out, size_t n) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, end);
}

}  // namespace

std::string SerializeResponse(const Response& response, const ResponseFraming& framing) {
  const auto reason =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(response.status));
  const bool no_body = HasNoBody(response.status);
  std::string out;
  size_t headers_size = 0;
  for (const auto& [name, value] : response.headers) headers_size += name.size() + value.size() + 4;
  out.reserve(128 + response.content_type.size() + headers_size + framing.allowed_origin.size() +
              (no_body ? 0 : response.body.size()));
  out.append("HTTP/1.1 ");
  AppendNumber(out, response.status);
  out.push_back(' ');
  out.append(reason.data(), reason.size());
  out.append("\r\n");
  if (!response.content_type.empty()) AppendHeader(out, "Content-Type", response.content_type);
  for (const auto& [name, value] : response.headers) AppendHeader(out, name, value);
  if (!framing.allowed_origin.empty()) {
    AppendHeader(out, "Access-Control-Allow-Origin", framing.allowed_origin);
    AppendHeader(out, "Vary", "Origin");
  }
  if (!framing.keep_alive) out.append("Connection: close\r\n");
  if (!no_body) {
    out.append("Content-Length: ");
    AppendNumber(out, response.body.size());
    out.append("\r\n");
  }
  out.append("\r\n");
  if (!no_body) out.append(response.body);
  return out;
}

}  // namespace magnetar::http
