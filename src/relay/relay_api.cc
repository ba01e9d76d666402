#include "relay/relay_api.h"

#include "relay/connection_slots.h"
#include "relay/device_codes.h"
#include "relay/device_sessions.h"
#include "relay/poll_manager.h"
#include "relay/rate_limiter.h"
#include "relay/refresh_tokens.h"
#include "relay/ws_session.h"

namespace magnetar::relay {

RelayApi::RelayApi(RelayDeps deps, RelayOptions options)
    : deps_(deps),
      options_(std::move(options)),
      polls_(std::make_unique<PollManager>(deps_, options_)),
      ws_registry_(std::make_shared<WsRegistry>()),
      refresh_tokens_(std::make_unique<RefreshTokens>(deps_.kv, deps_.clock,
                                                      options_.refresh_token_ttl_days)),
      device_codes_(std::make_unique<DeviceCodes>(
          deps_.kv, deps_.clock,
          DeviceCodeOptions{options_.device_code_ttl_seconds,
                            options_.device_code_poll_interval})),
      device_sessions_(std::make_unique<DevicePageSessions>(
          deps_.jwt.DeriveKey("device-page-session"), deps_.jwt.DeriveKey("device-page-csrf"),
          deps_.kv, deps_.clock, options_.device_page_session_minutes * 60)),
      own_rate_limiter_(deps_.rate_limiter ? nullptr
                        : deps_.shared_limits
                            ? std::unique_ptr<RateLimiter>(
                                  std::make_unique<SharedRateLimiter>(*deps_.shared_limits))
                            : std::make_unique<LocalRateLimiter>(deps_.clock)),
      rate_limiter_(deps_.rate_limiter ? deps_.rate_limiter : own_rate_limiter_.get()),
      slots_(std::make_shared<ConnectionSlots>(deps_.shared_limits)) {
  polls_->SetSlots(slots_);
  ws_registry_->SetSlots(slots_);
}

RelayApi::~RelayApi() = default;

void RelayApi::Register(http::HttpService& service) {
  RegisterHealth(service);
  RegisterAuth(service);
  RegisterUsers(service);
  RegisterTokens(service);
  RegisterTopics(service);
  RegisterMessages(service);
  RegisterPoll(service);
  RegisterWebSocket(service);
  RegisterDevice(service);
  RegisterOps(service);
}

void RelayApi::Shutdown() { polls_->Shutdown(); }

std::optional<http::Response> RelayApi::RateLimited(std::string_view route, int limit_per_minute,
                                                    const http::RequestContext& ctx) {
  return CheckRateLimit(*rate_limiter_, route, limit_per_minute, ctx);
}

void RelayApi::ThenIfAllowed(const http::RequestContextPtr& ctx, std::string_view route,
                             int limit_per_minute, std::string_view quota_route,
                             const std::string& user_id, int quota_limit, int cost,
                             const http::Responder& respond, std::function<void()> proceed) {
  CheckRateLimitAsync(
      *rate_limiter_, route, limit_per_minute, *ctx,
      [this, ctx, quota_route = std::string(quota_route), user_id, quota_limit, cost, respond,
       proceed = std::move(proceed)](std::optional<http::Response> limited) mutable {
        if (limited) return respond(std::move(*limited));
        CheckUserQuotaAsync(*rate_limiter_, quota_route, user_id, quota_limit, cost,
                            ctx->executor,
                            [respond, proceed = std::move(proceed)](
                                std::optional<http::Response> over) {
                              if (over) return respond(std::move(*over));
                              proceed();
                            });
      });
}

}  // namespace magnetar::relay
