// Operations: GET /metrics (Prometheus), the dashboard's files under /ui and the JSON it reads
// under /ui/api (docs/operations.md). The page itself is static (web/); everything it shows comes
// from the relay API and these few summaries.

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <chrono>

#include "common/message_metrics.h"
#include "common/metrics.h"
#include "common/time_format.h"
#include "relay/json_util.h"
#include "relay/refresh_tokens.h"
#include "relay/relay_api.h"
#include "relay/request_auth.h"
#include "relay/store_reads.h"
#include "relay/topic_json.h"
#include "web/assets.h"

namespace magnetar::relay {

namespace {

// The dashboard runs only its own script and stylesheet and talks only to this origin (fetch and
// the relay WebSocket: CSP 'self' covers ws:/wss: to the same host); no framing, no plugins.
constexpr std::string_view kDashboardCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

http::Response AssetResponse(const web::Asset& asset) {
  return http::Response{200, std::string(asset.body), std::string(asset.content_type), {}}
      .WithHeader("Content-Security-Policy", std::string(kDashboardCsp))
      .WithHeader("X-Frame-Options", "DENY")
      .WithHeader("X-Content-Type-Options", "nosniff")
      .WithHeader("Referrer-Policy", "same-origin")
      .WithHeader("Cache-Control", "no-cache");
}

// `Authorization: Bearer <token>` equal to `expected`, compared in constant time.
bool BearerMatches(const http::RequestContext& ctx, const std::string& expected) {
  auto token = auth::ParseBearer(ctx.Header(boost::beast::http::field::authorization));
  return token && token->size() == expected.size() &&
         CRYPTO_memcmp(token->data(), expected.data(), expected.size()) == 0;
}

void AppendHistogram(std::string& out, const metrics::Histogram::Snapshot& h) {
  out += R"({"bounds":[)";
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    if (i) out.push_back(',');
    out += fmt::format("{}", h.bounds[i]);
  }
  out += R"(],"counts":[)";
  for (size_t i = 0; i < h.cumulative.size(); ++i) {
    if (i) out.push_back(',');
    out += std::to_string(h.cumulative[i]);
  }
  out += "]}";
}

uint64_t Count(std::string_view name) {
  return static_cast<uint64_t>(metrics::Registry::Default().Total(name));
}

// What the overview shows, from the same registry /metrics renders.
std::string StatsJson(const std::string& version, double uptime_seconds, const Status& health) {
  using metrics::MessagesFor;
  using metrics::Protocol;
  const Protocol all[] = {Protocol::kRelayHttp, Protocol::kRelayWs, Protocol::kPulsarWs};
  uint64_t published = 0, delivered = 0, dropped = 0, redelivered = 0, failures = 0;
  for (Protocol p : all) {
    auto& m = MessagesFor(p);
    published += m.published.Value();
    delivered += m.delivered.Value();
    dropped += m.dropped.Value();
    redelivered += m.redelivered.Value();
    failures += m.publish_failures.Value();
  }
  std::string out = R"({"version":)";
  AppendJsonString(out, version);
  out += fmt::format(R"(,"uptime_seconds":{:.0f},"storage":)", uptime_seconds);
  AppendJsonString(out, health.ok() ? std::string("ok") : "error: " + health.message());
  out += fmt::format(
      R"(,"messages":{{"published":{},"delivered":{},"dropped":{},"redelivered":{},)"
      R"("publish_failures":{}}})",
      published, delivered, dropped, redelivered, failures);
  auto& registry = metrics::Registry::Default();
  out += R"(,"publish_latency":)";
  AppendHistogram(out, registry.MergedHistogram("magnetar_publish_latency_seconds"));
  out += R"(,"delivery_latency":)";
  AppendHistogram(out, registry.MergedHistogram("magnetar_delivery_latency_seconds"));
  out += fmt::format(
      R"(,"connections":{{"http":{},"longpoll_waiters":{},"websockets":{{"relay_ws":{},)"
      R"("pulsar_ws":{}}}}})",
      Count("magnetar_http_connections_open"), Count("magnetar_longpoll_waiters"),
      MessagesFor(Protocol::kRelayWs).websockets_open.Value(),
      MessagesFor(Protocol::kPulsarWs).websockets_open.Value());
  out += fmt::format(
      R"(,"http_requests":{},"auth_failures":{},"rate_limited":{},"storage_errors":{}}})",
      Count("magnetar_http_requests_total"), Count("magnetar_auth_failures_total"),
      Count("magnetar_rate_limited_total"), Count("magnetar_storage_errors_total"));
  return out;
}

// TopicPublic plus what the store knows of it, and the owner's name when listing everyone's.
void AppendTopicWithStats(std::string& out, const core::TopicRecord& record,
                          core::MessageStore& store, const std::string* owner_username) {
  std::string base = TopicPublicJson(record);
  base.pop_back();  // reopen the object
  out += base;
  auto stats = store.Stats(record.key());
  const core::TopicStats s = stats.ok() ? *stats : core::TopicStats{};
  out += fmt::format(R"(,"message_count":{},"bytes":{},"last_message_id":)", s.message_count,
                     s.byte_count);
  if (s.message_count > 0) {
    out.push_back('"');
    s.last_id.AppendTo(out);
    out.push_back('"');
  } else {
    out += "null";
  }
  if (owner_username) {
    out += R"(,"owner_username":)";
    AppendJsonString(out, *owner_username);
  }
  out.push_back('}');
}

// BLOCKING (store reads): the caller's topics, or every user's (admin), with their sizes.
Result<std::string> TopicsWithStats(RelayDeps& deps, const auth::User& caller, bool all) {
  std::vector<auth::User> owners;
  if (all) {
    auto users = deps.users.List();
    if (!users.ok()) return users.status();
    owners = std::move(users).value();
  } else {
    owners.push_back(caller);
  }
  std::string out = "[";
  bool first = true;
  for (const auto& owner : owners) {
    auto topics = deps.topics.ListByOwner(owner.user_id);
    if (!topics.ok()) return topics.status();
    for (const auto& record : *topics) {
      if (!first) out.push_back(',');
      first = false;
      AppendTopicWithStats(out, record, deps.broker.store(), all ? &owner.username : nullptr);
    }
  }
  out.push_back(']');
  return out;
}

// BLOCKING (key/value store): revokes session `jti` of `user_id`; 404 when it is not theirs.
http::Response RevokeSessionOf(RefreshTokens& tokens, const std::string& user_id,
                               const std::string& jti) {
  auto record = tokens.Get(jti);
  if (!record.ok()) return http::InternalErrorResponse();
  if (!*record || (*record)->user_id != user_id) return Detail(404, "session not found");
  Status s = tokens.Revoke(jti, RevokeReason::kLogout);
  if (s.code() == StatusCode::kNotFound) return Detail(404, "session not found");
  if (!s.ok()) return http::InternalErrorResponse();
  return http::Response::Empty(204);
}

}  // namespace

void RelayApi::RegisterOps(http::HttpService& service) {
  auto& router = service.router();
  auto& registry = metrics::Registry::Default();
  registry.GetGauge("magnetar_build_info", "Always 1; the version in a label.",
                    {{"version", options_.version}})
      .Set(1);
  registry.GetGauge("magnetar_process_start_time_seconds", "Start time, in seconds since the epoch.")
      .Set(deps_.clock.NowSeconds());
  connections_gauge_ = registry.AddCallbackGauge(
      "magnetar_connections_open", "Client connections open now (HTTP and WebSocket).", {},
      [&tracker = deps_.tracker] { return static_cast<double>(tracker.size()); });

  router.Add(http::Verb::get, "/metrics",
             [this](const http::RequestContextPtr& ctx, http::Responder respond) {
               if (!options_.metrics_token.empty() && !BearerMatches(*ctx, options_.metrics_token)) {
                 return respond(Unauthorized("Not authenticated"));
               }
               // Every message-flow series exists from the first scrape on.
               metrics::MessagesFor(metrics::Protocol::kRelayHttp);
               respond(http::Response{200, metrics::Registry::Default().Render(),
                                      std::string(metrics::kContentType), {}});
             });

  router.Add(http::Verb::get, "/ui", [](const http::RequestContextPtr&, http::Responder respond) {
    respond(AssetResponse(*web::FindAsset("dashboard.html")));
  });
  router.Add(http::Verb::get, "/ui/{asset}",
             [](const http::RequestContextPtr& ctx, http::Responder respond) {
               const web::Asset* asset = web::FindAsset(ctx->Param("asset"));
               if (!asset || asset->name == "dashboard.html") {
                 return respond(http::NotFoundResponse());
               }
               respond(AssetResponse(*asset));
             });

  const auto start = std::chrono::steady_clock::now();
  router.Add(http::Verb::get, "/ui/api/stats",
             RequireAuth(deps_, auth::Permission::kAdmin,
                         [this, start](const http::RequestContextPtr&, auth::AuthContext,
                                       http::Responder respond) {
                           respond(http::Response::Json(
                               200, StatsJson(options_.version, metrics::SecondsSince(start),
                                              deps_.broker.store().Health())));
                         }));

  router.Add(http::Verb::get, "/ui/api/topics",
             RequireAuth(deps_, std::nullopt,
                         [this](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                                http::Responder respond) {
                           const bool all = ctx->Query("all") == std::string_view("true");
                           if (all && !auth.user.Has(auth::Permission::kAdmin)) {
                             return respond(Detail(403, "Permission 'admin' required"));
                           }
                           RunStoreWork(
                               deps_, ctx->executor,
                               [this, user = std::move(auth.user), all] {
                                 return TopicsWithStats(deps_, user, all);
                               },
                               [respond](Result<std::string> body) {
                                 if (!body.ok()) return respond(http::InternalErrorResponse());
                                 respond(http::Response::Json(200, std::move(body).value()));
                               });
                         }));

  // An admin's view of anyone's sessions (GET/DELETE /auth/sessions are the caller's own).
  router.Add(http::Verb::get, "/ui/api/users/{user_id}/sessions",
             RequireAuth(deps_, auth::Permission::kAdmin,
                         [this](const http::RequestContextPtr& ctx, auth::AuthContext,
                                http::Responder respond) {
                           RunStoreWork(
                               deps_, ctx->executor,
                               [this, user_id = std::string(ctx->Param("user_id"))] {
                                 return refresh_tokens_->ListActive(user_id);
                               },
                               [respond](Result<std::vector<RefreshTokenRecord>> sessions) {
                                 if (!sessions.ok()) return respond(http::InternalErrorResponse());
                                 std::string out = "[";
                                 for (size_t i = 0; i < sessions->size(); ++i) {
                                   if (i) out.push_back(',');
                                   AppendSessionJson(out, (*sessions)[i]);
                                 }
                                 out.push_back(']');
                                 respond(http::Response::Json(200, std::move(out)));
                               });
                         }));
  router.Add(http::Verb::delete_, "/ui/api/users/{user_id}/sessions/{jti}",
             RequireAuth(deps_, auth::Permission::kAdmin,
                         [this](const http::RequestContextPtr& ctx, auth::AuthContext,
                                http::Responder respond) {
                           RunStoreWork(
                               deps_, ctx->executor,
                               [this, jti = std::string(ctx->Param("jti")),
                                user_id = std::string(ctx->Param("user_id"))] {
                                 return RevokeSessionOf(*refresh_tokens_, user_id, jti);
                               },
                               [respond](http::Response r) { respond(std::move(r)); });
                         }));
}

}  // namespace magnetar::relay
