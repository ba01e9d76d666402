// Publishing (spec §2 with corrections D2 and D7): POST /api/v1/messages and
// POST /api/v1/messages/bulk, both with Idempotency-Key.

#include <boost/asio/steady_timer.hpp>
#include <map>

#include "common/log.h"
#include "common/message_metrics.h"
#include "common/random.h"
#include "common/time_format.h"
#include "relay/idempotency.h"
#include "relay/json_util.h"
#include "relay/message_model.h"
#include "relay/rate_limiter.h"
#include "relay/relay_api.h"
#include "relay/request_auth.h"
#include "relay/store_reads.h"
#include "relay/validation.h"

namespace magnetar::relay {

namespace {

constexpr size_t kMaxBulkItems = 100;
// How long a duplicate waits for the first request with its key, and how often it looks.
constexpr auto kInFlightPoll = std::chrono::milliseconds(10);
constexpr int kInFlightPolls = 3000;

std::string PublishResponseJson(const core::Message& m) {
  std::string out;
  out.reserve(96 + m.topic.size());  // one allocation instead of growing three times
  out += R"({"message_id":")";
  m.id.AppendTo(out);
  out += R"(","topic":)";
  AppendJsonString(out, m.topic);
  out += R"(,"timestamp":")";
  AppendRfc3339(out, m.publish_time);
  out += R"("})";
  return out;
}

// Get-or-create of the publisher's topic (spec §2.2 step 3); a concurrent create is fine.
Status EnsureTopic(core::TopicCatalog& topics, const auth::User& user, const std::string& name,
                   const Clock& clock) {
  if (topics.Get({user.user_id, name}).ok()) return Status::Ok();
  core::TopicRecord record{NewUuid4(), user.user_id, name, clock.Now(),
                           "Auto-created topic by " + user.username};
  Status s = topics.Create(record);
  if (s.code() == StatusCode::kAlreadyExists) return Status::Ok();
  return s;
}

// Finishes a publish: records the response under the idempotency key (or frees the key on
// failure), then answers.
using Finish = std::function<void(http::Response response, bool succeeded)>;

// Runs `work` under the request's Idempotency-Key (if any): replays a recorded response, refuses
// a reused key with a different body, waits for an in-flight duplicate.
// `records_pool`: where the key's records are read when they are round trips (Redis), else null;
// a wait for an in-flight duplicate goes back there.
void WithIdempotency(std::shared_ptr<IdempotencyGate> gate, const http::RequestContextPtr& ctx,
                     http::Responder respond, std::string scoped_key, std::string fingerprint,
                     unsigned replay_status, std::function<void(Finish)> work,
                     net::BlockingPool* records_pool, int attempt = 0) {
  if (scoped_key.empty()) {
    return work([respond](http::Response r, bool) { respond(std::move(r)); });
  }
  auto check = gate->Claim(scoped_key, fingerprint);
  switch (check.verdict) {
    case IdempotencyGate::Verdict::kProceed:
      return work([gate, respond, scoped_key, fingerprint](http::Response r, bool ok) {
        if (ok) {
          gate->Complete(scoped_key, fingerprint, r.body);
        } else {
          gate->Release(scoped_key);
        }
        respond(std::move(r));
      });
    case IdempotencyGate::Verdict::kReplay:
      return respond(http::Response::Json(replay_status, std::move(check.response)));
    case IdempotencyGate::Verdict::kMismatch:
      return respond(Detail(422, "Idempotency-Key reused with a different request body"));
    case IdempotencyGate::Verdict::kError:
      return respond(http::InternalErrorResponse());
    case IdempotencyGate::Verdict::kInFlight:
      break;
  }
  if (attempt >= kInFlightPolls) {
    return respond(Detail(409, "A request with this Idempotency-Key is still in progress"));
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(ctx->executor, kInFlightPoll);
  timer->async_wait([=](boost::system::error_code) mutable {
    (void)timer;
    auto again = [=]() mutable {
      WithIdempotency(gate, ctx, respond, scoped_key, fingerprint, replay_status, std::move(work),
                      records_pool, attempt + 1);
    };
    if (records_pool == nullptr) return again();
    records_pool->Post(std::move(again));
  });
}

// Stores one message and completes with the 201 answer (spec §2.2 steps 5-7), or a 5xx.
// `done(http::Response, bool succeeded)` runs once, on whichever thread the store completes on.
template <typename Done>
void PublishSingle(core::Broker& broker, const Clock& clock, std::string user_id,
                   MessageRequest request, Done done) {
  std::vector<core::DraftPtr> drafts;
  std::string topic = request.topic;
  drafts.push_back(std::move(request).ToDraft(clock.Now()));
  broker.Publish({std::move(user_id), std::move(topic)}, std::move(drafts),
                 [done = std::move(done), start = std::chrono::steady_clock::now()](
                     Result<std::vector<core::MessagePtr>> stored) {
                   auto& m = metrics::MessagesFor(metrics::Protocol::kRelayHttp);
                   m.publish_latency.Observe(metrics::SecondsSince(start));
                   if (!stored.ok()) {
                     m.publish_failures.Inc();
                     Logger("relay")->warn("publish failed: {}", stored.status().ToString());
                     const unsigned status =
                         stored.status().code() == StatusCode::kUnavailable ? 503 : 500;
                     return done(Detail(status, "Failed to store message"), false);
                   }
                   m.published.Inc();
                   done(http::Response::Json(201, PublishResponseJson(*stored->front())), true);
                 });
}

// The request's Idempotency-Key scoped to `route` and the caller, with the body's fingerprint;
// both empty when the request has no key.
struct IdempotencyScope {
  std::string key;
  std::string fingerprint;
};
IdempotencyScope ScopeOf(const http::RequestContext& ctx, std::string_view route,
                         const std::string& user_id, const json::value& body) {
  const std::string_view key = ctx.Header("Idempotency-Key");
  if (key.empty()) return {};
  return {IdempotencyGate::ScopedKey(route, user_id, key),
          IdempotencyGate::Fingerprint(json::serialize(body))};
}

}  // namespace

// After the rate limits: creates the topic when needed and publishes (under the request's
// Idempotency-Key when it has one).
void RelayApi::PublishAllowed(const std::shared_ptr<IdempotencyGate>& gate,
                              const http::RequestContextPtr& ctx, auth::User user,
                              MessageRequest request, std::string scoped, std::string fingerprint,
                              http::Responder respond) {
  // The topic lookup and the key's claim may be round trips (RunWithRecords).
  RunWithRecords(deps_, [this, gate, ctx, user = std::move(user), request = std::move(request),
                         scoped = std::move(scoped), fingerprint = std::move(fingerprint),
                         respond = std::move(respond)]() mutable {
    PublishWithRecords(gate, ctx, std::move(user), std::move(request), scoped, fingerprint,
                       std::move(respond));
  });
}

void RelayApi::PublishWithRecords(const std::shared_ptr<IdempotencyGate>& gate,
                                  const http::RequestContextPtr& ctx, auth::User user,
                                  MessageRequest request, const std::string& scoped,
                                  const std::string& fingerprint, http::Responder respond) {
  if (Status ensured = EnsureTopic(deps_.topics, user, request.topic, deps_.clock);
      !ensured.ok()) {
    // Storage lost (e.g. Redis down): 503, as a failed append says; anything else is a 500.
    return respond(ensured.code() == StatusCode::kUnavailable
                       ? Detail(503, "Failed to store message")
                       : Detail(500, "Failed to create topic"));
  }
  if (scoped.empty()) {
    // No Idempotency-Key (the common case): publish directly. The keyed path below
    // wraps the same publish in std::functions that copy the responder and the user
    // several times, which cost about a tenth of a publish's allocations.
    return PublishSingle(deps_.broker, deps_.clock, std::move(user.user_id),
                         std::move(request),
                         [respond = std::move(respond)](http::Response r, bool) {
                           respond(std::move(r));
                         });
  }
  WithIdempotency(
      gate, ctx, respond, scoped, fingerprint, 201,
      [this, user_id = user.user_id, request = std::move(request)](Finish finish) mutable {
        PublishSingle(deps_.broker, deps_.clock, std::move(user_id), std::move(request),
                      std::move(finish));
      },
      RecordsPool());
}

void RelayApi::RegisterMessages(http::HttpService& service) {
  auto gate =
      std::make_shared<IdempotencyGate>(deps_.kv, deps_.clock, options_.idempotency_ttl_seconds);

  service.router().Add(
      http::Verb::post, "/api/v1/messages",
      RequireAuthJson(
          deps_, auth::Permission::kWrite,
          [this, gate](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                       const json::value& body_value, http::Responder respond) {
            const json::value* body = &body_value;
            auth::User user = std::move(auth.user);
            ValidationErrors errors;
            auto request =
                ParseMessageRequest(*body, [] { return json::array{"body"}; }, errors);
            if (!request) return respond(errors.ToResponse());
            auto [scoped, fingerprint] = ScopeOf(*ctx, "single", user.user_id, *body);
            if (!rate_limiter_->waits()) {
              // Counters in this process (the usual case): checked here, no continuation to
              // allocate on the publish path.
              if (auto limited = RateLimited("publish", options_.rate_limit_publish, *ctx)) {
                return respond(std::move(*limited));
              }
              if (auto over = CheckUserQuota(*rate_limiter_, "quota_publish", user.user_id,
                                             options_.quota_publish_per_minute)) {
                return respond(std::move(*over));
              }
              return PublishAllowed(gate, ctx, std::move(user), std::move(*request), scoped,
                                    fingerprint, std::move(respond));
            }
            // A copy: the continuation below takes `user` by move, and the order in which a
            // call's arguments are evaluated is unspecified.
            const std::string user_id = user.user_id;
            ThenIfAllowed(ctx, "publish", options_.rate_limit_publish, "quota_publish", user_id,
                          options_.quota_publish_per_minute, 1, respond,
                          [this, gate, ctx, user = std::move(user), request = std::move(*request),
                           scoped = scoped, fingerprint = fingerprint, respond]() mutable {
                            PublishAllowed(gate, ctx, std::move(user), std::move(request), scoped,
                                           fingerprint, respond);
                          });
          }));

  service.router().Add(
      http::Verb::post, "/api/v1/messages/bulk",
      RequireAuthJson(
          deps_, auth::Permission::kWrite,
          [this, gate](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                       const json::value& body_value, http::Responder respond) {
            const json::value* body = &body_value;
            auth::User user = std::move(auth.user);

            ValidationErrors errors;
            const json::object* obj = BodyObject(*body, errors);
            if (!obj) return respond(errors.ToResponse());
            std::vector<MessageRequest> requests;
            const json::value* list = obj->if_contains("messages");
            if (!list) {
              errors.Missing(json::array{"body", "messages"}, *body);
            } else if (!list->is_array()) {
              errors.Add("list_type", json::array{"body", "messages"},
                         "Input should be a valid list", *list);
            } else {
              const auto& arr = list->get_array();
              if (arr.empty() || arr.size() > kMaxBulkItems) {
                json::object c;
                c["field_type"] = "List";
                const bool too_short = arr.empty();
                if (too_short) {
                  c["min_length"] = 1;
                } else {
                  c["max_length"] = kMaxBulkItems;
                }
                c["actual_length"] = arr.size();
                errors.Add(too_short ? "too_short" : "too_long", json::array{"body", "messages"},
                           too_short ? "List should have at least 1 item after validation, not 0"
                                     : "List should have at most 100 items after validation, not " +
                                           std::to_string(arr.size()),
                           nullptr, std::move(c));
              } else {
                requests.reserve(arr.size());
                for (size_t i = 0; i < arr.size(); ++i) {
                  auto r = ParseMessageRequest(
                      arr[i], [i] { return json::array{"body", "messages", i}; }, errors);
                  if (r) requests.push_back(std::move(*r));
                }
              }
            }
            if (!errors.empty()) return respond(errors.ToResponse());
            auto [scoped, fingerprint] = ScopeOf(*ctx, "bulk", user.user_id, *body);
            const int cost = static_cast<int>(requests.size());
            const std::string user_id = user.user_id;  // a copy: `user` moves below
            ThenIfAllowed(
                ctx, "bulk", options_.rate_limit_bulk, "quota_publish", user_id,
                options_.quota_publish_per_minute, cost, respond,
                [this, gate, ctx, respond, user = std::move(user), requests = std::move(requests),
                 scoped = scoped, fingerprint = fingerprint]() mutable {
                  // The key's claim and the topics' records may be round trips (RunWithRecords).
                  RunWithRecords(deps_, [this, gate, ctx, respond, user = std::move(user),
                                         requests = std::move(requests), scoped = std::move(scoped),
                                         fingerprint = std::move(fingerprint)]() mutable {
                    WithIdempotency(
                        gate, ctx, respond, scoped, fingerprint, 207,
                        [this, user = std::move(user),
                         requests = std::move(requests)](Finish finish) mutable {
                          PublishBulk(user, std::move(requests), std::move(finish));
                        },
                        RecordsPool());
                  });
                });
          }));
}

namespace {

// Shared by the per-topic appends of one bulk request; the last to finish answers. An accepted
// item keeps its stored message (id and topic are read from it when answering), so a bulk of 100
// costs no per-item string copies; a rejected one keeps its topic and the error.
struct BulkState {
  struct Item {
    core::MessagePtr message;  // null = rejected
    std::string topic;         // rejected items only
    std::string error;
  };
  std::mutex mutex;
  std::vector<Item> items;
  size_t pending_batches = 0;
  Finish finish;

  void Done() {
    std::string out;
    out.reserve(64 + items.size() * 96);
    out += R"({"results":[)";
    size_t accepted = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      const auto& item = items[i];
      if (i) out.push_back(',');
      out += R"({"message_id":)";
      if (!item.message) {
        out += "null";
      } else {
        out.push_back('"');
        item.message->id.AppendTo(out);
        out.push_back('"');
        ++accepted;
      }
      out += R"(,"topic":)";
      AppendJsonString(out, item.message ? item.message->topic : item.topic);
      if (!item.message) {
        out += R"(,"status":"rejected","error":)";
        AppendJsonString(out, item.error);
        out += "}";
      } else {
        out += R"(,"status":"accepted","error":null})";
      }
    }
    out += R"(],"summary":{"total":)" + std::to_string(items.size()) + R"(,"accepted":)" +
           std::to_string(accepted) + R"(,"rejected":)" + std::to_string(items.size() - accepted) +
           "}}";
    // Recorded for idempotent replay only when something was stored.
    finish(http::Response::Json(207, std::move(out)), accepted > 0);
  }
};

}  // namespace

void RelayApi::PublishBulk(const auth::User& user, std::vector<MessageRequest> requests,
                           std::function<void(http::Response, bool)> finish) {
  // One append per topic keeps each topic's items in request order and costs one store batch
  // (one sync, later, on a durable engine) instead of one per message.
  std::map<std::string, std::vector<size_t>> by_topic;
  for (size_t i = 0; i < requests.size(); ++i) by_topic[requests[i].topic].push_back(i);
  for (const auto& entry : by_topic) {  // each topic once, not once per message
    if (!EnsureTopic(deps_.topics, user, entry.first, deps_.clock).ok()) {
      return finish(Detail(403, "Access denied to one or more requested topics"), false);
    }
  }
  auto state = std::make_shared<BulkState>();
  state->finish = std::move(finish);
  state->items.resize(requests.size());
  state->pending_batches = by_topic.size();
  const UnixMicros now = deps_.clock.Now();
  for (auto& [topic, indexes] : by_topic) {
    std::vector<core::DraftPtr> drafts;
    drafts.reserve(indexes.size());
    for (size_t i : indexes) drafts.push_back(std::move(requests[i]).ToDraft(now));
    deps_.broker.Publish({user.user_id, topic}, std::move(drafts),
                         [state, topic = topic, indexes = indexes,
                          start = std::chrono::steady_clock::now()](
                             Result<std::vector<core::MessagePtr>> stored) {
                           auto& m = metrics::MessagesFor(metrics::Protocol::kRelayHttp);
                           m.publish_latency.Observe(metrics::SecondsSince(start));
                           if (stored.ok()) {
                             m.published.Inc(stored->size());
                           } else {
                             m.publish_failures.Inc();
                           }
                           bool last = false;
                           {
                             std::lock_guard lock(state->mutex);
                             for (size_t k = 0; k < indexes.size(); ++k) {
                               auto& item = state->items[indexes[k]];
                               if (stored.ok()) {
                                 item.message = (*stored)[k];
                               } else {
                                 item.topic = topic;
                                 item.error = stored.status().message();
                               }
                             }
                             last = --state->pending_batches == 0;
                           }
                           if (last) state->Done();
                         });
  }
}

}  // namespace magnetar::relay
