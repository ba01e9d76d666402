#pragma once

// Builds the storage engine chosen by --storage: every store the server needs, from one engine.
//
//   rocksdb (default)  durable, in --data-dir, acknowledged at --durability (see README.md)
//   memory             nothing survives a restart
//   redis://host:port  every store in one Redis (or Valkey), shared by any number of nodes; also
//                      builds the ClusterBus that carries fan-out between them
//
// Lifecycle: BuildStorage() at start (a refusal, e.g. a locked or newer data directory, is
// returned as an error for main() to print); Storage::close() once the front ends have stopped,
// before the stores are destroyed: it finishes the queued writes (their callbacks run) and stops
// the engine's threads.

#include <functional>
#include <memory>
#include <string>

#include "auth/token_records.h"
#include "auth/user_store.h"
#include "common/clock.h"
#include "common/status.h"
#include "core/cluster_bus.h"
#include "core/cursor_store.h"
#include "core/kv_store.h"
#include "core/message_store.h"
#include "core/shared_limits.h"
#include "core/topic_catalog.h"
#include "server/config.h"

namespace magnetar::server {

struct Storage {
  std::unique_ptr<core::MessageStore> messages;
  std::unique_ptr<core::TopicCatalog> topics;
  std::unique_ptr<core::KvStore> kv;
  std::unique_ptr<core::CursorStore> cursors;
  std::unique_ptr<auth::UserStore> users;
  std::unique_ptr<core::ClusterBus> bus;  // null: one node (fan-out stays in the process)
  // Counters every node shares (rate limits, per-user caps); null: one node, counted in memory.
  std::shared_ptr<core::SharedLimits> limits;
  // Each record read (users, KV, topic records, cursors) is a network round trip (Redis), not an
  // in-process lookup: callers on I/O threads run them on the blocking pool.
  bool records_remote = false;
  // Reads a token check's deny-list record and user at once (Redis); null: one after the other.
  std::unique_ptr<auth::TokenRecords> token_records;
  std::function<void()> close;  // idempotent
  std::string description;      // for the start-up log line, e.g. "rocksdb at ./data (fsync)"
};

Result<Storage> BuildStorage(const ServeConfig& config, const Clock& clock);

}  // namespace magnetar::server
