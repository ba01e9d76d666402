#include "pulsar/admin_routes.h"

#include <boost/json.hpp>

#include <cctype>
#include <charconv>

#include "common/random.h"
#include "pulsar/tenants.h"

namespace magnetar::pulsar {

namespace {

namespace bhttp = boost::beast::http;

http::Response Reason(unsigned status, const std::string& reason) {
  boost::json::object o;
  o["reason"] = reason;
  return http::Response::Json(status, boost::json::serialize(o));
}

// Pulsar's body is a bare JSON number ("4"); anything else is not a partition count.
std::optional<int64_t> ParseCount(std::string_view body) {
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front()))) body.remove_prefix(1);
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.remove_suffix(1);
  if (body.empty() || body.size() > 12) return std::nullopt;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), n);
  if (ec != std::errc() || end != body.data() + body.size()) return std::nullopt;
  return n;
}

unsigned HttpStatusOf(proto::ServerError e) {
  switch (e) {
    case proto::AuthorizationError: return 403;
    case proto::TopicNotFound: return 404;
    default: return 503;
  }
}

enum class Op { kGet, kCreate, kGrow };

void Handle(const AdminDeps& deps, Op op, const http::RequestContextPtr& ctx, http::Responder respond) {
  auto bearer = auth::ParseBearer(ctx->Header(bhttp::field::authorization));
  if (!bearer || bearer->empty()) return respond(Reason(401, "Authentication required"));
  PulsarTopicName name;
  name.persistent = true;
  name.tenant = std::string(ctx->Param("tenant"));
  name.ns = std::string(ctx->Param("namespace"));
  std::string error;
  auto parsed = ParsePulsarTopic(name.tenant + "/" + name.ns + "/" + std::string(ctx->Param("topic")), &error);
  if (!parsed) return respond(Reason(412, error));
  name = *parsed;
  if (PartitionIndex(name.local, nullptr)) {
    return respond(Reason(412, "'" + name.local + "' names a partition, not a topic"));
  }
  int64_t count = 0;
  if (op != Op::kGet) {
    auto n = ParseCount(ctx->request.body());
    if (!n) return respond(Reason(400, "The body must be the number of partitions"));
    if (*n < 1 || *n > kMaxPartitions) {
      return respond(Reason(412, "Number of partitions should be between 1 and " +
                                     std::to_string(kMaxPartitions)));
    }
    count = *n;
  }
  auto work = [&deps, op, name, count, token = std::string(*bearer)]() -> http::Response {
    auto auth = deps.authenticator.Authenticate(token);
    if (!auth.ok()) {
      const StatusCode code = auth.status().code();
      return code == StatusCode::kUnauthenticated || code == StatusCode::kPermissionDenied
                 ? Reason(401, "Authentication failed")
                 : Reason(503, "Authentication unavailable: " + auth.status().message());
    }
    TopicResolution where = ResolveTopic(
        deps.users, auth->user, name,
        op == Op::kGet ? std::nullopt : std::optional<auth::Permission>(auth::Permission::kWrite));
    if (where.error) return Reason(HttpStatusOf(*where.error), where.message);
    auto record = deps.topics.Get(where.topic);
    if (!record.ok() && record.status().code() != StatusCode::kNotFound) {
      return Reason(503, record.status().message());
    }
    switch (op) {
      case Op::kGet: {
        boost::json::object o;
        o["partitions"] = record.ok() ? record->partitions : 0;
        return http::Response::Json(200, boost::json::serialize(o));
      }
      case Op::kCreate: {
        if (record.ok()) {
          return Reason(409, record->partitions > 0 ? "Partitioned topic already exists"
                                                    : "This topic already exists");
        }
        core::TopicRecord created{NewUuid4(), where.topic.owner, where.topic.name, deps.clock.Now(),
                                  "Partitioned topic created by " + auth->user.username,
                                  static_cast<uint32_t>(count)};
        Status s = deps.topics.Create(created);
        if (s.code() == StatusCode::kAlreadyExists) return Reason(409, "This topic already exists");
        if (!s.ok()) return Reason(503, s.message());
        return http::Response::Empty(204);
      }
      case Op::kGrow: {
        if (!record.ok() || record->partitions == 0) {
          return Reason(404, "Partitioned topic does not exist");
        }
        if (count <= record->partitions) {
          return Reason(409, "Number of partitions can only grow (now " +
                                 std::to_string(record->partitions) + ")");
        }
        record->partitions = static_cast<uint32_t>(count);
        Status s = deps.topics.Update(*record);
        if (!s.ok()) return Reason(503, s.message());
        return http::Response::Empty(204);
      }
    }
    return Reason(500, "unreachable");
  };
  if (!deps.broker.store().blocking()) return respond(work());
  deps.blocking.Run(ctx->executor, std::move(work),
                    [respond = std::move(respond)](http::Response r) { respond(std::move(r)); });
}

}  // namespace

void RegisterAdminRoutes(http::HttpService& service, const AdminDeps& deps) {
  auto& router = service.router();
  const std::string path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions";
  router.Add(http::Verb::get, path, [&deps](const http::RequestContextPtr& ctx, http::Responder r) {
    Handle(deps, Op::kGet, ctx, std::move(r));
  });
  router.Add(http::Verb::put, path, [&deps](const http::RequestContextPtr& ctx, http::Responder r) {
    Handle(deps, Op::kCreate, ctx, std::move(r));
  });
  router.Add(http::Verb::post, path, [&deps](const http::RequestContextPtr& ctx, http::Responder r) {
    Handle(deps, Op::kGrow, ctx, std::move(r));
  });
}

}  // namespace magnetar::pulsar
