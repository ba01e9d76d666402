#include "storage/rocksdb/rocksdb_message_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "common/log.h"
#include "common/metrics.h"

namespace magnetar::storage {

namespace {

using rocks::MessageHeader;
using rocks::TopicMeta;
using SteadyClock = std::chrono::steady_clock;

// Trims of up to this many stored messages use point deletes; longer ones one range delete
// (range tombstones are cheap to write but every memtable iterator has to look at them).
constexpr size_t kMaxPointDeletes = 64;
// TTL expiries handled per Sweep(); the rest wait for the next one.
constexpr size_t kMaxExpiredPerSweep = 10'000;
constexpr std::chrono::milliseconds kMinResumeBackoff{100};

std::shared_ptr<spdlog::logger> Log() { return Logger("storage"); }

rocksdb::Slice AsSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view AsView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

// The id after `last` for a message published at `now` (hi = ms, lo = sequence within that ms).
MessageId NextId(MessageId last, UnixMicros now) {
  const uint64_t now_ms = now > 0 ? static_cast<uint64_t>(now / 1000) : 0;
  if (now_ms > last.hi) return {now_ms, 0};
  if (last.lo == UINT64_MAX) return {last.hi + 1, 0};
  return {last.hi, last.lo + 1};
}

MessageId Successor(MessageId id) {
  if (id.lo == UINT64_MAX) return {id.hi + 1, 0};
  return {id.hi, id.lo + 1};
}

void Subtract(TopicMeta& meta, uint64_t bytes) {
  if (meta.count > 0) --meta.count;
  meta.bytes -= std::min(meta.bytes, bytes);
}

}  // namespace

RocksDbMessageStore::RocksDbMessageStore(std::shared_ptr<RocksDbEngine> engine)
    : engine_(std::move(engine)), clock_(engine_->clock()), options_(engine_->options()) {}

Result<std::unique_ptr<RocksDbMessageStore>> RocksDbMessageStore::Open(
    std::shared_ptr<RocksDbEngine> engine) {
  std::unique_ptr<RocksDbMessageStore> store(new RocksDbMessageStore(std::move(engine)));
  if (Status s = store->Load(); !s.ok()) return s;
  RocksDbMessageStore* self = store.get();
  self->last_sync_ = SteadyClock::now();
  self->engine_->SetWakeup([self] {
    { std::lock_guard lock(self->queue_mutex_); }
    self->queue_cv_.notify_all();
  });
  self->engine_->SetReopenHook(self, [self] { self->Reload(); });
  self->writer_ = std::thread([self] { self->WriterLoop(); });
  self->writer_id_ = self->writer_.get_id();
  return store;
}

RocksDbMessageStore::~RocksDbMessageStore() { Stop(); }

Status RocksDbMessageStore::Load() {
  TopicMap loaded;
  if (Status s = LoadInto(&loaded); !s.ok()) return s;
  std::unique_lock lock(topics_mutex_);
  topics_ = std::move(loaded);
  return Status::Ok();
}

Status RocksDbMessageStore::LoadInto(TopicMap* topics) {
  auto lock = engine_->LockDb();
  if (Status open = engine_->CheckOpen(); !open.ok()) return open;
  std::unique_ptr<rocksdb::Iterator> it(
      engine_->db()->NewIterator(rocksdb::ReadOptions(), engine_->family(RocksDbEngine::kTopics)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    core::TopicKey topic;
    TopicMeta meta;
    if (!rocks::ParseTopicPrefix(AsView(it->key()), &topic) ||
        !rocks::DecodeTopicMeta(AsView(it->value()), &meta)) {
      return Unavailable("data directory is corrupt: bad topic summary record");
    }
    topics->emplace(std::move(topic), meta);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "loading topics");
  return Status::Ok();
}

void RocksDbMessageStore::Reload() {
  // The reopened database holds every batch that was acknowledged, and perhaps a failed one that
  // still reached the WAL: its summaries are the truth, except that no id handed out may return.
  TopicMap loaded;
  if (Status s = LoadInto(&loaded); !s.ok()) {
    Log()->error("reloading topic summaries after a reopen: {}", s.message());
    return;
  }
  std::unique_lock lock(topics_mutex_);
  for (const auto& [topic, meta] : topics_) {
    auto& fresh = loaded[topic];
    fresh.last_id = std::max(fresh.last_id, meta.last_id);
  }
  topics_ = std::move(loaded);
}

void RocksDbMessageStore::Stop() {
  std::lock_guard stop_lock(stop_mutex_);
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  engine_->SetWakeup(nullptr);
  engine_->SetReopenHook(this, nullptr);
}

RocksDbMessageStore::Counters RocksDbMessageStore::counters() const {
  Counters c;
  c.batches = batches_.load();
  c.synced_batches = synced_batches_.load();
  c.wal_syncs = wal_syncs_.load();
  c.appends = appends_.load();
  c.messages = messages_.load();
  c.failed_batches = failed_batches_.load();
  return c;
}

// --- the calling threads' side ---

void RocksDbMessageStore::Append(const core::TopicKey& topic, std::vector<core::DraftPtr> drafts,
                                 core::AppendCallback done) {
  if (drafts.empty()) return done(std::vector<core::MessagePtr>{});
  const size_t n = drafts.size();
  {
    std::unique_lock lock(queue_mutex_);
    if (stopping_) {
      lock.unlock();
      return done(Unavailable("storage is closed"));
    }
    if (queued_messages_ > 0 && queued_messages_ + n > options_.max_queued_messages) {
      lock.unlock();
      return done(Unavailable("storage writer is overloaded; retry later"));
    }
    queued_messages_ += n;
    queue_.push_back(AppendRequest{topic, std::move(drafts), std::move(done)});
  }
  queue_cv_.notify_one();
}

Status RocksDbMessageStore::RunOnWriter(std::function<Status()> run) {
  if (std::this_thread::get_id() == writer_id_) return run();  // from an append callback
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_) return Unavailable("storage is closed");
    queue_.push_back(ControlRequest{std::move(run), std::move(promise)});
  }
  queue_cv_.notify_one();
  return future.get();
}

Status RocksDbMessageStore::DeleteTopic(const core::TopicKey& topic) {
  return RunOnWriter([this, topic] { return DoDeleteTopic(topic); });
}

void RocksDbMessageStore::SetDefaultRetention(const core::RetentionPolicy& policy) {
  std::unique_lock lock(topics_mutex_);
  default_policy_ = policy;
}

void RocksDbMessageStore::SetRetention(const core::TopicKey& topic,
                                       const core::RetentionPolicy& policy) {
  Status s = RunOnWriter([this, topic, policy] { return DoSetRetention(topic, policy); });
  if (!s.ok()) Log()->warn("retention of {} not saved: {}", topic.ToString(), s.message());
}

void RocksDbMessageStore::Sweep(UnixMicros now) {
  Status s = RunOnWriter([this, now] { return DoSweep(now); });
  if (!s.ok()) Log()->warn("sweep: {}", s.message());
}

core::RetentionPolicy RocksDbMessageStore::PolicyOf(const TopicMeta& meta) const {
  if (meta.policy) return *meta.policy;
  std::shared_lock lock(topics_mutex_);
  return default_policy_;
}

Result<core::ReadResult> RocksDbMessageStore::Read(const core::TopicKey& topic,
                                                   const core::ReadRequest& request) {
  core::ReadResult result;
  if (request.limit == 0 || request.after == MessageId::Max()) return result;
  TopicMeta meta;
  {
    std::shared_lock lock(topics_mutex_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) return result;
    meta = it->second;
  }
  const core::RetentionPolicy policy = PolicyOf(meta);
  const UnixMicros now = clock_.Now();

  // Start at the oldest stored message rather than before it: the keys below it are deleted, and
  // seeking there would walk over their tombstones.
  MessageId lower = Successor(request.after);
  if (meta.count > 0 && meta.first_id > lower) lower = meta.first_id;
  // Stop after the last committed message: a batch still being synced is already in RocksDB.
  const MessageId upper = std::min(request.before, Successor(meta.last_id));
  if (lower >= upper) return result;
  const std::string prefix = rocks::TopicPrefix(topic);
  const std::string lower_key = rocks::MessageKey(prefix, lower);
  const std::string upper_key = rocks::MessageKey(prefix, upper);
  const rocksdb::Slice lower_slice = AsSlice(lower_key);
  const rocksdb::Slice upper_slice = AsSlice(upper_key);
  rocksdb::ReadOptions read;
  read.iterate_lower_bound = &lower_slice;
  read.iterate_upper_bound = &upper_slice;
  auto lock = engine_->LockDb();
  if (Status open = engine_->CheckOpen(); !open.ok()) return open;
  std::unique_ptr<rocksdb::Iterator> it(
      engine_->db()->NewIterator(read, engine_->family(RocksDbEngine::kMessages)));

  bool corrupt = false;
  // False when the scan should stop.
  auto take = [&]() {
    auto m = std::make_shared<core::Message>();
    if (!rocks::DecodeMessage(AsView(it->value()), m.get())) {
      corrupt = true;
      return false;
    }
    if (m->ExpiredAt(now)) return true;
    if (policy.max_age_micros != 0 && m->publish_time + policy.max_age_micros <= now) return true;
    if (result.messages.size() == request.limit) {
      result.has_more = true;
      return false;
    }
    m->id = rocks::MessageKeyId(AsView(it->key()));
    m->topic = topic.name;
    result.messages.push_back(std::move(m));
    return true;
  };
  if (request.descending) {
    for (it->SeekForPrev(upper_slice); it->Valid(); it->Prev()) {
      if (it->key() == upper_slice) continue;
      if (!take()) break;
    }
  } else {
    for (it->Seek(lower_slice); it->Valid(); it->Next()) {
      if (!take()) break;
    }
  }
  if (corrupt) return Internal("corrupt message record in topic " + topic.ToString());
  if (!it->status().ok()) return FromRocks(it->status(), "read");
  return result;
}

Result<core::TopicStats> RocksDbMessageStore::Stats(const core::TopicKey& topic) {
  core::TopicStats stats;
  std::shared_lock lock(topics_mutex_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return stats;
  const TopicMeta& meta = it->second;
  stats.message_count = meta.count;
  stats.byte_count = meta.bytes;
  stats.last_id = meta.last_id;
  if (meta.count > 0) stats.first_id = meta.first_id;
  return stats;
}

// --- the writer thread ---

void RocksDbMessageStore::WriterLoop() {
  std::vector<Request> work;
  std::unique_lock lock(queue_mutex_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) break;
      if (auto deadline = NextTimedWork()) {
        queue_cv_.wait_until(lock, *deadline);
      } else {
        queue_cv_.wait(lock);
      }
    }
    // Everything waiting now goes into this round: one batch per run of appends.
    size_t appends = 0;
    while (!queue_.empty() && appends < options_.max_batch_appends) {
      if (auto* a = std::get_if<AppendRequest>(&queue_.front())) {
        ++appends;
        queued_messages_ -= a->drafts.size();
      }
      work.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    MaintainHealth();
    if (!work.empty()) Process(work);
    work.clear();
    MaybeSyncWal(false);
    lock.lock();
  }
  lock.unlock();
  MaybeSyncWal(true);
}

std::optional<SteadyClock::time_point> RocksDbMessageStore::NextTimedWork() const {
  std::optional<SteadyClock::time_point> next;
  if (!engine_->healthy()) next = next_resume_;
  if (engine_->NeedsWalSync()) {
    const auto sync_at = last_sync_ + options_.sync_interval;
    if (!next || sync_at < *next) next = sync_at;
  }
  return next;
}

void RocksDbMessageStore::MaintainHealth() {
  if (engine_->healthy()) {
    resume_backoff_ = kMinResumeBackoff;
    return;
  }
  const auto now = SteadyClock::now();
  if (now < next_resume_) return;
  if (engine_->TryResume()) {
    resume_backoff_ = kMinResumeBackoff;
    return;
  }
  next_resume_ = now + resume_backoff_;
  resume_backoff_ = std::min(resume_backoff_ * 2, options_.max_resume_backoff);
}

void RocksDbMessageStore::MaybeSyncWal(bool force) {
  if (!engine_->NeedsWalSync() || !engine_->healthy()) return;
  const auto now = SteadyClock::now();
  if (!force && now < last_sync_ + options_.sync_interval) return;
  engine_->ClearWalDirty();
  if (!engine_->SyncWal().ok()) {
    engine_->MarkWalDirty();
    return;
  }
  last_sync_ = now;
  ++wal_syncs_;
}

void RocksDbMessageStore::Process(std::vector<Request>& work) {
  std::vector<AppendRequest*> group;
  for (auto& request : work) {
    if (auto* append = std::get_if<AppendRequest>(&request)) {
      group.push_back(append);
      continue;
    }
    if (!group.empty()) {
      CommitAppends(group);
      group.clear();
    }
    auto& control = std::get<ControlRequest>(request);
    control.result->set_value(control.run());
  }
  if (!group.empty()) CommitAppends(group);
}

RocksDbMessageStore::Staged& RocksDbMessageStore::Stage(StagedMap& staged,
                                                        const core::TopicKey& topic) {
  auto [it, inserted] = staged.try_emplace(topic);
  Staged& s = it->second;
  if (inserted) {
    s.prefix = rocks::TopicPrefix(topic);
    std::shared_lock lock(topics_mutex_);
    if (auto live = topics_.find(topic); live != topics_.end()) s.meta = live->second;
    s.committed_count = s.meta.count;
  }
  return s;
}

void RocksDbMessageStore::Publish(const StagedMap& staged) {
  std::unique_lock lock(topics_mutex_);
  for (const auto& [topic, s] : staged) topics_[topic] = s.meta;
}

RocksDbMessageStore::DropPredicate RocksDbMessageStore::RetentionPredicate(
    const core::RetentionPolicy& policy, UnixMicros now) {
  return [policy, now](const TopicMeta& meta, const MessageHeader& h) {
    return (policy.max_messages != 0 && meta.count > policy.max_messages) ||
           (policy.max_bytes != 0 && meta.bytes > policy.max_bytes) ||
           (policy.max_age_micros != 0 && h.publish_time + policy.max_age_micros <= now) ||
           (h.expires_at != 0 && h.expires_at <= now);
  };
}

Status RocksDbMessageStore::TrimFront(Staged& s, const DropPredicate& drop,
                                      rocksdb::WriteBatch& batch) {
  if (s.meta.count == 0) return Status::Ok();
  auto* messages = engine_->family(RocksDbEngine::kMessages);
  TopicMeta meta = s.meta;  // applied only when the scan succeeds
  std::vector<std::string> dropped_keys;
  bool range = false;
  std::optional<MessageId> first_kept;
  if (s.committed_count > 0) {
    const std::string lower = rocks::MessageKey(s.prefix, meta.first_id);
    const std::string upper = rocks::PrefixSuccessor(s.prefix);
    const rocksdb::Slice lower_slice = AsSlice(lower);
    const rocksdb::Slice upper_slice = AsSlice(upper);
    rocksdb::ReadOptions read;
    read.iterate_lower_bound = &lower_slice;
    read.iterate_upper_bound = &upper_slice;
    auto lock = engine_->LockDb();
    if (Status open = engine_->CheckOpen(); !open.ok()) return open;
    std::unique_ptr<rocksdb::Iterator> it(engine_->db()->NewIterator(read, messages));
    for (it->Seek(lower_slice); it->Valid(); it->Next()) {
      MessageHeader h;
      if (!rocks::DecodeMessageHeader(AsView(it->value()), &h)) {
        return Internal("corrupt message record in " + s.prefix);
      }
      if (!drop(meta, h)) {
        first_kept = rocks::MessageKeyId(AsView(it->key()));
        break;
      }
      Subtract(meta, h.byte_size);
      if (dropped_keys.size() < kMaxPointDeletes) {
        dropped_keys.push_back(it->key().ToString());
      } else {
        range = true;
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "retention scan");
  }
  if (!first_kept) {
    // Every stored message went: continue into the ones this batch adds.
    for (const Added& a : s.added) {
      if (!drop(meta, a.header)) {
        first_kept = a.id;
        break;
      }
      Subtract(meta, a.header.byte_size);
      batch.Delete(messages, rocks::MessageKey(s.prefix, a.id));
    }
  }
  if (range) {
    const std::string end =
        first_kept ? rocks::MessageKey(s.prefix, *first_kept) : rocks::PrefixSuccessor(s.prefix);
    batch.DeleteRange(messages, dropped_keys.front(), end);
  } else {
    for (const auto& key : dropped_keys) batch.Delete(messages, key);
  }
  if (first_kept) {
    meta.first_id = *first_kept;
  } else {
    meta.count = 0;
    meta.bytes = 0;
    meta.first_id = MessageId::Min();
  }
  s.meta = meta;
  return Status::Ok();
}

void RocksDbMessageStore::CommitAppends(std::vector<AppendRequest*>& appends) {
  if (!engine_->healthy()) {
    const Status health = engine_->Health();
    ++failed_batches_;
    for (auto* a : appends) a->done(health);
    return;
  }
  auto* messages = engine_->family(RocksDbEngine::kMessages);
  auto* expiry = engine_->family(RocksDbEngine::kExpiry);
  const UnixMicros now = clock_.Now();
  rocksdb::WriteBatch batch;
  StagedMap staged;
  std::vector<std::vector<core::MessagePtr>> results(appends.size());
  for (size_t k = 0; k < appends.size(); ++k) {
    AppendRequest& a = *appends[k];
    Staged& s = Stage(staged, a.topic);
    results[k].reserve(a.drafts.size());
    for (auto& draft : a.drafts) {
      const MessageId id = NextId(s.meta.last_id, now);
      draft->id = id;
      draft->publish_time = now;
      const std::string key = rocks::MessageKey(s.prefix, id);
      batch.Put(messages, key, rocks::EncodeMessage(*draft));
      if (draft->expires_at != 0) {
        batch.Put(expiry, rocks::ExpiryKey(draft->expires_at, key), rocksdb::Slice());
      }
      const MessageHeader header{draft->ByteSize(), now, draft->expires_at};
      if (s.meta.count == 0) s.meta.first_id = id;
      ++s.meta.count;
      s.meta.bytes += header.byte_size;
      s.meta.last_id = id;
      s.added.push_back({id, header});
      results[k].push_back(std::move(draft));
    }
  }
  auto* topics = engine_->family(RocksDbEngine::kTopics);
  for (auto& [topic, s] : staged) {
    const core::RetentionPolicy policy = PolicyOf(s.meta);
    const bool over = (policy.max_messages != 0 && s.meta.count > policy.max_messages) ||
                      (policy.max_bytes != 0 && s.meta.bytes > policy.max_bytes);
    if (over) {
      if (Status t = TrimFront(s, RetentionPredicate(policy, now), batch); !t.ok()) {
        Log()->warn("retention of {} postponed: {}", topic.ToString(), t.message());
      }
    }
    batch.Put(topics, s.prefix, rocks::EncodeTopicMeta(s.meta));
  }

  // With fsync durability the batch is written unsynced and the WAL then synced with SyncWAL(),
  // not written with sync = true: a synced write holds RocksDB's write queue through the fsync,
  // so every other write (a topic record, a token, an idempotency record, from any thread) would
  // wait for it; SyncWAL() lets them proceed meanwhile. Nobody sees the batch early: reads stop at
  // the committed summaries, which Publish() advances only after the sync.
  const bool sync = options_.durability == Durability::kFsync;
  static metrics::Histogram& batch_messages = metrics::Registry::Default().GetHistogram(
      "magnetar_storage_batch_messages",
      "Messages per group-commit batch (publishes waiting together share one write and sync).", {},
      metrics::SizeBuckets());
  size_t batch_size = 0;
  for (const auto& r : results) batch_size += r.size();
  batch_messages.Observe(static_cast<double>(batch_size));
  Status written = engine_->Write(&batch, false);
  if (written.ok() && sync) {
    engine_->ClearWalDirty();  // this sync covers every record written before it
    written = engine_->SyncWal();
    if (!written.ok()) engine_->MarkWalDirty();
  }
  if (!written.ok()) {
    ++failed_batches_;
    {
      // The batch may still reach the WAL: never hand its ids out again.
      std::unique_lock lock(topics_mutex_);
      for (const auto& [topic, s] : staged) {
        auto& live = topics_[topic];
        live.last_id = std::max(live.last_id, s.meta.last_id);
      }
    }
    for (auto* a : appends) a->done(written);
    return;
  }
  if (!sync) engine_->MarkWalDirty();
  Publish(staged);
  ++batches_;
  if (sync) ++synced_batches_;
  for (size_t k = 0; k < appends.size(); ++k) {
    ++appends_;
    messages_ += results[k].size();
    appends[k]->done(std::move(results[k]));
  }
}

Status RocksDbMessageStore::CommitMaintenance(const StagedMap& staged, rocksdb::WriteBatch& batch) {
  if (!engine_->healthy()) return engine_->Health();
  auto* topics = engine_->family(RocksDbEngine::kTopics);
  for (const auto& [topic, s] : staged) {
    batch.Put(topics, s.prefix, rocks::EncodeTopicMeta(s.meta));
  }
  if (Status w = engine_->Write(&batch, false); !w.ok()) return w;
  engine_->MarkWalDirty();
  Publish(staged);
  return Status::Ok();
}

Status RocksDbMessageStore::DoDeleteTopic(const core::TopicKey& topic) {
  {
    std::shared_lock lock(topics_mutex_);
    if (!topics_.contains(topic)) return Status::Ok();  // nothing was ever stored
  }
  StagedMap staged;
  Staged& s = Stage(staged, topic);
  rocksdb::WriteBatch batch;
  batch.DeleteRange(engine_->family(RocksDbEngine::kMessages), s.prefix,
                    rocks::PrefixSuccessor(s.prefix));
  s.meta.count = 0;
  s.meta.bytes = 0;
  s.meta.first_id = MessageId::Min();
  s.meta.policy.reset();
  // The TTL index entries of the deleted messages stay; Sweep drops them when they come due.
  return CommitMaintenance(staged, batch);
}

Status RocksDbMessageStore::DoSetRetention(const core::TopicKey& topic,
                                           const core::RetentionPolicy& policy) {
  StagedMap staged;
  Staged& s = Stage(staged, topic);
  s.meta.policy = policy;
  rocksdb::WriteBatch batch;
  if (Status t = TrimFront(s, RetentionPredicate(policy, clock_.Now()), batch); !t.ok()) return t;
  return CommitMaintenance(staged, batch);
}

Status RocksDbMessageStore::SweepExpired(
    UnixMicros now, std::unordered_set<core::TopicKey, core::TopicKeyHash>* dirty) {
  auto* messages = engine_->family(RocksDbEngine::kMessages);
  auto* expiry = engine_->family(RocksDbEngine::kExpiry);
  std::string upper;
  rocks::AppendU64BE(upper, static_cast<uint64_t>(std::max<UnixMicros>(now, 0)) + 1);
  const rocksdb::Slice upper_slice = AsSlice(upper);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper_slice;
  rocksdb::WriteBatch batch;
  StagedMap staged;
  {
    auto lock = engine_->LockDb();
    if (Status open = engine_->CheckOpen(); !open.ok()) return open;
    std::unique_ptr<rocksdb::Iterator> it(engine_->db()->NewIterator(read, expiry));
    size_t handled = 0;
    for (it->SeekToFirst(); it->Valid() && handled < kMaxExpiredPerSweep; it->Next(), ++handled) {
      batch.Delete(expiry, it->key());
      UnixMicros expires_at = 0;
      std::string_view message_key;
      core::TopicKey topic;
      if (!rocks::ParseExpiryKey(AsView(it->key()), &expires_at, &message_key) ||
          !rocks::ParseTopicPrefix(message_key.substr(0, message_key.size() - rocks::kIdBytes),
                                   &topic)) {
        continue;  // not a key we wrote: drop it
      }
      std::string value;
      Status got = engine_->GetLocked(RocksDbEngine::kMessages, message_key, &value);
      if (got.code() == StatusCode::kNotFound) continue;  // trimmed or deleted already
      if (!got.ok()) return got;
      MessageHeader h;
      if (!rocks::DecodeMessageHeader(value, &h)) continue;
      Staged& s = Stage(staged, topic);
      batch.Delete(messages, AsSlice(message_key));
      Subtract(s.meta, h.byte_size);
      if (rocks::MessageKeyId(message_key) == s.meta.first_id) dirty->insert(topic);
      if (s.meta.count == 0) s.meta.first_id = MessageId::Min();
    }
    if (!it->status().ok()) return FromRocks(it->status(), "TTL scan");
  }
  if (batch.Count() == 0) return Status::Ok();
  return CommitMaintenance(staged, batch);
}

Status RocksDbMessageStore::DoSweep(UnixMicros now) {
  std::unordered_set<core::TopicKey, core::TopicKeyHash> dirty;
  if (Status s = SweepExpired(now, &dirty); !s.ok()) return s;

  std::vector<std::pair<core::TopicKey, TopicMeta>> live;
  {
    std::shared_lock lock(topics_mutex_);
    for (const auto& [topic, meta] : topics_) {
      if (meta.count > 0) live.emplace_back(topic, meta);
    }
  }
  StagedMap staged;
  rocksdb::WriteBatch batch;
  for (const auto& [topic, meta] : live) {
    const core::RetentionPolicy policy = PolicyOf(meta);
    const bool over = (policy.max_messages != 0 && meta.count > policy.max_messages) ||
                      (policy.max_bytes != 0 && meta.bytes > policy.max_bytes);
    if (!over && policy.max_age_micros == 0 && !dirty.contains(topic)) continue;
    Staged s;
    s.prefix = rocks::TopicPrefix(topic);
    s.meta = meta;
    s.committed_count = meta.count;
    if (Status t = TrimFront(s, RetentionPredicate(policy, now), batch); !t.ok()) return t;
    if (s.meta.count != meta.count || s.meta.first_id != meta.first_id) {
      staged.emplace(topic, std::move(s));
    }
  }
  if (staged.empty()) return Status::Ok();
  return CommitMaintenance(staged, batch);
}

}  // namespace magnetar::storage
