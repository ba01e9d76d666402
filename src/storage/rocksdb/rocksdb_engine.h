#pragma once

// RocksDbEngine: the one RocksDB database behind every store of the durable engine (messages,
// topic records, users, kv records, cursors), one column family each (see README.md for the key
// layout). It opens the data directory safely, keeps the storage health that /ready reports, and
// offers the two ways of writing:
//   * Write(batch, sync): used by the message store's group-commit writer thread;
//   * WriteRecords(batch): everything else (a user, a topic record, a token, a cursor), written to
//     the WAL at once from the calling thread without waiting for a sync; the writer thread syncs
//     the WAL within the sync interval (durability fsync and batch), see NeedsWalSync().
//
// Opening refuses, with a clear message and without changing anything on disk: a path that is not
// a directory or not readable and writable, a directory locked by another process, a corrupt
// database, a database that is not Magnetar's, and one written by a newer format version.
//
// Health: any failed write or RocksDB background error (disk full, I/O error) marks the engine
// unhealthy; writes then fail with kUnavailable while reads keep working. The message store's
// writer thread calls TryResume() with backoff until RocksDB accepts writes again: it first
// checks that the disk takes a write again (a probe file), then calls DB::Resume(); when RocksDB
// declares the error fatal (a failed memtable switch is, on a full disk) it closes and reopens the
// database instead, which replays the WAL, and tells the stores through their reopen hooks.
//
// Lifecycle: Open() -> shared by the stores (shared_ptr) -> the database closes when the last
// store lets go. Threading: every method is thread-safe. Whoever uses db(), family() or an
// iterator holds LockDb() meanwhile (a reopen takes it exclusively) and checks db() for null;
// the *Locked methods are for callers that already hold it.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace rocksdb {
class Cache;
class ColumnFamilyHandle;
class DB;
class Env;
class EventListener;
class Status;
class WriteBatch;
}  // namespace rocksdb

namespace magnetar::storage {

// When a publish is acknowledged (see README.md "Durability levels").
enum class Durability {
  kFsync,  // its batch's WAL records were fsynced
  kBatch,  // its batch is in the WAL (OS page cache); the WAL is fsynced every sync interval
  kNone,   // its batch is in the WAL (OS page cache); never fsynced by Magnetar
};

std::optional<Durability> ParseDurability(std::string_view name);  // "fsync" | "batch" | "none"
const char* DurabilityName(Durability durability);

struct RocksDbOptions {
  std::string path = "./magnetar-data";
  Durability durability = Durability::kFsync;
  std::chrono::milliseconds sync_interval{10};
  size_t max_batch_appends = 1024;       // Append calls per write batch
  size_t max_queued_messages = 200'000;  // beyond this, Append fails with kUnavailable
  size_t block_cache_bytes = 64u << 20;
  std::chrono::milliseconds max_resume_backoff{5000};
  rocksdb::Env* env = nullptr;  // tests inject faults; not owned; null = default
};

class RocksDbEngine {
 public:
  enum Family : size_t {
    kDefault,    // the format version
    kMessages,   // topic logs
    kExpiry,     // TTL index of the messages that have one
    kTopics,     // per-topic log summary (last id, count, bytes, retention)
    kCatalog,    // core::TopicRecord
    kUsers,      // auth::User by id
    kUsernames,  // username -> user id
    kKv,         // core::KvStore records
    kCursors,    // core::CursorState by (topic, subscription)
    kFamilyCount,
  };

  static constexpr int kFormatVersion = 1;
  static constexpr const char* kFormatKey = "magnetar.format_version";

  static Result<std::shared_ptr<RocksDbEngine>> Open(const RocksDbOptions& options,
                                                     const Clock& clock);
  ~RocksDbEngine();
  RocksDbEngine(const RocksDbEngine&) = delete;
  RocksDbEngine& operator=(const RocksDbEngine&) = delete;

  const RocksDbOptions& options() const { return options_; }
  const Clock& clock() const { return clock_; }

  using DbLock = std::shared_lock<std::shared_mutex>;
  DbLock LockDb() const { return DbLock(db_mutex_); }
  // Null while the database is closed (after a failed reopen). Hold LockDb().
  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* family(Family f) const { return families_[f]; }
  // kUnavailable when db() is null. Hold LockDb().
  Status CheckOpen() const;

  // Writes `batch` (WAL then memtable); with `sync`, fsyncs the WAL first. A failure marks the
  // engine unhealthy and comes back as kUnavailable.
  Status Write(rocksdb::WriteBatch* batch, bool sync);
  Status WriteLocked(rocksdb::WriteBatch* batch, bool sync);
  // A write of records other than messages: never waits for a sync (see the class comment).
  // `build` fills the batch under LockDb(), so the column family handles it uses are current.
  Status WriteRecords(const std::function<void(rocksdb::WriteBatch&)>& build);
  // kNotFound when absent, kUnavailable on an I/O error.
  Status Get(Family family, std::string_view key, std::string* value);
  Status GetLocked(Family family, std::string_view key, std::string* value);

  // True when something was written to the WAL since the last sync and the durability level
  // syncs. ClearWalDirty() before a synced write or a SyncWal() covers what came before it.
  bool NeedsWalSync() const;
  void ClearWalDirty() { wal_dirty_.store(false); }
  void MarkWalDirty();
  Status SyncWal();

  Status Health() const;
  bool healthy() const { return healthy_.load(); }
  // Marks the engine unhealthy (a failed write, a background error) and wakes the writer.
  void ReportError(const rocksdb::Status& status, std::string_view what);
  // Tries to make writes possible again after an error (see the class comment); true when the
  // engine is healthy afterwards. Called by one thread only (the message store's writer), and
  // never while that thread holds LockDb().
  bool TryResume();

  // The writer thread's doorbell: called when there is WAL to sync or an error to recover from.
  void SetWakeup(std::function<void()> wakeup);
  // Called (on the thread that ran TryResume, without LockDb() held) after the database was
  // reopened, so a store can reload what it keeps in memory. A null hook removes `owner`'s.
  void SetReopenHook(const void* owner, std::function<void()> hook);

 private:
  class Listener;

  RocksDbEngine(const RocksDbOptions& options, const Clock& clock);
  Status OpenDb(bool check_format);
  Status CheckExisting(const std::vector<std::string>& families, bool* fresh);
  bool ProbeDisk();
  Status Reopen();
  void Wake();
  void CloseLocked();

  const RocksDbOptions options_;
  const Clock& clock_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<Listener> listener_;
  mutable std::shared_mutex db_mutex_;  // shared: any use of the database; unique: (re)open, close
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> families_;  // indexed by Family
  std::vector<rocksdb::ColumnFamilyHandle*> foreign_;   // column families we do not use
  int failed_resumes_ = 0;                              // TryResume's thread only

  std::mutex hooks_mutex_;
  std::vector<std::pair<const void*, std::function<void()>>> reopen_hooks_;  // hooks_mutex_

  std::atomic<bool> wal_dirty_{false};
  std::atomic<bool> healthy_{true};
  mutable std::mutex mutex_;
  std::string health_message_;     // guarded by mutex_
  uint64_t error_generation_ = 0;  // guarded by mutex_; counts ReportError calls
  std::function<void()> wakeup_;   // guarded by mutex_
};

// A RocksDB status as ours: NotFound -> kNotFound, anything else -> kUnavailable.
Status FromRocks(const rocksdb::Status& status, std::string_view what);

}  // namespace magnetar::storage
