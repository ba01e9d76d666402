#pragma once

// Reads from the message store without blocking an I/O thread: inline for an in-memory store,
// on the blocking pool (result posted back to `executor`) for one that may touch disk or network.

#include <functional>
#include <utility>
#include <vector>

#include "relay/relay_api.h"

namespace magnetar::relay {

using ReadCallback = std::function<void(Result<core::ReadResult>)>;
using TopicRead = std::pair<core::TopicKey, core::ReadRequest>;
using ReadManyCallback = std::function<void(Result<std::vector<core::ReadResult>>)>;

void ReadTopic(RelayDeps& deps, boost::asio::any_io_executor executor, const core::TopicKey& topic,
               const core::ReadRequest& request, ReadCallback done);

// Several reads as one job; the first failure fails them all.
void ReadTopics(RelayDeps& deps, boost::asio::any_io_executor executor,
                std::vector<TopicRead> reads, ReadManyCallback done);

}  // namespace magnetar::relay
