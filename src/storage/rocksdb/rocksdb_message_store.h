#pragma once

// RocksDbMessageStore: the durable topic logs (core::MessageStore) with a group-commit writer.
//
// Writes: Append() only enqueues; one writer thread owns every change to the logs. It takes all
// the requests waiting at that moment (up to max_batch_appends), assigns ids in queue order (the
// Broker holds a per-topic lock around Append, so queue order is id order per topic), writes the
// messages, the TTL index entries, the retention trims and each touched topic's summary as one
// WriteBatch, syncs it as the durability level says, and only then runs the callbacks, in queue
// order. Publishes that arrive while a batch is being synced wait together for the next one, so
// one fsync acknowledges them all. DeleteTopic, SetRetention and Sweep run on the same thread,
// between batches, and the caller waits for them (inline when called from a callback).
//
// Reads (Read) use bounded RocksDB iterators from the calling thread and filter out messages
// past their TTL or their topic's age limit; Stats and Health answer from memory and never block.
//
// Failures: a failed batch fails its callbacks with kUnavailable, the engine turns unhealthy and
// later Appends fail at once, while the writer retries RocksDB's Resume() with backoff; reads keep
// working. Ids handed out in a failed batch are not reused.
//
// Lifecycle: Open() loads every topic's summary and starts the writer; Stop() (or the destructor)
// finishes what is queued, syncs, and joins it. Threading: every method is thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "core/message_store.h"
#include "storage/rocksdb/codec.h"
#include "storage/rocksdb/rocksdb_engine.h"

namespace magnetar::storage {

class RocksDbMessageStore final : public core::MessageStore {
 public:
  // What the writer has done so far (tests and metrics).
  struct Counters {
    uint64_t batches = 0;         // write batches of appends committed
    uint64_t synced_batches = 0;  // of which written with an fsync of the WAL
    uint64_t wal_syncs = 0;       // separate WAL syncs (batch durability, records written aside)
    uint64_t appends = 0;         // Append calls acknowledged
    uint64_t messages = 0;        // messages acknowledged
    uint64_t failed_batches = 0;
  };

  static Result<std::unique_ptr<RocksDbMessageStore>> Open(std::shared_ptr<RocksDbEngine> engine);
  ~RocksDbMessageStore() override;
  RocksDbMessageStore(const RocksDbMessageStore&) = delete;
  RocksDbMessageStore& operator=(const RocksDbMessageStore&) = delete;

  // Finishes every queued request (their callbacks run), syncs the WAL, and stops the writer.
  // Idempotent. Afterwards Append and the control calls fail with kUnavailable.
  void Stop();

  bool blocking() const override { return true; }
  void Append(const core::TopicKey& topic, std::vector<core::DraftPtr> drafts,
              core::AppendCallback done) override;
  Result<core::ReadResult> Read(const core::TopicKey& topic,
                                const core::ReadRequest& request) override;
  Result<core::TopicStats> Stats(const core::TopicKey& topic) override;
  Status DeleteTopic(const core::TopicKey& topic) override;
  void SetDefaultRetention(const core::RetentionPolicy& policy) override;
  void SetRetention(const core::TopicKey& topic, const core::RetentionPolicy& policy) override;
  void Sweep(UnixMicros now) override;
  Status Health() override { return engine_->Health(); }

  Counters counters() const;

 private:
  struct AppendRequest {
    core::TopicKey topic;
    std::vector<core::DraftPtr> drafts;
    core::AppendCallback done;
  };
  struct ControlRequest {
    std::function<Status()> run;
    std::shared_ptr<std::promise<Status>> result;
  };
  using Request = std::variant<AppendRequest, ControlRequest>;

  // A topic's log while a batch is being built: the summary as it will be once the batch
  // commits, and the messages the batch adds (not yet visible to iterators).
  struct Added {
    MessageId id;
    rocks::MessageHeader header;
  };
  struct Staged {
    std::string prefix;  // TopicPrefix()
    rocks::TopicMeta meta;
    uint64_t committed_count = 0;  // messages already in the database
    std::vector<Added> added;
  };
  using StagedMap = std::unordered_map<core::TopicKey, Staged, core::TopicKeyHash>;
  // Decides, for the oldest remaining message, whether retention drops it.
  using DropPredicate = std::function<bool(const rocks::TopicMeta&, const rocks::MessageHeader&)>;

  using TopicMap = std::unordered_map<core::TopicKey, rocks::TopicMeta, core::TopicKeyHash>;

  explicit RocksDbMessageStore(std::shared_ptr<RocksDbEngine> engine);
  Status Load();
  Status LoadInto(TopicMap* topics);
  // After the engine reopened the database (writer thread): reload the summaries.
  void Reload();

  // Runs `run` on the writer thread and waits for its result.
  Status RunOnWriter(std::function<Status()> run);
  void WriterLoop();
  std::optional<std::chrono::steady_clock::time_point> NextTimedWork() const;
  void MaintainHealth();
  void MaybeSyncWal(bool force);
  void Process(std::vector<Request>& work);
  void CommitAppends(std::vector<AppendRequest*>& appends);

  Staged& Stage(StagedMap& staged, const core::TopicKey& topic);
  void Publish(const StagedMap& staged);
  core::RetentionPolicy PolicyOf(const rocks::TopicMeta& meta) const;
  // Drops messages from the front of the log while `drop` says so; updates `s.meta`.
  Status TrimFront(Staged& s, const DropPredicate& drop, rocksdb::WriteBatch& batch);
  static DropPredicate RetentionPredicate(const core::RetentionPolicy& policy, UnixMicros now);
  // Writes a batch of deletions and summaries built by the writer, then publishes the summaries.
  Status CommitMaintenance(const StagedMap& staged, rocksdb::WriteBatch& batch);

  Status DoDeleteTopic(const core::TopicKey& topic);
  Status DoSetRetention(const core::TopicKey& topic, const core::RetentionPolicy& policy);
  Status DoSweep(UnixMicros now);
  Status SweepExpired(UnixMicros now,
                      std::unordered_set<core::TopicKey, core::TopicKeyHash>* dirty);

  std::shared_ptr<RocksDbEngine> engine_;
  const Clock& clock_;
  const RocksDbOptions& options_;

  // The committed summaries. Written by the writer thread only (and Load), read by anyone.
  mutable std::shared_mutex topics_mutex_;
  TopicMap topics_;
  core::RetentionPolicy default_policy_;  // guarded by topics_mutex_

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<Request> queue_;   // guarded by queue_mutex_
  size_t queued_messages_ = 0;  // guarded by queue_mutex_
  bool stopping_ = false;       // guarded by queue_mutex_
  std::thread writer_;
  std::thread::id writer_id_;  // set once in Open(), before any other call
  std::mutex stop_mutex_;      // serialises Stop()

  // Writer-thread state.
  std::chrono::steady_clock::time_point last_sync_;
  std::chrono::steady_clock::time_point next_resume_;
  std::chrono::milliseconds resume_backoff_{100};

  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> synced_batches_{0};
  std::atomic<uint64_t> wal_syncs_{0};
  std::atomic<uint64_t> appends_{0};
  std::atomic<uint64_t> messages_{0};
  std::atomic<uint64_t> failed_batches_{0};
};

}  // namespace magnetar::storage
