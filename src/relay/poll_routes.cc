// POST /messages/poll and GET /messages/poll/stats (spec §3, §1.27; corrections D5, D9, D14).

#include "relay/connection_slots.h"
#include "relay/json_util.h"
#include "relay/poll_manager.h"
#include "relay/poll_model.h"
#include "relay/rate_limiter.h"
#include "relay/relay_api.h"
#include "relay/request_auth.h"

namespace magnetar::relay {

// Takes a cluster-wide "poll" slot of the user (D13; inline with one node), then parks the
// waiter.
void RelayApi::Park(const http::RequestContextPtr& ctx, std::string user_id, PollRequest request,
                    const http::Responder& respond) {
  const std::string slot_user = user_id;
  slots_->Acquire(
      "poll", slot_user, options_.poll_max_per_user, ctx->executor,
      [this, ctx, user_id = std::move(user_id), request = std::move(request),
       respond](ConnectionSlots::Outcome outcome) mutable {
        if (outcome == ConnectionSlots::Outcome::kUnavailable) {
          return respond(LimitsUnavailableResponse());
        }
        if (outcome == ConnectionSlots::Outcome::kFull) {
          return respond(Detail(429, "Too many concurrent poll connections")
                             .WithHeader("Retry-After", "1"));
        }
        std::vector<core::TopicKey> keys;
        for (const auto& name : request.topics) keys.push_back({user_id, name});
        const bool catch_up = !request.since.empty();
        auto waiter = std::make_shared<PollWaiter>(
            *polls_, ctx->executor, user_id, std::move(keys), std::move(request.since), catch_up,
            std::chrono::seconds(request.timeout), respond);
        if (!polls_->Add(waiter)) {
          // D13: a 429 says when to come back.
          return respond(Detail(429, "Too many concurrent poll connections")
                             .WithHeader("Retry-After", "1"));
        }
        // D14: a client that goes away is noticed; its waiter goes (it held no messages).
        ctx->on_client_gone = [weak = std::weak_ptr<PollWaiter>(waiter)] {
          if (auto w = weak.lock()) w->AnswerNow();
        };
        waiter->Start();
      });
}

void RelayApi::RegisterPoll(http::HttpService& service) {
  service.router().Add(
      http::Verb::post, "/messages/poll",
      RequireAuthJson(deps_, auth::Permission::kRead,
                      [this](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                             const json::value& body_value, http::Responder respond) {
                        const json::value* body = &body_value;
                        const auto& user = auth.user;
                        ValidationErrors errors;
                        auto request = ParsePollRequest(*body, errors);
                        if (!request) return respond(errors.ToResponse());
                        ThenIfAllowed(
                            ctx, "", 0, "quota_poll", user.user_id,
                            options_.quota_poll_per_minute, 1, respond,
                            [this, ctx, user_id = user.user_id, request = std::move(*request),
                             respond]() mutable {
                              Park(ctx, std::move(user_id), std::move(request), respond);
                            });
                      }));

  service.router().Add(http::Verb::get, "/messages/poll/stats",
                       RequireAuth(deps_, std::nullopt,
                                   [this](const http::RequestContextPtr&, auth::AuthContext auth,
                                          http::Responder respond) {
                                     const auto& user = auth.user;
                                     respond(http::Response::Json(200, polls_->StatsJson(user)));
                                   }));
}

}  // namespace magnetar::relay
