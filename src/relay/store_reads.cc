#include "relay/store_reads.h"

namespace magnetar::relay {

namespace {

Result<std::vector<core::ReadResult>> ReadAll(core::MessageStore& store,
                                              const std::vector<TopicRead>& reads) {
  std::vector<core::ReadResult> out;
  out.reserve(reads.size());
  for (const auto& [topic, request] : reads) {
    auto r = store.Read(topic, request);
    if (!r.ok()) return r.status();
    out.push_back(std::move(r).value());
  }
  return out;
}

}  // namespace

void ReadTopic(RelayDeps& deps, boost::asio::any_io_executor executor, const core::TopicKey& topic,
               const core::ReadRequest& request, ReadCallback done) {
  core::MessageStore& store = deps.broker.store();
  if (!store.blocking()) return done(store.Read(topic, request));
  deps.blocking.Run(
      executor, [&store, topic, request] { return store.Read(topic, request); }, std::move(done));
}

void ReadTopics(RelayDeps& deps, boost::asio::any_io_executor executor,
                std::vector<TopicRead> reads, ReadManyCallback done) {
  core::MessageStore& store = deps.broker.store();
  if (!store.blocking()) return done(ReadAll(store, reads));
  deps.blocking.Run(
      executor, [&store, reads = std::move(reads)] { return ReadAll(store, reads); },
      std::move(done));
}

}  // namespace magnetar::relay
