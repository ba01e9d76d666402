#include "bench/magnetar_bench/requests.h"

#include <gtest/gtest.h>

#include <vector>

namespace magnetar::bench {
namespace {

Target LoopbackTarget() {
  Target t;
  t.endpoint = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 9100);
  t.host_header = "127.0.0.1:9100";
  t.base_path = "/relay";
  return t;
}

TEST(RequestsTest, PublishRequestIsStampedInPlace) {
  PreparedRequest r = PublishRequest(LoopbackTarget(), "tok", "jobs", 64);
  EXPECT_EQ(r.bytes.rfind("POST /relay/api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n", 0), 0u);
  EXPECT_NE(r.bytes.find("Authorization: Bearer tok\r\n"), std::string::npos);
  const size_t body = r.bytes.find("\r\n\r\n") + 4;
  const std::string length = "Content-Length: " + std::to_string(r.bytes.size() - body) + "\r\n";
  EXPECT_NE(r.bytes.find(length), std::string::npos);
  EXPECT_EQ(r.bytes.size() - body, std::string(R"({"topic":"jobs","payload":)").size() + 64 + 1);
  r.Stamp(12345678901234567890ull);
  EXPECT_EQ(FindStamp(r.bytes), 12345678901234567890ull);
  r.Stamp(42);
  EXPECT_EQ(FindStamp(r.bytes), 42u);
}

TEST(RequestsTest, BulkRequestStampsTheFirstMessage) {
  PreparedRequest r = BulkRequest(LoopbackTarget(), "tok", "jobs", 40, 3);
  r.Stamp(7);
  std::vector<uint64_t> stamps;
  ForEachStamp(r.bytes, [&](uint64_t v) { stamps.push_back(v); });
  EXPECT_EQ(stamps, (std::vector<uint64_t>{7, 0, 0}));
}

TEST(RequestsTest, StampsWithWhitespaceAndNoise) {
  std::vector<uint64_t> stamps;
  ForEachStamp(R"({"t" : "15","tt":"3","t":"x","t":16,"t": "17"})",
               [&](uint64_t v) { stamps.push_back(v); });
  EXPECT_EQ(stamps, (std::vector<uint64_t>{15, 17}));
}

TEST(RequestsTest, FrameTypeAndIds) {
  EXPECT_EQ(FrameType(R"({"type":"message","message_id":"1-2","payload":{"type":"x"}})"), "message");
  EXPECT_EQ(FrameType(R"({ "type" : "subscribed", "topics":["a"]})"), "subscribed");
  EXPECT_EQ(FrameType(R"({"messages":[]})"), "");
  EXPECT_EQ(LastMessageId(R"({"messages":[{"message_id":"1-1"},{"message_id":"1-2"}]})"), "1-2");
  EXPECT_EQ(LastMessageId(R"({"messages":[]})"), "");
  EXPECT_EQ(JsonStringField(R"({"access_token": "abc","token_type":"bearer"})", "access_token"), "abc");
}

TEST(RequestsTest, PollRequestCarriesTheCursor) {
  std::string out;
  PollRequest(out, LoopbackTarget(), "tok", "jobs", "5-6", 30);
  EXPECT_EQ(out.rfind("POST /relay/messages/poll HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(out.find(R"({"topics":["jobs"],"since":{"jobs":"5-6"},"timeout":30})"), std::string::npos);
  PollRequest(out, LoopbackTarget(), "tok", "jobs", "", 30);
  EXPECT_NE(out.find(R"({"topics":["jobs"],"timeout":30})"), std::string::npos);
}

}  // namespace
}  // namespace magnetar::bench

namespace magnetar::bench {
namespace {

TEST(PulsarWsRequestsTest, HandshakeCarriesTheTokenAsAQueryParameter) {
  Target t;
  t.endpoint = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 9100);
  t.host_header = "127.0.0.1:9100";
  const std::string p = PulsarWsHandshake(t, "producer", "bench", "jobs", "", "a.b-c_d", "");
  EXPECT_EQ(p.rfind("GET /ws/v2/producer/persistent/bench/default/jobs?token=a.b-c_d HTTP/1.1\r\n", 0),
            0u);
  EXPECT_NE(p.find("Upgrade: websocket\r\n"), std::string::npos);
  const std::string c = PulsarWsHandshake(t, "consumer", "bench", "jobs", "sub", "tok",
                                          "subscriptionType=Shared");
  EXPECT_EQ(c.rfind("GET /ws/v2/consumer/persistent/bench/default/jobs/sub?token=tok&"
                    "subscriptionType=Shared HTTP/1.1\r\n", 0),
            0u);
}

TEST(PulsarWsRequestsTest, PublishFrameIsStampedInThePropertiesAndTheContext) {
  PreparedRequest f = PulsarWsPublishFrame(64);
  f.Stamp(12345);
  EXPECT_EQ(FindStamp(f.bytes), 12345u);  // what the consumer frame's properties carry
  EXPECT_EQ(ContextStamp(f.bytes), 12345u);
  // 64 bytes of JSON -> 88 base64 characters.
  EXPECT_EQ(JsonStringField(f.bytes, "payload").size(), 88u);
  EXPECT_EQ(ContextStamp(R"({"result":"ok","messageId":"CAEQAg==","context":"00000000000000000042"})"),
            42u);
  EXPECT_EQ(ContextStamp(R"({"result":"ok","messageId":"CAEQAg=="})"), std::nullopt);
  EXPECT_EQ(ContextStamp(R"({"result":"ok","context":"ab"})"), std::nullopt);
}

TEST(PulsarWsRequestsTest, Base64AndTheTokenUsername) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  // {"sub":"1","username":"bench"} base64url without padding.
  EXPECT_EQ(TokenUsername("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwidXNlcm5hbWUiOiJiZW5jaCJ9.sig"),
            "bench");
  EXPECT_EQ(TokenUsername("not-a-jwt"), "");
}

}  // namespace
}  // namespace magnetar::bench
