// Admin user management (spec §1.7-§1.10 with correction D12): list, partial update, stats and
// delete. Nothing is cached: the Authenticator reads the UserStore on every request, so a change
// (deactivation, permissions, deletion) applies to the user's very next request. A new password is
// hashed on the blocking pool, never on an I/O thread.

#include <cctype>

#include "auth/password.h"
#include "relay/json_util.h"
#include "relay/relay_api.h"
#include "relay/request_auth.h"
#include "relay/user_json.h"
#include "relay/validation.h"

namespace magnetar::relay {

namespace {

// UserUpdate (§1.8): only the keys present in the body are applied.
struct UserUpdate {
  std::optional<std::optional<std::string>> email;  // present; the inner nullopt is `null`
  std::optional<std::string> password;
  std::optional<std::vector<std::string>> permissions;
  std::optional<bool> is_active;
};

// Explicit null for password/permissions/is_active is a 422 here (the reference ends in a 500).
std::optional<UserUpdate> ParseUserUpdate(const json::value& body, ValidationErrors& errors) {
  const json::object* obj = BodyObject(body, errors);
  if (!obj) return std::nullopt;
  UserUpdate out;
  if (const json::value* email = obj->if_contains("email")) {
    if (email->is_null()) {
      out.email.emplace(std::nullopt);
    } else if (email->is_string()) {
      out.email.emplace(std::string(email->get_string()));
    } else {
      errors.Add("string_type", json::array{"body", "email"}, "Input should be a valid string",
                 *email);
    }
  }
  if (obj->contains("password")) {
    out.password = StringField(*obj, "password", json::array{"body"}, errors, true, 8,
                               auth::kMaxPasswordChars);
  }
  if (const json::value* permissions = obj->if_contains("permissions")) {
    out.permissions = PermissionList(*permissions, errors);
  }
  if (const json::value* active = obj->if_contains("is_active")) {
    out.is_active = LaxBool(*active, json::array{"body", "is_active"}, errors);
  }
  if (!errors.empty()) return std::nullopt;
  return out;
}

std::string UserNotFound(std::string_view user_id) {
  return "User with ID '" + std::string(user_id) + "' not found";
}

// Reads, changes and writes back one user; `password_hash`, when set, replaces the stored hash.
Result<auth::User> ApplyUpdate(auth::UserStore& users, const std::string& user_id,
                               const UserUpdate& update,
                               const std::optional<std::string>& password_hash) {
  auto user = users.GetById(user_id);
  if (!user.ok()) return user.status();
  if (update.email) user->email = *update.email;
  if (password_hash) user->password_hash = *password_hash;
  if (update.permissions) user->permissions = *update.permissions;
  if (update.is_active) user->is_active = *update.is_active;
  if (Status s = users.Update(*user); !s.ok()) return s;
  return user;
}

}  // namespace

void RelayApi::RegisterUsers(http::HttpService& service) {
  auto& router = service.router();

  router.Add(http::Verb::get, "/auth/users",
             RequireAuth(deps_, auth::Permission::kAdmin,
                         [this](const http::RequestContextPtr&, auth::AuthContext,
                                http::Responder respond) {
                           auto users = deps_.users.List();
                           if (!users.ok()) return respond(http::InternalErrorResponse());
                           std::string out = "[";
                           for (size_t i = 0; i < users->size(); ++i) {
                             if (i) out.push_back(',');
                             out += UserPublicJson((*users)[i], deps_.topics);
                           }
                           out.push_back(']');
                           respond(http::Response::Json(200, std::move(out)));
                         }));

  router.Add(http::Verb::get, "/auth/users/stats",
             RequireAuth(deps_, auth::Permission::kAdmin,
                         [this](const http::RequestContextPtr&, auth::AuthContext,
                                http::Responder respond) {
                           auto users = deps_.users.List();
                           if (!users.ok()) return respond(http::InternalErrorResponse());
                           size_t active = 0;
                           for (const auto& u : *users) active += u.is_active ? 1 : 0;
                           respond(http::Response::Json(
                               200, R"({"total_users":)" + std::to_string(users->size()) +
                                        R"(,"active_users":)" + std::to_string(active) + "}"));
                         }));

  router.Add(
      http::Verb::patch, "/auth/users/{user_id}",
      RequireAuthJson(deps_, auth::Permission::kAdmin,
                      [this](const http::RequestContextPtr& ctx, auth::AuthContext,
                             const json::value& body_value, http::Responder respond) {
                        const json::value* body = &body_value;
                        ValidationErrors errors;
                        auto update = ParseUserUpdate(*body, errors);
                        if (!update) return respond(errors.ToResponse());

                        std::string user_id(ctx->Param("user_id"));
                        auto answer = [this, respond, user_id](Result<auth::User> updated) {
                          if (updated.ok()) {
                            return respond(
                                http::Response::Json(200, UserPublicJson(*updated, deps_.topics)));
                          }
                          switch (updated.status().code()) {
                            case StatusCode::kNotFound:
                              return respond(Detail(404, UserNotFound(user_id)));
                            case StatusCode::kInvalidArgument:
                              return respond(Detail(400, updated.status().message()));
                            default:
                              return respond(http::InternalErrorResponse());
                          }
                        };
                        if (!update->password) {
                          return answer(ApplyUpdate(deps_.users, user_id, *update, std::nullopt));
                        }
                        deps_.blocking.Run(
                            ctx->executor,
                            [this, user_id, update = std::move(*update)]() -> Result<auth::User> {
                              // Unknown user: answer 404 without paying for a hash.
                              if (auto user = deps_.users.GetById(user_id); !user.ok())
                                return user.status();
                              std::string hash = auth::HashPassword(*update.password);
                              if (hash.empty()) return Internal("password hashing failed");
                              return ApplyUpdate(deps_.users, user_id, update, hash);
                            },
                            std::move(answer));
                      }));

  router.Add(http::Verb::delete_, "/auth/users/{user_id}",
             RequireAuth(deps_, auth::Permission::kAdmin,
                         [this](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                                http::Responder respond) {
                           const auto& admin = auth.user;
                           const std::string user_id(ctx->Param("user_id"));
                           if (user_id == admin.user_id) {
                             return respond(Detail(400, "Cannot delete your own user account"));
                           }
                           // Their topics, messages and refresh tokens stay (§1.10); a refresh by a
                           // deleted owner revokes the token then.
                           Status s = deps_.users.Delete(user_id);
                           if (s.code() == StatusCode::kNotFound) {
                             return respond(Detail(404, UserNotFound(user_id)));
                           }
                           if (!s.ok()) return respond(Detail(500, "Failed to delete user"));
                           respond(http::Response::Empty(204));
                         }));
}

}  // namespace magnetar::relay
