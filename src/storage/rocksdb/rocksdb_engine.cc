#include "storage/rocksdb/rocksdb_engine.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/log.h"
#include "common/metrics.h"

namespace magnetar::storage {

namespace {

constexpr const char* kFamilyNames[RocksDbEngine::kFamilyCount] = {
    "default", "messages", "expiry", "topics", "catalog", "users", "usernames", "kv", "cursors",
};

std::shared_ptr<spdlog::logger> Log() { return Logger("storage"); }

// RocksDB's own log goes to ours (warnings and errors only), not to a LOG file in the data
// directory: opening a directory we then refuse must not rotate or create files in it.
class SpdLogger final : public rocksdb::Logger {
 public:
  SpdLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buffer[1024];
    vsnprintf(buffer, sizeof(buffer), format, ap);
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL &&
        level != rocksdb::InfoLogLevel::HEADER_LEVEL) {
      Log()->error("rocksdb: {}", buffer);
    } else if (level == rocksdb::InfoLogLevel::WARN_LEVEL) {
      Log()->warn("rocksdb: {}", buffer);
    } else {
      Log()->debug("rocksdb: {}", buffer);
    }
  }
};

bool IsLockError(const rocksdb::Status& s) {
  if (!s.IsIOError() && !s.IsBusy()) return false;
  std::string text = s.ToString();
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text.find("lock") != std::string::npos;
}

}  // namespace

// Forwards RocksDB's background errors to the engine's health, and keeps recovery in one place:
// RocksDB's own automatic recovery is declined, the writer thread calls Resume() with backoff.
// (Both at once race: an automatic attempt that fails while the disk is still full can leave an
// error that no later Resume() clears.)
class RocksDbEngine::Listener final : public rocksdb::EventListener {
 public:
  explicit Listener(RocksDbEngine* engine) : engine_(engine) {}

  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    if (error && !error->ok()) engine_->ReportError(*error, "background work");
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    if (auto_recovery) *auto_recovery = false;
  }

 private:
  RocksDbEngine* engine_;
};

std::optional<Durability> ParseDurability(std::string_view name) {
  if (name == "fsync") return Durability::kFsync;
  if (name == "batch") return Durability::kBatch;
  if (name == "none") return Durability::kNone;
  return std::nullopt;
}

const char* DurabilityName(Durability durability) {
  switch (durability) {
    case Durability::kFsync:
      return "fsync";
    case Durability::kBatch:
      return "batch";
    case Durability::kNone:
      return "none";
  }
  return "?";
}

Status FromRocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return Status::Ok();
  if (status.IsNotFound()) return NotFound(std::string(what) + ": not found");
  return Unavailable("storage " + std::string(what) + " failed: " + status.ToString());
}

namespace {

// magnetar_storage_errors_total{operation}: `what` is one of a few fixed operation names
// ("write", "WAL sync", ...), as the label "wal_sync".
metrics::Counter& StorageErrors(std::string_view what) {
  std::string operation(what);
  for (char& c : operation) {
    c = c == ' ' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return metrics::Registry::Default().GetCounter(
      "magnetar_storage_errors_total", "Storage operations that failed, by operation.",
      {{"operation", operation}});
}

}  // namespace

RocksDbEngine::RocksDbEngine(const RocksDbOptions& options, const Clock& clock)
    : options_(options), clock_(clock) {
  // The series an alert watches exist (at 0) before the first failure.
  for (std::string_view what : {"write", "WAL sync", "background work"}) StorageErrors(what);
}

RocksDbEngine::~RocksDbEngine() {
  std::unique_lock lock(db_mutex_);
  CloseLocked();
}

Result<std::shared_ptr<RocksDbEngine>> RocksDbEngine::Open(const RocksDbOptions& options,
                                                           const Clock& clock) {
  namespace fs = std::filesystem;
  const std::string& path = options.path;
  if (path.empty()) return InvalidArgument("the data directory path is empty");
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status)) {
      return Unavailable("data directory " + path + " exists and is not a directory");
    }
  } else {
    fs::create_directories(path, ec);
    if (ec) return Unavailable("cannot create data directory " + path + ": " + ec.message());
  }
  if (access(path.c_str(), R_OK | W_OK | X_OK) != 0) {
    return Unavailable("data directory " + path +
                       " is not readable and writable: " + std::strerror(errno));
  }
  std::shared_ptr<RocksDbEngine> engine(new RocksDbEngine(options, clock));
  engine->listener_ = std::make_shared<Listener>(engine.get());
  engine->cache_ = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::unique_lock lock(engine->db_mutex_);
  if (Status s = engine->OpenDb(/*check_format=*/true); !s.ok()) return s;
  return engine;
}

// db_mutex_ held exclusively.
Status RocksDbEngine::OpenDb(bool check_format) {
  namespace fs = std::filesystem;
  const std::string& path = options_.path;

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.avoid_flush_during_recovery = true;  // a reopen on a nearly full disk must work
  db_options.max_total_wal_size = 256u << 20;
  db_options.max_background_jobs = 2;
  db_options.info_log = std::make_shared<SpdLogger>();
  db_options.listeners.push_back(listener_);
  if (options_.env) db_options.env = options_.env;

  auto family_options = [&](size_t family) {
    rocksdb::ColumnFamilyOptions cf;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache_;
    if (family != kMessages && family != kExpiry) {
      // Point lookups (users, tokens, topic records): a Bloom filter skips files quickly.
      table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    }
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    if (family == kMessages) cf.write_buffer_size = 64u << 20;
    return cf;
  };

  std::vector<std::string> existing;
  bool fresh = true;
  if (fs::exists(fs::path(path) / "CURRENT")) {
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, path, &existing);
    if (!s.ok()) return Unavailable("cannot read data directory " + path + ": " + s.ToString());
    if (check_format) {
      if (Status st = CheckExisting(existing, &fresh); !st.ok()) return st;
    } else {
      fresh = false;
    }
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (size_t f = 0; f < kFamilyCount; ++f) {
    descriptors.emplace_back(kFamilyNames[f], family_options(f));
  }
  for (const auto& name : existing) {
    if (std::find(std::begin(kFamilyNames), std::end(kFamilyNames), name) ==
        std::end(kFamilyNames)) {
      descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, descriptors, &handles, &db_);
  if (!s.ok()) {
    db_ = nullptr;
    if (IsLockError(s)) {
      return Unavailable(
          "data directory " + path +
          " is locked by another process (is another magnetar using it?): " + s.ToString());
    }
    return Unavailable("cannot open data directory " + path + ": " + s.ToString());
  }
  families_.assign(handles.begin(), handles.begin() + kFamilyCount);
  foreign_.assign(handles.begin() + kFamilyCount, handles.end());

  if (fresh) {
    rocksdb::WriteOptions write;
    write.sync = true;
    s = db_->Put(write, families_[kDefault], kFormatKey, std::to_string(kFormatVersion));
    if (!s.ok()) {
      CloseLocked();
      return Unavailable("cannot initialise data directory " + path + ": " + s.ToString());
    }
    Log()->info("created data directory {} (format version {})", path, kFormatVersion);
  }
  return Status::Ok();
}

// Reads the format version through a read-only open, so that a directory we refuse is left
// exactly as it was (a read-write open would replay and rewrite its logs).
Status RocksDbEngine::CheckExisting(const std::vector<std::string>& families, bool* fresh) {
  const std::string& path = options_.path;
  rocksdb::DBOptions db_options;
  db_options.info_log = std::make_shared<SpdLogger>();
  if (options_.env) db_options.env = options_.env;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : families) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &handles, &db);
  if (!s.ok()) return Unavailable("cannot read data directory " + path + ": " + s.ToString());

  Status result = Status::Ok();
  std::string value;
  s = db->Get(rocksdb::ReadOptions(), handles[0], kFormatKey, &value);
  if (s.ok()) {
    int version = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), version);
    if (ec != std::errc() || end != value.data() + value.size() || version < 1) {
      result =
          Unavailable("data directory " + path + " is corrupt: bad format version '" + value + "'");
    } else if (version > kFormatVersion) {
      result =
          Unavailable("data directory " + path + " has format version " + std::to_string(version) +
                      ", newer than this build supports (" + std::to_string(kFormatVersion) +
                      "); run a newer magnetar or choose another --data-dir");
    } else {
      *fresh = false;
    }
  } else if (s.IsNotFound()) {
    // No version: acceptable only for a database with nothing in it (a first start that stopped
    // before writing the version). Anything else is not ours.
    for (auto* handle : handles) {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handle));
      it->SeekToFirst();
      if (it->Valid() || !it->status().ok()) {
        result = Unavailable("data directory " + path +
                             " holds a database that is not Magnetar's (no format version)");
        break;
      }
    }
  } else {
    result = Unavailable("cannot read data directory " + path + ": " + s.ToString());
  }
  for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
  db->Close().PermitUncheckedError();
  delete db;
  return result;
}

// db_mutex_ held exclusively.
void RocksDbEngine::CloseLocked() {
  if (!db_) return;
  for (auto* handle : families_) db_->DestroyColumnFamilyHandle(handle);
  for (auto* handle : foreign_) db_->DestroyColumnFamilyHandle(handle);
  families_.clear();
  foreign_.clear();
  rocksdb::Status s = db_->Close();
  if (!s.ok()) Log()->warn("closing the database: {}", s.ToString());
  delete db_;
  db_ = nullptr;
}

Status RocksDbEngine::CheckOpen() const {
  if (db_) return Status::Ok();
  return Unavailable("storage is closed: " + Health().message());
}

Status RocksDbEngine::Write(rocksdb::WriteBatch* batch, bool sync) {
  auto lock = LockDb();
  return WriteLocked(batch, sync);
}

Status RocksDbEngine::WriteLocked(rocksdb::WriteBatch* batch, bool sync) {
  if (Status open = CheckOpen(); !open.ok()) return open;
  rocksdb::WriteOptions write;
  write.sync = sync;
  rocksdb::Status s = db_->Write(write, batch);
  if (!s.ok()) {
    ReportError(s, "write");
    return FromRocks(s, "write");
  }
  return Status::Ok();
}

Status RocksDbEngine::WriteRecords(const std::function<void(rocksdb::WriteBatch&)>& build) {
  {
    auto lock = LockDb();
    if (Status open = CheckOpen(); !open.ok()) return open;
    rocksdb::WriteBatch batch;
    build(batch);
    if (Status s = WriteLocked(&batch, false); !s.ok()) return s;
  }
  MarkWalDirty();
  return Status::Ok();
}

Status RocksDbEngine::Get(Family family, std::string_view key, std::string* value) {
  auto lock = LockDb();
  return GetLocked(family, key, value);
}

Status RocksDbEngine::GetLocked(Family family, std::string_view key, std::string* value) {
  if (Status open = CheckOpen(); !open.ok()) return open;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), families_[family],
                               rocksdb::Slice(key.data(), key.size()), value);
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return NotFound("not found");
  return FromRocks(s, "read");
}

bool RocksDbEngine::NeedsWalSync() const {
  return options_.durability != Durability::kNone && wal_dirty_.load();
}

void RocksDbEngine::MarkWalDirty() {
  if (options_.durability == Durability::kNone) return;
  if (!wal_dirty_.exchange(true)) Wake();
}

Status RocksDbEngine::SyncWal() {
  static metrics::Histogram& sync_seconds = metrics::Registry::Default().GetHistogram(
      "magnetar_storage_sync_duration_seconds",
      "Time one write-ahead-log fsync took (group commit and periodic syncs).", {},
      metrics::LatencyBuckets());
  auto lock = LockDb();
  if (Status open = CheckOpen(); !open.ok()) return open;
  const auto start = std::chrono::steady_clock::now();
  rocksdb::Status s = db_->SyncWAL();
  sync_seconds.Observe(metrics::SecondsSince(start));
  if (!s.ok()) {
    ReportError(s, "WAL sync");
    return FromRocks(s, "WAL sync");
  }
  return Status::Ok();
}

Status RocksDbEngine::Health() const {
  if (healthy_.load()) return Status::Ok();
  std::lock_guard lock(mutex_);
  return Unavailable(health_message_);
}

void RocksDbEngine::ReportError(const rocksdb::Status& status, std::string_view what) {
  StorageErrors(what).Inc();
  {
    std::lock_guard lock(mutex_);
    const bool was_healthy = healthy_.exchange(false);
    ++error_generation_;
    health_message_ = "storage " + std::string(what) + " failed: " + status.ToString();
    if (was_healthy) Log()->error("{}; writes are refused until it recovers", health_message_);
  }
  Wake();
}

// Writes, syncs and removes a small file next to the database, through RocksDB's file system:
// true when the disk takes writes again. Resuming RocksDB before that only turns a full disk's
// error into a fatal one.
bool RocksDbEngine::ProbeDisk() {
  rocksdb::Env* env = options_.env ? options_.env : rocksdb::Env::Default();
  const auto& fs = env->GetFileSystem();
  const std::string path = options_.path + "/magnetar-write-probe";
  const rocksdb::IOOptions io;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = fs->NewWritableFile(path, rocksdb::FileOptions(), &file, nullptr);
  if (s.ok()) s = file->Append(std::string(64 * 1024, '\0'), io, nullptr);
  if (s.ok()) s = file->Sync(io, nullptr);
  if (file) file->Close(io, nullptr).PermitUncheckedError();
  fs->DeleteFile(path, io, nullptr).PermitUncheckedError();
  if (!s.ok()) Log()->debug("storage write probe failed: {}", s.ToString());
  return s.ok();
}

// Called from TryResume's thread without LockDb() held.
Status RocksDbEngine::Reopen() {
  std::unique_lock lock(db_mutex_);
  CloseLocked();
  return OpenDb(/*check_format=*/false);
}

bool RocksDbEngine::TryResume() {
  if (healthy_.load()) return true;
  uint64_t generation = 0;
  std::string reason;
  {
    std::lock_guard lock(mutex_);
    generation = error_generation_;
    reason = health_message_;
  }
  if (!ProbeDisk()) return false;
  rocksdb::Status resumed = rocksdb::Status::Incomplete("the database is closed");
  {
    auto lock = LockDb();
    if (db_) resumed = db_->Resume();
  }
  bool reopened = false;
  if (!resumed.ok()) {
    // Not under mutex_: a failing resume reports its own error through the listener.
    ++failed_resumes_;
    const bool hopeless = !db_ || resumed.severity() >= rocksdb::Status::Severity::kFatalError ||
                          failed_resumes_ >= 3;
    if (!hopeless) {
      Log()->debug("storage resume failed: {}", resumed.ToString());
      return false;
    }
    Log()->warn("storage cannot resume ({}); reopening the database", resumed.ToString());
    if (Status s = Reopen(); !s.ok()) {
      Log()->error("storage reopen failed: {}", s.message());
      return false;
    }
    reopened = true;
  }
  failed_resumes_ = 0;
  {
    std::lock_guard lock(mutex_);
    if (!reopened && generation != error_generation_) return false;  // a new error meanwhile
    healthy_.store(true);
    health_message_.clear();
  }
  Log()->warn("storage recovered{} ({} cleared)", reopened ? " by reopening the database" : "",
              reason);
  if (reopened) {
    std::lock_guard lock(hooks_mutex_);
    for (const auto& [owner, hook] : reopen_hooks_) hook();
  }
  return true;
}

void RocksDbEngine::SetWakeup(std::function<void()> wakeup) {
  std::lock_guard lock(mutex_);
  wakeup_ = std::move(wakeup);
}

void RocksDbEngine::SetReopenHook(const void* owner, std::function<void()> hook) {
  std::lock_guard lock(hooks_mutex_);
  std::erase_if(reopen_hooks_, [owner](const auto& entry) { return entry.first == owner; });
  if (hook) reopen_hooks_.emplace_back(owner, std::move(hook));
}

void RocksDbEngine::Wake() {
  // Under mutex_, so that SetWakeup(nullptr) returning means no call is running any more.
  std::lock_guard lock(mutex_);
  if (wakeup_) wakeup_();
}

}  // namespace magnetar::storage
