#pragma once

// Store work without blocking an I/O thread: inline for an in-memory store, on the blocking pool
// (result posted back to `executor`) for one that may touch disk or network. Reads of the
// message logs, and the writes of topic records and topic deletes (which wait for the log
// writer's batch).

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

void ReadTopic(RelayDeps& deps, boost::asio::any_io_executor executor, const core::TopicKey& topic,
               const core::ReadRequest& request, ReadCallback done);

// Several reads as one job; the first failure fails them all.
void ReadTopics(RelayDeps& deps, boost::asio::any_io_executor executor,
                std::vector<TopicRead> reads, ReadManyCallback done);

}  // namespace magnetar::relay
