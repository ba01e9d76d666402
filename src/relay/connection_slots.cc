#include "relay/connection_slots.h"

#include <boost/asio/post.hpp>

#include "common/log.h"

namespace magnetar::relay {

std::string ConnectionSlots::Key(std::string_view scope, const std::string& user_id) {
  std::string key(scope);
  key.push_back(':');
  key += user_id;
  return key;
}

void ConnectionSlots::Acquire(std::string_view scope, const std::string& user_id, int cap,
                              const boost::asio::any_io_executor& executor,
                              std::function<void(Outcome)> then) {
  if (!shared_) return then(Outcome::kTaken);
  shared_->AcquireSlot(
      Key(scope, user_id), cap,
      [executor, then = std::move(then)](Result<bool> taken) mutable {
        Outcome outcome = Outcome::kUnavailable;
        if (taken.ok()) {
          outcome = *taken ? Outcome::kTaken : Outcome::kFull;
        } else {
          Logger("relay")->warn("connection cap check failed: {}", taken.status().ToString());
        }
        boost::asio::post(executor, [then = std::move(then), outcome] { then(outcome); });
      });
}

void ConnectionSlots::Release(std::string_view scope, const std::string& user_id) {
  if (shared_) shared_->ReleaseSlot(Key(scope, user_id));
}

}  // namespace magnetar::relay
