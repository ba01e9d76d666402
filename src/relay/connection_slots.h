#pragma once

// ConnectionSlots: the cluster-wide side of the per-user connection caps (--ws-max-per-user,
// --poll-max-per-user; correction D13). With one node (no core::SharedLimits) it admits
// everything and the registries' own in-memory counts (WsRegistry, PollManager) are the caps;
// with redis:// every WebSocket and parked long-poll first takes a slot in Redis, held by this
// node's lease (core/shared_limits.h), and gives it back when it ends — the in-memory counts
// then still hold, and never refuse what Redis admitted (this node's count is part of Redis').
//
// Thread-safe. Acquire's `then` runs on the executor given (inline without shared limits).

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <string>
#include <string_view>

#include "core/shared_limits.h"

namespace magnetar::relay {

class ConnectionSlots {
 public:
  enum class Outcome { kTaken, kFull, kUnavailable };

  // `shared` (may be null) outlives this.
  explicit ConnectionSlots(core::SharedLimits* shared) : shared_(shared) {}

  bool shared() const { return shared_ != nullptr; }
  // One slot of `scope` ("ws", "poll") for `user_id`, of `cap`.
  void Acquire(std::string_view scope, const std::string& user_id, int cap,
               const boost::asio::any_io_executor& executor,
               std::function<void(Outcome)> then);
  // Gives back a slot Acquire took (kTaken). No-op without shared limits.
  void Release(std::string_view scope, const std::string& user_id);

 private:
  static std::string Key(std::string_view scope, const std::string& user_id);
  core::SharedLimits* shared_;
};

}  // namespace magnetar::relay
