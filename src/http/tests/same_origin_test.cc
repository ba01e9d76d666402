#include <gtest/gtest.h>

#include "http/http_service.h"

namespace magnetar::http {
namespace {

RequestContext With(std::string_view origin, std::string_view host, bool tls = false) {
  RequestContext ctx;
  if (!origin.empty()) ctx.request.set(boost::beast::http::field::origin, origin);
  if (!host.empty()) ctx.request.set(boost::beast::http::field::host, host);
  ctx.is_tls = tls;
  return ctx;
}

TEST(SameOriginTest, OriginEqualToSchemeAndHostIsSameOrigin) {
  EXPECT_TRUE(IsSameOrigin(With("http://127.0.0.1:9100", "127.0.0.1:9100")));
  EXPECT_TRUE(IsSameOrigin(With("http://LocalHost:9100", "localhost:9100")));
  EXPECT_TRUE(IsSameOrigin(With("https://relay.example.org", "relay.example.org", true)));
}

TEST(SameOriginTest, AnythingElseIsNot) {
  EXPECT_FALSE(IsSameOrigin(With("", "127.0.0.1:9100")));
  EXPECT_FALSE(IsSameOrigin(With("http://127.0.0.1:9100", "")));
  EXPECT_FALSE(IsSameOrigin(With("http://127.0.0.1:9101", "127.0.0.1:9100")));  // another port
  EXPECT_FALSE(IsSameOrigin(With("https://127.0.0.1:9100", "127.0.0.1:9100")));  // scheme
  EXPECT_FALSE(IsSameOrigin(With("http://127.0.0.1:9100", "127.0.0.1:9100", true)));
  EXPECT_FALSE(IsSameOrigin(With("http://evil.example", "127.0.0.1:9100")));
  EXPECT_FALSE(IsSameOrigin(With("http://127.0.0.1:9100.evil", "127.0.0.1:9100")));
  EXPECT_FALSE(IsSameOrigin(With("null", "127.0.0.1:9100")));
}

}  // namespace
}  // namespace magnetar::http
