#pragma once

// The memory engine's topic records. Thread-safe (one lock; topic metadata changes rarely).

#include <map>
#include <mutex>

#include "core/topic_catalog.h"

namespace magnetar::storage {

class MemoryTopicCatalog final : public core::TopicCatalog {
 public:
  Status Create(const core::TopicRecord& record) override;
  Result<core::TopicRecord> Get(const core::TopicKey& key) override;
  Result<std::vector<core::TopicRecord>> ListByOwner(const std::string& owner_id) override;
  Status Update(const core::TopicRecord& record) override;
  Status Delete(const core::TopicKey& key) override;
  Result<uint64_t> Count() override;

 private:
  std::mutex mutex_;
  // Ordered by (owner, name) so one owner's topics are a contiguous range.
  std::map<std::pair<std::string, std::string>, core::TopicRecord> records_;
};

}  // namespace magnetar::storage
