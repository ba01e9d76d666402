#include "eftl/eftl_api.h"

#include "common/log.h"
#include "common/random.h"
#include "core/topic_name.h"
#include "eftl/codec.h"
#include "eftl/protocol.h"
#include "eftl/session.h"

namespace magnetar::eftl {

namespace {

// Does the comma-separated Sec-WebSocket-Protocol list offer eFTL?
bool OffersEftl(std::string_view header) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == kSubprotocol) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

void EftlShared::AddSession(const std::string& address, std::weak_ptr<Session> s) {
  std::lock_guard lock(mutex_);
  sessions_[address] = std::move(s);
}

void EftlShared::RemoveSession(const std::string& address) {
  std::lock_guard lock(mutex_);
  sessions_.erase(address);
}

std::shared_ptr<Session> EftlShared::FindSession(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(address);
  return it == sessions_.end() ? nullptr : it->second.lock();
}

std::optional<ResumeState> EftlShared::TakeResume(const std::string& client_id,
                                                  const std::string& id_token,
                                                  const std::string& user_id) {
  std::lock_guard lock(mutex_);
  auto it = resume_.find(client_id);
  if (it == resume_.end()) return std::nullopt;
  const bool ok = ConstantTimeEquals(it->second.id_token, id_token) &&
                  it->second.user_id == user_id &&
                  it->second.expires > std::chrono::steady_clock::now();
  if (!ok) return std::nullopt;
  ResumeState state = std::move(it->second);
  resume_.erase(it);
  return state;
}

void EftlShared::SaveResume(const std::string& client_id, ResumeState state) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (auto it = resume_.find(client_id); it != resume_.end() && it->second.generation > state.generation) {
    return;  // a later connection of this client already left its state
  }
  if (resume_.size() >= options.max_retained_sessions) {
    for (auto it = resume_.begin(); it != resume_.end();) {
      it = it->second.expires <= now ? resume_.erase(it) : std::next(it);
    }
    if (resume_.size() >= options.max_retained_sessions) return;  // full: this one cannot resume
  }
  state.expires = now + std::chrono::seconds(options.session_retention_seconds);
  resume_[client_id] = std::move(state);
}

std::optional<std::string> ChannelFromPath(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return std::string("eftl");
  if (core::ValidateTopicName(path)) return std::nullopt;  // also rules out '/'
  return std::string(path);
}

std::optional<std::pair<std::string, std::string>> ParseBasicAuth(std::string_view header) {
  if (header.size() < 6) return std::nullopt;
  std::string scheme(header.substr(0, 6));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "basic ") return std::nullopt;
  std::string decoded;
  std::string_view b64 = header.substr(6);
  while (!b64.empty() && b64.front() == ' ') b64.remove_prefix(1);
  if (b64.size() > 8192 || !Base64Decode(b64, &decoded)) return std::nullopt;
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(decoded.substr(0, colon), decoded.substr(colon + 1));
}

std::string DestinationTopic(std::string_view dest) {
  for (std::string_view prefix : {"TOPIC:", "QUEUE:"}) {
    if (dest.substr(0, prefix.size()) == prefix) return std::string(dest.substr(prefix.size()));
  }
  return std::string(dest);
}

EftlApi::EftlApi(EftlDeps deps, EftlOptions options)
    : shared_(std::make_shared<EftlShared>(std::move(deps), options)) {}

EftlApi::~EftlApi() = default;

void EftlApi::Register(http::HttpService& service) {
  service.AddUpgradePrefix("/", [this](const http::RequestContextPtr& ctx, net::AnyStream stream) {
    HandleUpgrade(ctx, std::move(stream));
  });
}

void EftlApi::HandleUpgrade(const http::RequestContextPtr& ctx, net::AnyStream stream) {
  // Credentials travel in the login op (no ambient authority such as cookies), so a page of
  // another origin gains nothing from connecting: no Origin check here.
  auto channel = ChannelFromPath(ctx->path);
  if (!channel) {
    return ws::RejectUpgrade(std::move(stream),
                             http::Response::Text(404, "eFTL channel not found: the path must be "
                                                       "a channel name ([A-Za-z0-9_.-])"));
  }
  if (!OffersEftl(ctx->Header(boost::beast::http::field::sec_websocket_protocol))) {
    return ws::RejectUpgrade(std::move(stream),
                             http::Response::Text(400, std::string("eFTL needs the WebSocket "
                                                                   "subprotocol ") + kSubprotocol));
  }
  SessionParams params;
  params.channel = *channel;
  params.default_topic = *channel;
  if (auto q = ctx->Query("client_id")) params.query_client_id = std::string(q->substr(0, 256));
  if (auto basic = ParseBasicAuth(ctx->Header(boost::beast::http::field::authorization))) {
    params.basic_user = std::move(basic->first);
    params.basic_password = std::move(basic->second);
  }
  params.remote = ctx->remote.address().to_string();
  auto conn = ws::WsConnection::Create(std::move(stream), shared_->deps.tracker, shared_->options.ws);
  conn->Accept(std::move(ctx->request), kSubprotocol,
               std::make_shared<Session>(shared_, std::move(params)));
}

}  // namespace magnetar::eftl
