#pragma once

// The serialised forms of one message, one per wire encoding, shared by every subscriber that
// sends it. A message does not own its encodings: it only finds one that is still alive. Whoever
// sends a frame holds it (a WebSocket send queue, a fan-out in progress), and each thread keeps
// the encodings it made last alive a little longer (RecentEncodings), so one fan-out to a
// thousand subscribers encodes the message once. A stored message therefore costs its payload
// alone: a memory store that kept every frame it ever sent would hold each message twice.

#include <array>
#include <memory>
#include <mutex>
#include <string>

namespace magnetar::core {

using Encoded = std::shared_ptr<const std::string>;

// Keeps what this thread encoded last alive, bounded by count and bytes (see encoding_cache.cc).
void KeepRecentEncoding(Encoded encoded);

class EncodingCache {
 public:
  enum Slot : size_t { kRelayFrame = 0, kPulsarWsFrame = 1, kSlotCount = 4 };

  // The slot's encoding: the one some holder still has, else make() (called under this cache's
  // lock, so two threads never encode one message twice at once).
  template <typename Make>
  Encoded Get(Slot slot, Make&& make) const {
    std::lock_guard lock(mutex_);
    if (Encoded alive = values_[slot].lock()) return alive;
    auto made = std::make_shared<const std::string>(make());
    values_[slot] = made;
    KeepRecentEncoding(made);
    return made;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::array<std::weak_ptr<const std::string>, kSlotCount> values_;
};

}  // namespace magnetar::core
