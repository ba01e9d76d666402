// RelayTransport against a scripted loopback server (spec clients.md §A.5, §A.7 "Idempotency" /
// "Cursor", §A.10.1-6).

#include "client/transport.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <regex>
#include <thread>

#include "client/errors.h"
#include "client/testing/fakes.h"
#include "client/tests/support/fake_http_server.h"
#include "client/tests/support/process.h"

namespace magnetar::client {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using testsupport::FakeHttpServer;
using testsupport::Recorded;
using testsupport::Reply;
using testsupport::TempDir;

const std::string kCreated =
    R"({"message_id":"1-0","topic":"t","timestamp":"2026-01-01T00:00:00.000000Z"})";

// Records the publish retry sleeps instead of waiting.
struct SleepRecorder {
  std::mutex mutex;
  std::vector<std::chrono::milliseconds> sleeps;
  Sleeper fn() {
    return [this](std::chrono::milliseconds d) {
      std::lock_guard lock(mutex);
      sleeps.push_back(d);
    };
  }
  std::vector<std::chrono::milliseconds> get() {
    std::lock_guard lock(mutex);
    return sleeps;
  }
};

// Hands out T1, T2, ... : a new token after every invalidate().
class SequenceTokens final : public TokenProvider {
 public:
  std::string get_token() override {
    std::lock_guard lock(mutex_);
    return "T" + std::to_string(generation_);
  }
  void invalidate() override {
    std::lock_guard lock(mutex_);
    ++generation_;
    ++invalidations;
  }
  int invalidations = 0;

 private:
  std::mutex mutex_;
  int generation_ = 1;
};

TransportOptions Fast(SleepRecorder& rec) {
  TransportOptions o;
  o.sleep = rec.fn();
  o.timeout = 2s;
  return o;
}

std::shared_ptr<TokenProvider> Stub() { return std::make_shared<testing::FakeAuthManager>(); }

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

json::value ReadJson(const fs::path& p) { return json::parse(Slurp(p)); }

std::string PollBody(const json::array& messages) {
  return json::serialize(json::object{{"messages", messages}, {"has_more", false}});
}

json::object Msg(const std::string& topic, const std::string& id) {
  return {{"type", "message"}, {"topic", topic}, {"message_id", id}, {"payload", json::object{}}};
}

// ---- publish ------------------------------------------------------------------------------------

TEST(Publish, SendsBodyTokenAndA32HexIdempotencyKey) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages", {Reply{201, kCreated}});
  SleepRecorder rec;
  RelayTransport transport(server.url(), Stub(), Fast(rec));
  json::object result = transport.post_message("jobs", {{"n", 1}});
  EXPECT_EQ(result.at("message_id"), "1-0");
  transport.post_message("jobs", {{"n", 2}}, 60, std::map<std::string, std::string>{{"k", "v"}});
  auto reqs = server.requests("POST", "/api/v1/messages");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].header("authorization"), "Bearer stub-access-token");
  EXPECT_EQ(reqs[0].header("content-type"), "application/json");
  EXPECT_TRUE(std::regex_match(reqs[0].header("idempotency-key"), std::regex("[0-9a-f]{32}")));
  EXPECT_EQ(json::parse(reqs[0].body), json::parse(R"({"topic":"jobs","payload":{"n":1}})"));
  EXPECT_EQ(json::parse(reqs[1].body),
            json::parse(R"({"topic":"jobs","payload":{"n":2},"ttl":60,"metadata":{"k":"v"}})"));
  // Two calls, two keys.
  EXPECT_NE(reqs[0].header("idempotency-key"), reqs[1].header("idempotency-key"));
}

TEST(Publish, OneKeyAcrossRetries) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages",
                {Reply{503, "{}"}, Reply{502, "{}"}, Reply{201, kCreated}});
  SleepRecorder rec;
  RelayTransport transport(server.url(), Stub(), Fast(rec));
  transport.post_message("t", {});
  auto reqs = server.requests("POST", "/api/v1/messages");
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].header("idempotency-key"), reqs[1].header("idempotency-key"));
  EXPECT_EQ(reqs[1].header("idempotency-key"), reqs[2].header("idempotency-key"));
  EXPECT_EQ(rec.get(), (std::vector<std::chrono::milliseconds>{1s, 2s}));
}

TEST(Publish, ServerErrorsRetry) {
  for (int status : {500, 502, 503, 504}) {
    FakeHttpServer server;
    server.script("POST", "/api/v1/messages", {Reply{status, "{}"}, Reply{201, kCreated}});
    SleepRecorder rec;
    RelayTransport transport(server.url(), Stub(), Fast(rec));
    EXPECT_NO_THROW(transport.post_message("t", {})) << status;
    EXPECT_EQ(server.count("POST", "/api/v1/messages"), 2u) << status;
  }
}

TEST(Publish, ClientErrorsDoNotRetry) {
  for (int status : {400, 403, 404, 408, 413, 422, 429}) {
    FakeHttpServer server;
    server.script("POST", "/api/v1/messages", {Reply{status, R"({"detail":"nope"})"}});
    SleepRecorder rec;
    RelayTransport transport(server.url(), Stub(), Fast(rec));
    try {
      transport.post_message("t", {});
      ADD_FAILURE() << status << " did not throw";
    } catch (const TransportError& e) {
      EXPECT_EQ(e.status(), status);
      EXPECT_EQ(e.attempts(), 1);
      EXPECT_EQ(std::string(e.what()).rfind("post_message failed: " + std::to_string(status), 0),
                0u)
          << e.what();
    }
    EXPECT_EQ(server.count("POST", "/api/v1/messages"), 1u);
    EXPECT_TRUE(rec.get().empty());
  }
}

TEST(Publish, RedirectsAreNotFollowed) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages", {Reply{307, "", "", {{"Location", "/elsewhere"}}}});
  SleepRecorder rec;
  RelayTransport transport(server.url(), Stub(), Fast(rec));
  EXPECT_THROW(transport.post_message("t", {}), TransportError);
  EXPECT_EQ(server.count("POST", "/api/v1/messages"), 1u);
}

TEST(Publish, SleepsDoubleToSixtySecondsWithoutJitter) {
  FakeHttpServer server;
  std::vector<Reply> replies(8, Reply{503, "{}"});
  replies.push_back(Reply{201, kCreated});
  server.script("POST", "/api/v1/messages", replies);
  SleepRecorder rec;
  RelayTransport transport(server.url(), Stub(), Fast(rec));
  transport.post_message("t", {});
  EXPECT_EQ(rec.get(),
            (std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s}));
}

TEST(Publish, MaxAttemptsCountsRequests) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages", {Reply{503, "{}"}});
  SleepRecorder rec;
  TransportOptions o = Fast(rec);
  o.retry.max_attempts = 3;
  RelayTransport transport(server.url(), Stub(), o);
  try {
    transport.post_message("t", {});
    ADD_FAILURE();
  } catch (const TransportError& e) {
    EXPECT_EQ(std::string(e.what()), "post_message gave up after 3 attempts: HTTP 503");
    EXPECT_EQ(e.status(), 503);
    EXPECT_EQ(e.attempts(), 3);
  }
  EXPECT_EQ(server.count("POST", "/api/v1/messages"), 3u);
  EXPECT_EQ(rec.get().size(), 2u);
}

TEST(Publish, MaxElapsedGivesUpBeforeASleepPastIt) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages", {Reply{503, "{}"}});
  std::atomic<std::int64_t> now_ms{0};
  TransportOptions o;
  o.sleep = [&](std::chrono::milliseconds d) { now_ms += d.count(); };
  o.now = [&] { return std::chrono::steady_clock::time_point(std::chrono::milliseconds(now_ms)); };
  o.retry.max_elapsed = 10s;  // 1 + 2 + 4 = 7 s of sleeps fit; the next (8 s) does not
  RelayTransport transport(server.url(), Stub(), o);
  try {
    transport.post_message("t", {});
    ADD_FAILURE();
  } catch (const TransportError& e) {
    EXPECT_NE(std::string(e.what()).find("max_elapsed"), std::string::npos);
    EXPECT_EQ(e.attempts(), 4);
  }
}

TEST(Publish, ConnectionRefusedRetries) {
  SleepRecorder rec;
  TransportOptions o = Fast(rec);
  o.retry.max_attempts = 3;
  RelayTransport transport("http://127.0.0.1:" + std::to_string(testsupport::closed_port()), Stub(),
                           o);
  try {
    transport.post_message("t", {});
    ADD_FAILURE();
  } catch (const TransportError& e) {
    EXPECT_NE(std::string(e.what()).find("gave up after 3 attempts: connection error"),
              std::string::npos)
        << e.what();
    EXPECT_EQ(e.status(), std::nullopt);
  }
  EXPECT_EQ(rec.get().size(), 2u);
}

TEST(Publish, ReadTimeoutAndDroppedConnectionsRetry) {
  FakeHttpServer server;
  Reply slow{201, kCreated};
  slow.delay = 1500ms;
  Reply dropped;
  dropped.drop = true;
  server.script("POST", "/api/v1/messages", {slow, dropped, Reply{201, kCreated}});
  SleepRecorder rec;
  TransportOptions o = Fast(rec);
  o.timeout = 300ms;
  RelayTransport transport(server.url(), Stub(), o);
  EXPECT_EQ(transport.post_message("t", {}).at("message_id"), "1-0");
  EXPECT_EQ(server.count("POST", "/api/v1/messages"), 3u);
  EXPECT_EQ(rec.get(), (std::vector<std::chrono::milliseconds>{1s, 2s}));
}

TEST(Publish, A401ReauthenticatesOnceWithTheSameKey) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages",
                {Reply{401, "{}"}, Reply{503, "{}"}, Reply{201, kCreated}});
  SleepRecorder rec;
  auto tokens = std::make_shared<SequenceTokens>();
  RelayTransport transport(server.url(), tokens, Fast(rec));
  transport.post_message("t", {});
  auto reqs = server.requests("POST", "/api/v1/messages");
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(tokens->invalidations, 1);
  EXPECT_EQ(reqs[0].header("authorization"), "Bearer T1");
  EXPECT_EQ(reqs[1].header("authorization"), "Bearer T2");
  EXPECT_EQ(reqs[2].header("authorization"), "Bearer T2");
  // The whole retry loop ran again after the 401, with the same key throughout.
  EXPECT_EQ(reqs[0].header("idempotency-key"), reqs[2].header("idempotency-key"));
  EXPECT_EQ(reqs[1].header("idempotency-key"), reqs[2].header("idempotency-key"));
}

TEST(Publish, TwoRejectionsRaise401AfterTwoRequests) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages",
                {Reply{401, R"({"detail":"Invalid or expired token"})"}});
  SleepRecorder rec;
  auto tokens = std::make_shared<SequenceTokens>();
  RelayTransport transport(server.url(), tokens, Fast(rec));
  try {
    transport.post_message("t", {});
    ADD_FAILURE();
  } catch (const TransportError& e) {
    EXPECT_EQ(e.status(), 401);
  }
  auto reqs = server.requests("POST", "/api/v1/messages");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(reqs[0].header("authorization"), reqs[1].header("authorization"));
  EXPECT_TRUE(rec.get().empty());
}

TEST(Publish, NonJsonSuccessIsAnError) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages", {Reply{201, "created", "text/plain"}});
  SleepRecorder rec;
  RelayTransport transport(server.url(), Stub(), Fast(rec));
  EXPECT_THROW(transport.post_message("t", {}), TransportError);
}

TEST(Publish, AuthErrorsPropagateUnretried) {
  FakeHttpServer server;
  server.script("POST", "/auth/login", {Reply{401, "{}"}});
  SleepRecorder rec;
  RelayTransport transport(server.url(), AuthConfig{"u", "p"}, Fast(rec));
  EXPECT_THROW(transport.post_message("t", {}), AuthError);
  EXPECT_EQ(server.count("POST", "/api/v1/messages"), 0u);
  EXPECT_EQ(server.count("POST", "/auth/login"), 1u);
}

TEST(BulkPublish, ReturnsA207WithRejectedItems) {
  FakeHttpServer server;
  const std::string body =
      R"({"results":[{"message_id":"1-0","topic":"a","status":"accepted","error":null},)"
      R"({"message_id":null,"topic":"b","status":"rejected","error":"boom"}],)"
      R"("summary":{"total":2,"accepted":1,"rejected":1}})";
  server.script("POST", "/api/v1/messages/bulk", {Reply{503, "{}"}, Reply{207, body}});
  SleepRecorder rec;
  RelayTransport transport(server.url(), Stub(), Fast(rec));
  json::array items{json::object{{"topic", "a"}, {"payload", json::object{}}},
                    json::object{{"topic", "b"}, {"payload", 5}}};  // verbatim, unvalidated
  json::object result = transport.post_bulk_messages(items);
  EXPECT_EQ(result.at("summary").at("rejected"), 1);
  auto reqs = server.requests("POST", "/api/v1/messages/bulk");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(json::parse(reqs[1].body), (json::object{{"messages", items}}));
  EXPECT_EQ(reqs[0].header("idempotency-key"), reqs[1].header("idempotency-key"));
}

// ---- long-poll ----------------------------------------------------------------------------------

TEST(LongPoll, ClampsTheBodyTimeoutAndSendsSinceForTrackedRequestedTopics) {
  FakeHttpServer server;
  server.script("POST", "/messages/poll", {Reply{200, PollBody({})}});
  RelayTransport transport(server.url(), Stub());
  std::vector<std::string> topics{"a", "b"};
  transport.long_poll(topics, 0s);
  transport.set_last_message_id("a", "5-0");
  transport.set_last_message_id("z", "9-0");  // tracked, not requested
  transport.long_poll(topics, 100s);
  transport.long_poll(std::vector<std::string>{"b"}, 30s);
  auto reqs = server.requests("POST", "/messages/poll");
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(json::parse(reqs[0].body), json::parse(R"({"topics":["a","b"],"timeout":1})"));
  EXPECT_EQ(json::parse(reqs[1].body),
            json::parse(R"({"topics":["a","b"],"timeout":60,"since":{"a":"5-0"}})"));
  EXPECT_EQ(json::parse(reqs[2].body), json::parse(R"({"topics":["b"],"timeout":30})"));
}

TEST(LongPoll, HttpWaitIsTimeoutPlusGrace) {
  FakeHttpServer server;
  Reply late{200, PollBody({Msg("a", "1-0")})};
  late.delay = 1500ms;
  server.script("POST", "/messages/poll", {late});
  // Default grace (5 s): the answer after 1.5 s to a 1 s poll arrives.
  RelayTransport patient(server.url(), Stub());
  EXPECT_EQ(patient.long_poll(std::vector<std::string>{"a"}, 1s).size(), 1u);
  // A 300 ms grace: 1.3 s of wait, the answer comes later: a timeout, which is no messages.
  TransportOptions o;
  o.long_poll_grace = 300ms;
  RelayTransport hasty(server.url(), Stub(), o);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(hasty.long_poll(std::vector<std::string>{"a"}, 1s).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1450ms);
  EXPECT_EQ(hasty.last_message_id("a"), std::nullopt);
}

TEST(LongPoll, FailuresRaiseWithoutRetry) {
  for (int status : {500, 503, 429, 422}) {
    FakeHttpServer server;
    server.script("POST", "/messages/poll", {Reply{status, "{}"}});
    RelayTransport transport(server.url(), Stub());
    try {
      transport.long_poll(std::vector<std::string>{"a"});
      ADD_FAILURE();
    } catch (const TransportError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("Failed to long poll: ", 0), 0u);
      EXPECT_EQ(e.status(), status);
    }
    EXPECT_EQ(server.count("POST", "/messages/poll"), 1u);
  }
  RelayTransport down("http://127.0.0.1:" + std::to_string(testsupport::closed_port()), Stub());
  EXPECT_THROW(down.long_poll(std::vector<std::string>{"a"}), TransportError);
  FakeHttpServer garbled;
  garbled.script("POST", "/messages/poll", {Reply{200, "<html>"}});
  RelayTransport g(garbled.url(), Stub());
  EXPECT_THROW(g.long_poll(std::vector<std::string>{"a"}), TransportError);
}

TEST(LongPoll, A401IsRetriedExactlyOnce) {
  FakeHttpServer server;
  server.script("POST", "/messages/poll",
                {Reply{401, "{}"}, Reply{200, PollBody({Msg("a", "1-0")})}, Reply{401, "{}"}});
  auto tokens = std::make_shared<SequenceTokens>();
  RelayTransport transport(server.url(), tokens);
  EXPECT_EQ(transport.long_poll(std::vector<std::string>{"a"}).size(), 1u);
  auto reqs = server.requests("POST", "/messages/poll");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].body, reqs[1].body);
  EXPECT_EQ(reqs[1].header("authorization"), "Bearer T2");
  try {
    transport.long_poll(std::vector<std::string>{"a"});
    ADD_FAILURE();
  } catch (const TransportError& e) {
    EXPECT_EQ(e.status(), 401);
  }
  EXPECT_EQ(server.count("POST", "/messages/poll"), 4u);
}

TEST(LongPoll, CursorAdvancesForEveryMessageAndIsWrittenBeforeReturn) {
  FakeHttpServer server;
  json::array batch{Msg("a", "1-0"),
                    Msg("b", "4-0"),
                    Msg("a", "2-0"),
                    Msg("other", "7-0"),
                    json::object{{"topic", "a"}},
                    json::object{{"topic", ""}, {"message_id", "9-9"}}};
  server.script("POST", "/messages/poll", {Reply{200, PollBody(batch)}});
  TempDir dir;
  TransportOptions o;
  o.cursor_path = dir.path() / "cursor.json";
  RelayTransport transport(server.url(), Stub(), o);
  auto messages = transport.long_poll(std::vector<std::string>{"a", "b"});
  EXPECT_EQ(messages.size(), 6u);  // returned unchanged
  const std::map<std::string, std::string> want{{"a", "2-0"}, {"b", "4-0"}, {"other", "7-0"}};
  EXPECT_EQ(transport.tracked_message_ids(), want);
  EXPECT_EQ(ReadJson(*o.cursor_path), json::parse(R"({"a":"2-0","b":"4-0","other":"7-0"})"));
}

TEST(LongPoll, ManualCommitMovesTheCursorOnlyWhenTold) {
  FakeHttpServer server;
  server.script("POST", "/messages/poll", {Reply{200, PollBody({Msg("a", "3-0")})}});
  TransportOptions o;
  o.cursor_commit = CursorCommit::kManual;
  RelayTransport transport(server.url(), Stub(), o);
  transport.set_last_message_id("a", "2-0");
  auto messages = transport.long_poll(std::vector<std::string>{"a"});
  EXPECT_EQ(transport.last_message_id("a"), "2-0");
  transport.long_poll(std::vector<std::string>{"a"});  // asks from 2-0 again
  transport.commit(messages);
  EXPECT_EQ(transport.last_message_id("a"), "3-0");
  transport.long_poll(std::vector<std::string>{"a"});
  auto reqs = server.requests("POST", "/messages/poll");
  EXPECT_EQ(json::parse(reqs[1].body).at("since"), json::parse(R"({"a":"2-0"})"));
  EXPECT_EQ(json::parse(reqs[2].body).at("since"), json::parse(R"({"a":"3-0"})"));
}

TEST(LongPoll, AStopRequestEndsAWaitingPoll) {
  FakeHttpServer server;
  Reply never{200, PollBody({})};
  never.delay = 10s;
  server.script("POST", "/messages/poll", {never});
  RelayTransport transport(server.url(), Stub());
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(200ms);
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(transport.long_poll(std::vector<std::string>{"a"}, 30s, stop.get_token()).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  stopper.join();
}

TEST(Transport, ALongPollAndConcurrentPublishes) {
  FakeHttpServer server;
  Reply slow_poll{200, PollBody({Msg("a", "1-0")})};
  slow_poll.delay = 1500ms;
  server.script("POST", "/messages/poll", {slow_poll});
  server.script("POST", "/api/v1/messages", {Reply{201, kCreated}});
  RelayTransport transport(server.url(), Stub());
  std::thread poller([&] { transport.long_poll(std::vector<std::string>{"a"}, 5s); });
  std::this_thread::sleep_for(100ms);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> publishers;
  for (int i = 0; i < 4; ++i) {
    publishers.emplace_back([&] {
      for (int j = 0; j < 5; ++j) transport.post_message("a", {{"j", j}});
    });
  }
  for (auto& t : publishers) t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1200ms);  // not queued behind the poll
  poller.join();
  EXPECT_EQ(server.count("POST", "/api/v1/messages"), 20u);
  EXPECT_EQ(transport.last_message_id("a"), "1-0");
}

TEST(Transport, AStopRequestInterruptsTheBackoffSleep) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages", {Reply{503, "{}"}});
  TransportOptions o;
  o.retry.initial = 30s;  // the real timer
  RelayTransport transport(server.url(), Stub(), o);
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  try {
    transport.post_message("t", {}, {}, {}, stop.get_token());
    ADD_FAILURE();
  } catch (const TransportError& e) {
    EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  stopper.join();
}

// Publishes, then races a poll against a 200 ms timer (the timer wins and cancels the poll).
// A named coroutine: g++ 12 miscompiles lambda coroutines handed to co_spawn.
boost::asio::awaitable<std::string> PublishThenRacePoll(RelayTransport& transport) {
  using namespace boost::asio::experimental::awaitable_operators;
  json::object payload;
  payload["x"] = 1;
  json::object r = co_await transport.async_post_message("t", std::move(payload));
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 200ms);
  std::vector<std::string> topics;
  topics.push_back("a");
  auto winner = co_await (transport.async_long_poll(std::move(topics), 30s) ||
                          timer.async_wait(boost::asio::use_awaitable));
  co_return std::string(r.at("message_id").as_string()) + "/" + std::to_string(winner.index());
}

TEST(Transport, AsyncCallsAndAsioCancellation) {
  FakeHttpServer server;
  server.script("POST", "/api/v1/messages", {Reply{201, kCreated}});
  Reply never{200, PollBody({})};
  never.delay = 10s;
  server.script("POST", "/messages/poll", {never});
  RelayTransport transport(server.url(), Stub());
  boost::asio::io_context io;
  auto future = boost::asio::co_spawn(io, PublishThenRacePoll(transport), boost::asio::use_future);
  const auto start = std::chrono::steady_clock::now();
  io.run();
  EXPECT_EQ(future.get(), "1-0/1");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

// ---- cursor file --------------------------------------------------------------------------------

TEST(CursorFile, PersistsOnSetAndLoadsInTheConstructor) {
  FakeHttpServer server;
  server.script("POST", "/messages/poll", {Reply{200, PollBody({})}});
  TempDir dir;
  TransportOptions o;
  o.cursor_path = dir.path() / "cursor.json";
  {
    RelayTransport t(server.url(), Stub(), o);
    t.set_last_message_id("setup", "msg-100");
    t.set_last_message_id("status", "msg-7");
    EXPECT_EQ(ReadJson(*o.cursor_path), json::parse(R"({"setup":"msg-100","status":"msg-7"})"));
    // Python's separators.
    EXPECT_EQ(Slurp(*o.cursor_path), R"({"setup": "msg-100", "status": "msg-7"})");
  }
  RelayTransport restarted(server.url(), Stub(), o);
  EXPECT_EQ(restarted.last_message_id("setup"), "msg-100");
  restarted.long_poll(std::vector<std::string>{"setup", "status"});
  EXPECT_EQ(json::parse(server.requests("POST", "/messages/poll").at(0).body).at("since"),
            json::parse(R"({"setup":"msg-100","status":"msg-7"})"));
  std::vector<std::string> temps;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().filename() != "cursor.json") temps.push_back(e.path().filename());
  }
  EXPECT_TRUE(temps.empty());
}

TEST(CursorFile, ClearPersistsEveryTime) {
  FakeHttpServer server;
  TempDir dir;
  TransportOptions o;
  o.cursor_path = dir.path() / "c.json";
  RelayTransport t(server.url(), Stub(), o);
  t.set_last_message_id("a", "1");
  t.set_last_message_id("b", "2");
  t.clear_tracked_message_ids("a");
  EXPECT_EQ(ReadJson(*o.cursor_path), json::parse(R"({"b":"2"})"));
  t.clear_tracked_message_ids();
  EXPECT_EQ(ReadJson(*o.cursor_path), json::parse("{}"));
  fs::remove(*o.cursor_path);
  t.clear_tracked_message_ids("missing");  // persists even when nothing changed
  EXPECT_TRUE(fs::exists(*o.cursor_path));
}

TEST(CursorFile, WithoutAPathNothingIsWritten) {
  FakeHttpServer server;
  TempDir dir;
  RelayTransport t(server.url(), Stub());
  t.set_last_message_id("a", "1");
  t.clear_tracked_message_ids();
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(CursorFile, CorruptOrOddFilesLoadSafely) {
  FakeHttpServer server;
  TempDir dir;
  TransportOptions o;
  o.cursor_path = dir.path() / "c.json";
  std::ofstream(*o.cursor_path) << "{broken";
  EXPECT_TRUE(RelayTransport(server.url(), Stub(), o).tracked_message_ids().empty());
  std::ofstream(*o.cursor_path) << "[1,2]";
  EXPECT_TRUE(RelayTransport(server.url(), Stub(), o).tracked_message_ids().empty());
  std::ofstream(*o.cursor_path) << R"({"a":"","b":null,"c":0,"d":5,"e":"x","f":false,"g":true})";
  const std::map<std::string, std::string> want{{"d", "5"}, {"e", "x"}, {"g", "True"}};
  EXPECT_EQ(RelayTransport(server.url(), Stub(), o).tracked_message_ids(), want);
}

TEST(CursorFile, NestedDirectoriesAndMode0600UnderUmask0) {
  FakeHttpServer server;
  TempDir dir;
  TransportOptions o;
  o.cursor_path = dir.path() / "x" / "y" / "c.json";
  const mode_t old = ::umask(0);
  {
    RelayTransport t(server.url(), Stub(), o);
    t.set_last_message_id("a", "1");
  }
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(o.cursor_path->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(CursorFile, AWriteFailureDoesNotThrowAndTheCursorStillMoves) {
  FakeHttpServer server;
  TempDir dir;
  std::ofstream(dir.path() / "file") << "x";
  TransportOptions o;
  o.cursor_path = dir.path() / "file" / "c.json";  // the parent is a file
  RelayTransport t(server.url(), Stub(), o);
  EXPECT_NO_THROW(t.set_last_message_id("a", "1"));
  EXPECT_EQ(t.last_message_id("a"), "1");
}

TEST(CursorFile, ReadersNeverSeeAPartialFile) {
  FakeHttpServer server;
  TempDir dir;
  TransportOptions o;
  o.cursor_path = dir.path() / "c.json";
  RelayTransport t(server.url(), Stub(), o);
  t.set_last_message_id("topic-0", "0-0");
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, bad{0};
  std::thread reader([&] {
    while (!done) {
      boost::system::error_code ec;
      json::parse(Slurp(*o.cursor_path), ec);
      if (ec) ++bad;
      ++reads;
    }
  });
  for (int i = 0; i < 60; ++i) {
    t.set_last_message_id("topic-" + std::to_string(i % 20), std::to_string(i) + "-0");
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad, 0);
  EXPECT_GT(reads, 0);
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_EQ(e.path().filename(), "c.json");
}

}  // namespace
}  // namespace magnetar::client
