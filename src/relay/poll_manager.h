#pragma once

// Long-poll (spec §3 with corrections D6, D9, D14). A poll never takes messages out of anything:
// it reads the store after per-topic cursors, so whatever a poll does not return stays readable
// by cursor, and a client that disconnects loses nothing. Live waiting is a subscription that
// only says "something arrived" and triggers a read.
//
// PollManager is thread-safe (one mutex over the bookkeeping). A PollWaiter lives on its HTTP
// connection's executor.

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "relay/connection_slots.h"
#include "relay/relay_api.h"

namespace magnetar::relay {

class PollWaiter;

class PollManager {
 public:
  PollManager(RelayDeps& deps, const RelayOptions& options) : deps_(deps), options_(options) {}

  // The cluster-wide caps (connection_slots.h); set once, before any Add.
  void SetSlots(std::shared_ptr<ConnectionSlots> slots) { slots_ = std::move(slots); }

  // Registers a waiter for `user_id`; false when the user is at the concurrent-poll cap. Takes
  // over the "poll" slot the caller acquired for it: given back on Remove, or at once on false.
  bool Add(const std::shared_ptr<PollWaiter>& waiter);
  void Remove(const PollWaiter* waiter);

  // GET /messages/poll/stats (D9): the caller's own topics with bare names; admins see every
  // user's, keyed "<owner_id>/<topic>".
  std::string StatsJson(const auth::User& caller) const;

  // Server shutdown: every waiter answers now with what it has.
  void Shutdown();

  RelayDeps& deps() { return deps_; }
  const RelayOptions& options() const { return options_; }

 private:
  RelayDeps& deps_;
  const RelayOptions& options_;
  std::shared_ptr<ConnectionSlots> slots_;
  mutable std::mutex mutex_;
  bool shutting_down_ = false;
  std::map<const PollWaiter*, std::weak_ptr<PollWaiter>> waiters_;
  std::map<std::string, int> per_user_;
  std::map<std::pair<std::string, std::string>, int> per_topic_;  // (owner, name) -> waiters
};

class PollWaiter : public std::enable_shared_from_this<PollWaiter> {
 public:
  struct TopicCursor {
    core::TopicKey key;
    MessageId cursor;
  };

  PollWaiter(PollManager& manager, boost::asio::any_io_executor executor, std::string user_id,
             std::vector<core::TopicKey> topics, std::map<std::string, MessageId> since,
             bool catch_up, std::chrono::seconds timeout, http::Responder respond);
  ~PollWaiter();

  // Subscribes, reads once if the request asked for catch-up, then waits (on the executor).
  void Start();
  // From any thread: something was appended to one of the topics.
  void Wake();
  // From any thread: answer now with whatever is there (shutdown, client gone).
  void AnswerNow();

  const std::string& user_id() const { return user_id_; }
  const std::vector<TopicCursor>& topics() const { return topics_; }

 private:
  void Collect(bool final);
  void Finish(std::string body);
  void Detach();
  void CountDelivered(const std::vector<core::ReadResult>& results) const;

  PollManager& manager_;
  boost::asio::any_io_executor executor_;
  std::string user_id_;
  std::vector<TopicCursor> topics_;
  bool catch_up_;
  std::chrono::seconds timeout_;
  http::Responder respond_;
  boost::asio::steady_timer timer_;
  std::vector<std::shared_ptr<core::SubscriberSink>> sinks_;
  std::atomic<bool> wake_posted_{false};
  bool reading_ = false;
  bool finished_ = false;
  UnixMicros started_at_ = 0;  // when the request began waiting (wall clock, as publish_time)
};

}  // namespace magnetar::relay
