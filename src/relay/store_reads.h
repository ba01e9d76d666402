#pragma once

// Store work without blocking an I/O thread: inline for an in-memory store, on the blocking pool
// (result posted back to `executor`) for one that may touch disk or network. Reads of the
// message logs, and the writes of topic records and topic deletes (which wait for the log
// writer's batch). Record reads on the hot paths (authentication, a publish's topic) stay inline
// with RocksDB and leave the thread only on Redis (RunRecordWork).

#include <functional>
#include <utility>
#include <vector>

#include "relay/relay_api.h"

namespace magnetar::relay {

using ReadCallback = std::function<void(Result<core::ReadResult>)>;
using TopicRead = std::pair<core::TopicKey, core::ReadRequest>;
using ReadManyCallback = std::function<void(Result<std::vector<core::ReadResult>>)>;

// Runs `work()` (returning a value) where the engine allows, then `then(result)` on `executor`.
template <typename Work, typename Then>
void RunStoreWork(RelayDeps& deps, const boost::asio::any_io_executor& executor, Work work,
                  Then then) {
  if (!deps.broker.store().blocking()) return then(work());
  deps.blocking.Run(executor, std::move(work), std::move(then));
}

// Runs `work()` on the engine's records (users, KV, topic catalog): inline when those are
// in-process lookups (memory, RocksDB), on the blocking pool when each is a network round trip
// (Redis), then `then(result)` on `executor`.
template <typename Work, typename Then>
void RunRecordWork(const RelayDeps& deps, const boost::asio::any_io_executor& executor, Work work,
                   Then then) {
  if (!deps.records_remote) return then(work());
  deps.blocking.Run(executor, std::move(work), std::move(then));
}

// Runs `work()` where the engine's record calls may wait: right here when they are in-process,
// on the blocking pool when each is a network round trip (Redis). `work` uses only what is safe
// from any thread: the stores, the broker, the responder.
template <typename Work>
void RunWithRecords(const RelayDeps& deps, Work work) {
  if (!deps.records_remote) return work();
  deps.blocking.Post(std::move(work));
}

void ReadTopic(RelayDeps& deps, boost::asio::any_io_executor executor, const core::TopicKey& topic,
               const core::ReadRequest& request, ReadCallback done);

// Several reads as one job; the first failure fails them all.
void ReadTopics(RelayDeps& deps, boost::asio::any_io_executor executor,
                std::vector<TopicRead> reads, ReadManyCallback done);

}  // namespace magnetar::relay
