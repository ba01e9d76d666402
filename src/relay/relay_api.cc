#include "relay/relay_api.h"

#include "relay/poll_manager.h"
#include "relay/ws_session.h"

namespace magnetar::relay {

RelayApi::RelayApi(RelayDeps deps, RelayOptions options)
    : deps_(deps),
      options_(std::move(options)),
      polls_(std::make_unique<PollManager>(deps_, options_)),
      ws_registry_(std::make_shared<WsRegistry>()) {}

RelayApi::~RelayApi() = default;

void RelayApi::Register(http::HttpService& service) {
  RegisterHealth(service);
  RegisterAuth(service);
  RegisterTopics(service);
  RegisterMessages(service);
  RegisterPoll(service);
  RegisterWebSocket(service);
}

void RelayApi::Shutdown() { polls_->Shutdown(); }

}  // namespace magnetar::relay
