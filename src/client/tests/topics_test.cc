// HttpRelayClient against a scripted loopback server (spec clients.md §A.6, §A.7 "Topics" /
// "fetch_messages", §A.10.12).

#include "client/topics.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "client/errors.h"
#include "client/tests/support/fake_http_server.h"

namespace magnetar::client {
namespace {

namespace json = boost::json;
using testsupport::FakeHttpServer;
using testsupport::Reply;

const std::string kMe = R"({"user_id":"u-1","username":"alice"})";
const std::string kMine = R"({"topic_id":"x","topic_name":"jobs","owner_id":"u-1"})";
const std::string kTheirs = R"({"topic_id":"x","topic_name":"jobs","owner_id":"u-2"})";

template <class E>
std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception> ") + e.what();
  }
  return "<no exception>";
}

TEST(CreateOrVerifyTopic, CreatedIsExactlyOnePost) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/topics", {Reply{201, kMine}});
  HttpRelayClient client(server.url());
  client.create_or_verify_topic("AT", "jobs");
  auto all = server.requests();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].header("authorization"), "Bearer AT");
  EXPECT_EQ(json::parse(all[0].body), json::parse(R"({"topic_name":"jobs"})"));
}

TEST(CreateOrVerifyTopic, ExistingAndOursSucceeds) {
  for (int status : {400, 409}) {
    FakeHttpServer server;
    server.script("POST", "/api/v1/topics",
                  {Reply{status, R"({"detail":"Topic 'a/b' already exists"})"}});
    server.script("GET", "/auth/me", {Reply{200, kMe}});
    server.script("GET", "/api/v1/topics/a%2Fb", {Reply{200, kMine}});
    HttpRelayClient client(server.url());
    EXPECT_NO_THROW(client.create_or_verify_topic("AT", "a/b"));
    EXPECT_FALSE(client.ensure_topic("AT", "a/b"));
    // The raw name in the body, the quoted one in the path.
    EXPECT_EQ(json::parse(server.requests("POST", "/api/v1/topics")[0].body),
              json::parse(R"({"topic_name":"a/b"})"));
  }
}

TEST(CreateOrVerifyTopic, ForeignOwnerIsAConflict) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/topics", {Reply{409, "{}"}});
  server.script("GET", "/auth/me", {Reply{200, kMe}});
  server.script("GET", "/api/v1/topics/jobs", {Reply{200, kTheirs}});
  HttpRelayClient client(server.url());
  try {
    client.create_or_verify_topic("AT", "jobs");
    ADD_FAILURE();
  } catch (const TopicOwnershipConflict& e) {
    EXPECT_NE(std::string(e.what()).find("owned by another user"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("u-2"), std::string::npos);
    EXPECT_EQ(e.owner(), "u-2");
  }
}

TEST(CreateOrVerifyTopic, UnreadableExistingTopicIsAConflict) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/topics", {Reply{409, "{}"}});
  server.script("GET", "/auth/me", {Reply{200, kMe}});
  server.script("GET", "/api/v1/topics/jobs", {Reply{403, "{}"}});
  HttpRelayClient client(server.url());
  std::string m =
      ErrorOf<TopicOwnershipConflict>([&] { client.create_or_verify_topic("AT", "jobs"); });
  EXPECT_NE(m.find("cannot read it"), std::string::npos) << m;
  EXPECT_NE(m.find("403"), std::string::npos);
}

TEST(CreateOrVerifyTopic, OtherStatusesAreClientErrors) {
  for (int status : {401, 403, 422, 500}) {
    FakeHttpServer server;
    server.script("POST", "/api/v1/topics", {Reply{status, "{}"}});
    HttpRelayClient client(server.url());
    try {
      client.create_or_verify_topic("AT", "jobs");
      ADD_FAILURE();
    } catch (const TopicOwnershipConflict&) {
      ADD_FAILURE() << "not a conflict";
    } catch (const ClientError& e) {
      EXPECT_NE(std::string(e.what()).find("HTTP " + std::to_string(status)), std::string::npos);
      EXPECT_EQ(e.status(), status);
    }
    EXPECT_EQ(server.count("GET", "/auth/me"), 0u);
  }
}

TEST(CreateOrVerifyTopic, FailingWhoamiIsAClientErrorNamingAuthMe) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/topics", {Reply{409, "{}"}});
  server.script("GET", "/auth/me", {Reply{500, "{}"}, Reply{200, R"({"username":"x"})"}});
  HttpRelayClient client(server.url());
  EXPECT_NE(
      ErrorOf<ClientError>([&] { client.create_or_verify_topic("AT", "jobs"); }).find("/auth/me"),
      std::string::npos);
  EXPECT_NE(ErrorOf<ClientError>([&] {
              client.create_or_verify_topic("AT", "jobs");
            }).find("returned no user_id"),
            std::string::npos);
}

TEST(CreateOrVerifyTopic, NetworkFailureDuringTheOwnershipGetIsAClientError) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/topics", {Reply{409, "{}"}});
  server.script("GET", "/auth/me", {Reply{200, kMe}});
  Reply dropped;
  dropped.drop = true;
  server.script("GET", "/api/v1/topics/jobs", {dropped});
  HttpRelayClient client(server.url());
  std::string m = ErrorOf<ClientError>([&] { client.create_or_verify_topic("AT", "jobs"); });
  EXPECT_NE(m.find("network"), std::string::npos) << m;
  // And a non-JSON topic record.
  server.script("GET", "/api/v1/topics/jobs", {Reply{200, "nope", "text/plain"}});
  EXPECT_NE(
      ErrorOf<ClientError>([&] { client.create_or_verify_topic("AT", "jobs"); }).find("non-JSON"),
      std::string::npos);
}

TEST(FetchMessages, ReturnsTheBodyVerbatimWithQueryAndBearer) {
  FakeHttpServer server;
  const std::string page =
      R"({"messages":[{"message_id":"2-0","topic":"a b","payload":{},"timestamp":"t",)"
      R"("metadata":{}}],)"
      R"("total":1,"limit":1,"order":"desc","cursor":"3-0","next_cursor":"2-0"})";
  server.script("GET", "/api/v1/topics/a%20b/messages", {Reply{200, page}});
  HttpRelayClient client(server.url());
  json::object body = client.fetch_messages("AT", "a b", {1, Order::desc, "3-0"});
  EXPECT_EQ(body, json::parse(page).as_object());
  auto req = server.requests().at(0);
  EXPECT_EQ(req.header("authorization"), "Bearer AT");
  EXPECT_EQ(req.query, "limit=1&order=desc&cursor=3-0");
  client.fetch_messages("AT", "a b", {10, Order::asc, std::nullopt});
  EXPECT_EQ(server.requests().at(1).query, "limit=10&order=asc");  // no empty cursor=
}

TEST(FetchMessages, EmptyPage) {
  FakeHttpServer server;
  server.script("GET", "/api/v1/topics/t/messages",
                {Reply{200, R"({"messages":[],"total":0,"limit":10,"order":"desc","cursor":null,)"
                            R"("next_cursor":null})"}});
  HttpRelayClient client(server.url());
  EXPECT_TRUE(client.fetch_messages("AT", "t").at("messages").as_array().empty());
}

TEST(FetchMessages, BadOrderRaisesBeforeAnyRequest) {
  EXPECT_THROW(parse_order("sideways"), std::invalid_argument);
  try {
    parse_order("ASC");
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("order must be 'asc' or 'desc'"), std::string::npos);
  }
}

TEST(FetchMessages, ErrorsByStatus) {
  FakeHttpServer server;
  server.script(
      "GET", "/api/v1/topics/t/messages",
      {Reply{401, "{}"}, Reply{404, "{}"}, Reply{503, "{}"}, Reply{200, "<html>", "text/html"}});
  HttpRelayClient client(server.url());
  try {
    client.fetch_messages("AT", "t");
    ADD_FAILURE();
  } catch (const RefreshTokenRejected& e) {
    EXPECT_EQ(e.status(), 401);
  }
  for (int status : {404, 503}) {
    try {
      client.fetch_messages("AT", "t");
      ADD_FAILURE();
    } catch (const RefreshTokenRejected&) {
      ADD_FAILURE();
    } catch (const ClientError& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(status)), std::string::npos);
      EXPECT_EQ(e.status(), status);
    }
  }
  EXPECT_NE(ErrorOf<ClientError>([&] { client.fetch_messages("AT", "t"); }).find("non-JSON body"),
            std::string::npos);
}

TEST(ExchangeRefreshToken, ReturnsTheBodyAndMapsRejection) {
  FakeHttpServer server;
  server.script(
      "POST", "/auth/token/refresh",
      {Reply{200,
             R"({"access_token":"A","refresh_token":"R2","token_type":"bearer","expires_in":600})"},
       Reply{401, "{}"}, Reply{500, "{}"}});
  HttpRelayClient client(server.url());
  EXPECT_EQ(client.exchange_refresh_token("R1").at("refresh_token"), "R2");
  EXPECT_EQ(server.requests().at(0).body, R"({"refresh_token":"R1"})");
  EXPECT_THROW(client.exchange_refresh_token("R1"), RefreshTokenRejected);
  EXPECT_NE(ErrorOf<ClientError>([&] { client.exchange_refresh_token("R1"); }).find("HTTP 500"),
            std::string::npos);
  HttpRelayClient down("http://127.0.0.1:" + std::to_string(testsupport::closed_port()));
  EXPECT_NE(ErrorOf<ClientError>([&] { down.exchange_refresh_token("R"); }).find("(network)"),
            std::string::npos);
}

TEST(Whoami, AnyFailureIsAClientError) {
  FakeHttpServer server;
  server.script("GET", "/auth/me",
                {Reply{200, kMe}, Reply{401, "{}"}, Reply{200, "x", "text/plain"}});
  HttpRelayClient client(server.url());
  EXPECT_EQ(client.whoami("AT").at("user_id"), "u-1");
  for (int i = 0; i < 2; ++i) {
    EXPECT_NE(
        ErrorOf<ClientError>([&] { client.whoami("AT"); }).find("could not read /auth/me on relay"),
        std::string::npos);
  }
}

TEST(TopicAdmin, ListGetDelete) {
  FakeHttpServer server;
  server.script("GET", "/api/v1/topics", {Reply{200, "[" + kMine + "]"}});
  server.script("GET", "/api/v1/topics/jobs",
                {Reply{200, kMine}, Reply{404, R"({"detail":"Topic 'jobs' not found"})"}});
  server.script("DELETE", "/api/v1/topics/jobs", {Reply{204, ""}, Reply{404, "{}"}});
  HttpRelayClient client(server.url());
  EXPECT_EQ(client.list_topics("AT").size(), 1u);
  EXPECT_EQ(client.get_topic("AT", "jobs").at("owner_id"), "u-1");
  try {
    client.get_topic("AT", "jobs");
    ADD_FAILURE();
  } catch (const ClientError& e) {
    EXPECT_EQ(e.status(), 404);
  }
  EXPECT_NO_THROW(client.delete_topic("AT", "jobs"));
  EXPECT_THROW(client.delete_topic("AT", "jobs"), ClientError);
}

}  // namespace
}  // namespace magnetar::client
