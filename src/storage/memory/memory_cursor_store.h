#pragma once

// The memory engine's subscription cursors (core::CursorStore). Nothing survives a restart.
// Thread-safe: one mutex guards the map; states are copied in and out under it.

#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "core/cursor_store.h"

namespace magnetar::storage {

class MemoryCursorStore final : public core::CursorStore {
 public:
  Status Save(const core::TopicKey& topic, const std::string& subscription,
              const core::CursorState& state) override;
  Result<core::CursorState> Load(const core::TopicKey& topic,
                                 const std::string& subscription) override;
  Status Delete(const core::TopicKey& topic, const std::string& subscription) override;

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // owner, topic, subscription

  std::mutex mutex_;
  std::map<Key, core::CursorState> cursors_;
};

}  // namespace magnetar::storage
