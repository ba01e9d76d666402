// Topics (spec §1.17-§1.23, corrections D5 and D8): create, list, stats, detail, history pages,
// update, delete. Every name resolves inside the caller's namespace (§0.5).

#include "common/random.h"
#include "relay/frames.h"
#include "relay/json_util.h"
#include "relay/relay_api.h"
#include "relay/request_auth.h"
#include "relay/store_reads.h"
#include "relay/topic_json.h"
#include "relay/validation.h"

namespace magnetar::relay {

namespace {

constexpr size_t kDescriptionMax = 500;

http::Response TopicNotFound(std::string_view name) {
  return Detail(404, "Topic '" + std::string(name) + "' not found");
}

// Description field of TopicCreate/TopicUpdate: absent or null -> nullopt (no change).
std::optional<std::string> Description(const json::object& obj, ValidationErrors& errors) {
  return StringField(obj, "description", json::array{"body"}, errors, false, 0, kDescriptionMax);
}

}  // namespace

void RelayApi::RegisterTopics(http::HttpService& service) {
  auto& router = service.router();

  router.Add(http::Verb::post, "/api/v1/topics",
             RequireAuthJson(
                 deps_, auth::Permission::kWrite,
                 [this](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                        const json::value& body_value, http::Responder respond) {
                   const json::value* body = &body_value;
                   const auto& user = auth.user;
                   ValidationErrors errors;
                   const json::object* obj = BodyObject(*body, errors);
                   if (!obj) return respond(errors.ToResponse());
                   std::optional<std::string> name;
                   if (const json::value* v = obj->if_contains("topic_name")) {
                     name = TopicNameValue(*v, json::array{"body", "topic_name"}, errors);
                   } else {
                     errors.Missing(json::array{"body", "topic_name"}, *body);
                   }
                   auto description = Description(*obj, errors);
                   if (!errors.empty()) return respond(errors.ToResponse());

                   core::TopicRecord record{NewUuid4(), user.user_id, *name, deps_.clock.Now(),
                                            description};
                   RunStoreWork(
                       deps_, ctx->executor, [this, record] { return deps_.topics.Create(record); },
                       [record, respond = std::move(respond)](Status s) {
                         if (s.code() == StatusCode::kAlreadyExists) {
                           return respond(Detail(400, "Topic '" + record.name +
                                                          "' already exists for owner " +
                                                          record.owner_id));
                         }
                         if (!s.ok()) return respond(http::InternalErrorResponse());
                         respond(http::Response::Json(201, TopicPublicJson(record)));
                       });
                 }));

  router.Add(http::Verb::get, "/api/v1/topics",
             RequireAuth(deps_, std::nullopt,
                         [this](const http::RequestContextPtr&, auth::AuthContext auth,
                                http::Responder respond) {
                           const auto& user = auth.user;
                           auto records = deps_.topics.ListByOwner(user.user_id);
                           if (!records.ok()) return respond(http::InternalErrorResponse());
                           std::string out = "[";
                           for (size_t i = 0; i < records->size(); ++i) {
                             if (i) out.push_back(',');
                             AppendTopicPublic(out, (*records)[i]);
                           }
                           out.push_back(']');
                           respond(http::Response::Json(200, std::move(out)));
                         }));

  // Declared before /{topic_name} so it is never shadowed by it (spec §1.19).
  router.Add(http::Verb::get, "/api/v1/topics/stats",
             RequireAuth(deps_, auth::Permission::kAdmin,
                         [this](const http::RequestContextPtr&, auth::AuthContext,
                                http::Responder respond) {
                           auto count = deps_.topics.Count();
                           if (!count.ok()) return respond(http::InternalErrorResponse());
                           respond(http::Response::Json(
                               200, R"({"total_topics":)" + std::to_string(*count) + "}"));
                         }));

  router.Add(http::Verb::get, "/api/v1/topics/{topic_name}",
             RequireAuth(deps_, std::nullopt,
                         [this](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                                http::Responder respond) {
                           const auto& user = auth.user;
                           const std::string name(ctx->Param("topic_name"));
                           auto record = deps_.topics.Get({user.user_id, name});
                           if (!record.ok()) return respond(TopicNotFound(name));
                           respond(http::Response::Json(200, TopicPublicJson(*record)));
                         }));

  router.Add(
      http::Verb::get, "/api/v1/topics/{topic_name}/messages",
      RequireAuth(
          deps_, std::nullopt,
          [this](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                 http::Responder respond) {
            const auto& user = auth.user;
            const std::string name(ctx->Param("topic_name"));

            // Query validation (422) comes before the handler's own checks, as in FastAPI.
            ValidationErrors errors;
            int64_t limit = 10;
            if (auto raw = ctx->Query("limit")) {
              if (auto v = ValidateInt(json::string(*raw), json::array{"query", "limit"}, errors)) {
                limit = *v;
              }
            }
            const std::string order(ctx->Query("order").value_or("desc"));
            std::optional<std::string> cursor_text;
            std::optional<MessageId> cursor;
            if (auto raw = ctx->Query("cursor")) {
              cursor_text = std::string(*raw);
              cursor = MessageId::Parse(*raw);
              if (!cursor) {
                json::object c;
                c["error"] = "cursor must be a message id \"<hi>-<lo>\"";
                errors.Add("value_error", json::array{"query", "cursor"},
                           "Value error, cursor must be a message id \"<hi>-<lo>\"",
                           json::string(*raw), std::move(c));
              }
            }
            if (!errors.empty()) return respond(errors.ToResponse());

            const core::TopicKey key{user.user_id, name};
            if (!deps_.topics.Get(key).ok()) return respond(TopicNotFound(name));
            if (order != "asc" && order != "desc") {
              return respond(Detail(400, "Order must be 'asc' or 'desc'"));
            }
            if (limit < 1) return respond(Detail(400, "Limit must be at least 1"));
            limit = std::min<int64_t>(limit, 100);

            core::ReadRequest read;
            read.limit = static_cast<size_t>(limit);
            read.descending = order == "desc";
            if (cursor) {
              if (read.descending) {
                read.before = *cursor;
              } else {
                read.after = *cursor;
              }
            }
            ReadTopic(deps_, ctx->executor, key, read,
                      [respond, limit, order, cursor_text](Result<core::ReadResult> result) {
                        if (!result.ok()) return respond(http::InternalErrorResponse());
                        const auto& msgs = result->messages;
                        std::string out = R"({"messages":[)";
                        for (size_t i = 0; i < msgs.size(); ++i) {
                          if (i) out.push_back(',');
                          AppendStoredMessage(out, *msgs[i]);
                        }
                        out += R"(],"total":)" + std::to_string(msgs.size());
                        out += R"(,"limit":)" + std::to_string(limit);
                        out += R"(,"order":)";
                        AppendJsonString(out, order);
                        out += R"(,"cursor":)";
                        if (cursor_text) {
                          AppendJsonString(out, *cursor_text);
                        } else {
                          out += "null";
                        }
                        out += R"(,"next_cursor":)";
                        if (msgs.empty()) {
                          out += "null";
                        } else {
                          out.push_back('"');
                          msgs.back()->id.AppendTo(out);
                          out.push_back('"');
                        }
                        out.push_back('}');
                        respond(http::Response::Json(200, std::move(out)));
                      });
          },
          HandlerThread::kRecords));

  router.Add(http::Verb::put, "/api/v1/topics/{topic_name}",
             RequireAuthJson(deps_, std::nullopt,
                             [this](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                                    const json::value& body_value, http::Responder respond) {
                               const json::value* body = &body_value;
                               const auto& user = auth.user;
                               ValidationErrors errors;
                               const json::object* obj = BodyObject(*body, errors);
                               if (!obj) return respond(errors.ToResponse());
                               auto description = Description(*obj, errors);
                               if (!errors.empty()) return respond(errors.ToResponse());
                               const std::string name(ctx->Param("topic_name"));
                               const core::TopicKey key{user.user_id, name};
                               RunStoreWork(
                                   deps_, ctx->executor,
                                   [this, key, description]() -> Result<core::TopicRecord> {
                                     auto record = deps_.topics.Get(key);
                                     if (!record.ok()) return record.status();
                                     if (description) record->description = description;
                                     if (Status s = deps_.topics.Update(*record); !s.ok()) {
                                       return Internal(s.message());
                                     }
                                     return record;
                                   },
                                   [name, respond = std::move(respond)](
                                       Result<core::TopicRecord> record) {
                                     if (record.ok()) {
                                       return respond(
                                           http::Response::Json(200, TopicPublicJson(*record)));
                                     }
                                     if (record.status().code() == StatusCode::kInternal) {
                                       return respond(Detail(500, "Failed to update topic"));
                                     }
                                     respond(TopicNotFound(name));
                                   });
                             }));

  router.Add(http::Verb::delete_, "/api/v1/topics/{topic_name}",
             RequireAuth(deps_, std::nullopt,
                         [this](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                                http::Responder respond) {
                           const auto& user = auth.user;
                           const std::string name(ctx->Param("topic_name"));
                           const core::TopicKey key{user.user_id, name};
                           RunStoreWork(
                               deps_, ctx->executor,
                               [this, key] {
                                 Status s = deps_.topics.Delete(key);
                                 // D8: the messages go with the topic.
                                 if (s.ok()) s = deps_.broker.DeleteTopicData(key);
                                 return s;
                               },
                               [name, respond = std::move(respond)](Status s) {
                                 if (s.code() == StatusCode::kNotFound) {
                                   return respond(TopicNotFound(name));
                                 }
                                 if (!s.ok()) return respond(Detail(500, "Failed to delete topic"));
                                 respond(http::Response::Empty(204));
                               });
                         }));
}

}  // namespace magnetar::relay
