#pragma once

// ConnectionTracker: every live connection registers here so that shutdown can reach them all.
// Thread-safe. Connections deregister themselves when they end.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace magnetar::net {

class Closable {
 public:
  virtual ~Closable() = default;
  // Begin a graceful close: finish the request in flight, then close. Called from any thread;
  // implementations post to their own executor.
  virtual void Shutdown() = 0;
};

class ConnectionTracker {
 public:
  uint64_t Add(std::weak_ptr<Closable> c) {
    std::lock_guard lock(mutex_);
    const uint64_t id = ++next_id_;
    live_.emplace(id, std::move(c));
    return id;
  }
  void Remove(uint64_t id) {
    std::lock_guard lock(mutex_);
    live_.erase(id);
  }
  size_t size() const {
    std::lock_guard lock(mutex_);
    return live_.size();
  }
  void ShutdownAll() {
    std::unordered_map<uint64_t, std::weak_ptr<Closable>> copy;
    {
      std::lock_guard lock(mutex_);
      copy = live_;
    }
    for (auto& [id, weak] : copy) {
      if (auto c = weak.lock()) c->Shutdown();
    }
  }

 private:
  mutable std::mutex mutex_;
  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, std::weak_ptr<Closable>> live_;
};

}  // namespace magnetar::net
