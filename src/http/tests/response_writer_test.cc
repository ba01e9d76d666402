#include "http/response_writer.h"

#include <gtest/gtest.h>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <sstream>

namespace magnetar::http {
namespace {

namespace bhttp = boost::beast::http;

// What Beast's own serializer writes for the same message, built the way the session used to
// build it: the flat writer must be byte-for-byte the same.
std::string BeastBytes(const Response& response, const ResponseFraming& framing) {
  bhttp::response<bhttp::string_body> res;
  res.version(11);
  res.result(response.status);
  if (!response.content_type.empty()) res.set(bhttp::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) res.insert(name, value);
  if (!framing.allowed_origin.empty()) {
    res.set(bhttp::field::access_control_allow_origin, framing.allowed_origin);
    res.set(bhttp::field::vary, "Origin");
  }
  res.body() = response.body;
  res.keep_alive(framing.keep_alive);
  res.prepare_payload();
  std::ostringstream out;
  out << res;
  return out.str();
}

void ExpectSameAsBeast(const Response& response, const ResponseFraming& framing) {
  EXPECT_EQ(SerializeResponse(response, framing), BeastBytes(response, framing));
}

TEST(ResponseWriterTest, JsonCreated) {
  ExpectSameAsBeast(Response::Json(201, R"({"message_id":"1-0","topic":"t"})"), {});
  EXPECT_EQ(SerializeResponse(Response::Json(201, "{}"), {}),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
}

TEST(ResponseWriterTest, HeadersInOrderWithCorsAndClose) {
  Response r = Response::Json(429, R"({"detail":"Too many requests"})")
                   .WithHeader("Retry-After", "7")
                   .WithHeader("Cache-Control", "no-store");
  ExpectSameAsBeast(r, {.keep_alive = false, .allowed_origin = "https://app.example"});
  ExpectSameAsBeast(r, {.keep_alive = true, .allowed_origin = "https://app.example"});
}

// RFC 9110 §8.6: no Content-Length on 1xx and 204 (Beast 1.81 wrote `Content-Length: 0`).
TEST(ResponseWriterTest, NoContentHasNoLength) {
  EXPECT_EQ(SerializeResponse(Response::Empty(204), {}), "HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(SerializeResponse(Response::Empty(304), {.keep_alive = false}),
            "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n");
  // A body handed in by mistake is not sent either: it would be read as the next response.
  EXPECT_EQ(SerializeResponse(Response::Text(204, "oops"), {}),
            "HTTP/1.1 204 No Content\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
}

TEST(ResponseWriterTest, EmptyBodiesAndOtherStatuses) {
  ExpectSameAsBeast(Response::Empty(307).WithHeader("Location", "/api/v1/topics/"), {});
  ExpectSameAsBeast(Response::Html(200, "<!doctype html><p>hi</p>"), {});
  ExpectSameAsBeast(Response::Text(503, "down"), {.keep_alive = false});
  ExpectSameAsBeast(Response::Json(207, "[]"), {});
  ExpectSameAsBeast(Response::Json(422, "{}"), {});
}

TEST(ResponseWriterTest, LineBreaksInHeaderValuesCannotSplitTheHeaderBlock) {
  Response r = Response::Empty(307).WithHeader("Location", "/a\r\nSet-Cookie: x=1");
  const std::string bytes = SerializeResponse(r, {});
  EXPECT_EQ(bytes.find("\r\nSet-Cookie"), std::string::npos);
  EXPECT_NE(bytes.find("Location: /aSet-Cookie: x=1\r\n"), std::string::npos);
}

}  // namespace
}  // namespace magnetar::http
