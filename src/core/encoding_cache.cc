#include "core/encoding_cache.h"

#include <deque>

namespace magnetar::core {

namespace {

// A fan-out posts one handler per subscriber to each I/O thread; the thread runs them in turn,
// and a subscriber whose socket takes the frame at once releases it before the next one asks.
// These bounds keep a burst of recent messages encoded for all of them, and no more.
constexpr size_t kRecentMaxEntries = 256;
constexpr size_t kRecentMaxBytes = 8u << 20;

struct RecentEncodings {
  std::deque<Encoded> entries;
  size_t bytes = 0;

  void Keep(Encoded encoded) {
    bytes += encoded->size();
    entries.push_back(std::move(encoded));
    // The newest always stays, however large.
    while (entries.size() > 1 && (entries.size() > kRecentMaxEntries || bytes > kRecentMaxBytes)) {
      bytes -= entries.front()->size();
      entries.pop_front();
    }
  }
};

}  // namespace

void KeepRecentEncoding(Encoded encoded) {
  thread_local RecentEncodings recent;
  recent.Keep(std::move(encoded));
}

}  // namespace magnetar::core
