#pragma once

// TopicCatalog: the topic records (who owns which name, with what description). Engines implement
// it next to their MessageStore.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/message.h"

namespace magnetar::core {

struct TopicRecord {
  std::string topic_id;  // UUID4
  std::string owner_id;
  std::string name;
  UnixMicros created_at = 0;
  std::optional<std::string> description;
  // A Pulsar partitioned topic (spec/pulsar-binary.md §7): 0 = not partitioned; N = the topic
  // stands for the topics `<name>-partition-0..N-1` (each with its own record once used).
  uint32_t partitions = 0;

  TopicKey key() const { return {owner_id, name}; }
};

class TopicCatalog {
 public:
  virtual ~TopicCatalog() = default;
  // kAlreadyExists when (owner, name) exists.
  virtual Status Create(const TopicRecord& record) = 0;
  virtual Result<TopicRecord> Get(const TopicKey& key) = 0;  // kNotFound
  virtual Result<std::vector<TopicRecord>> ListByOwner(const std::string& owner_id) = 0;
  virtual Status Update(const TopicRecord& record) = 0;      // kNotFound
  virtual Status Delete(const TopicKey& key) = 0;            // kNotFound
  virtual Result<uint64_t> Count() = 0;
};

}  // namespace magnetar::core
