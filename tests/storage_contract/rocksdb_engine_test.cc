// RocksDB-only parts of the storage contract: what a durable engine adds to the shared suite.
// Reopening keeps everything (ids keep increasing), group commit shares batches and keeps order,
// the durability levels sync as documented, an unusable data directory is refused without being
// changed, and a full disk fails writes (kUnavailable, unhealthy) while reads go on, until the
// engine recovers by itself.

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "tests/storage_contract/engines.h"

namespace magnetar::contract {
namespace {

using core::MessagePtr;
using core::TopicKey;
using namespace std::chrono_literals;

constexpr UnixMicros kStart = 1'700'000'000'000'000;

bool WaitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return predicate();
}

// Opens the database the way a tool would, without the engine, and runs `body` on it.
void WithRawDb(const std::string& path,
               const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& body,
               bool create = false) {
  rocksdb::DBOptions options;
  options.create_if_missing = create;
  std::vector<std::string> names = {"default"};
  if (!create) {
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, path, &names).ok());
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, path, descriptors, &handles, &db).ok());
  body(db, handles[0]);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
}

// Every file of a directory with its size and modification time.
std::map<std::string, std::pair<uintmax_t, std::filesystem::file_time_type>> Listing(
    const std::string& path) {
  std::map<std::string, std::pair<uintmax_t, std::filesystem::file_time_type>> out;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    out[entry.path().filename()] = {entry.file_size(), entry.last_write_time()};
  }
  return out;
}

class RocksDbEngineTest : public ::testing::Test {
 protected:
  storage::RocksDbOptions Options() {
    storage::RocksDbOptions o;
    o.path = dir_.path() + "/db";
    return o;
  }
  std::unique_ptr<TestEngine> Open(const storage::RocksDbOptions& options) {
    auto r = OpenRocksDb(clock_, options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<TestEngine> Open() { return Open(Options()); }

  static std::vector<MessagePtr> Append(TestEngine& e, const TopicKey& topic,
                                        std::vector<core::DraftPtr> drafts) {
    auto r = AppendSync(*e.messages, topic, std::move(drafts));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::vector<MessagePtr>{};
  }
  static std::vector<MessagePtr> ReadAll(TestEngine& e, const TopicKey& topic) {
    auto r = e.messages->Read(topic, {.limit = 100'000});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->messages : std::vector<MessagePtr>{};
  }

  ManualClock clock_{kStart};
  TempDir dir_;
};

// --- reopen ---

TEST_F(RocksDbEngineTest, ReopenKeepsEverythingAndIdsKeepIncreasing) {
  const TopicKey a{"owner", "a"}, b{"owner", "b"}, c{"owner", "c"};
  std::vector<MessagePtr> a_messages;
  core::TopicStats a_stats, c_stats;
  {
    auto e = Open();
    a_messages = Append(*e, a, {Draft("a0"), Draft("a1-ttl", kStart + 10'000'000), Draft("a2")});
    e->messages->SetRetention(b, {.max_messages = 3});
    Append(*e, b, Drafts(5));
    Append(*e, c, Drafts(4));
    ASSERT_TRUE(e->messages->DeleteTopic(c).ok());
    a_stats = *e->messages->Stats(a);
    c_stats = *e->messages->Stats(c);

    core::TopicRecord record{"topic-id", "owner", "a", kStart, "described"};
    ASSERT_TRUE(e->topics->Create(record).ok());
    auth::User user;
    user.user_id = "user-id";
    user.username = "alice";
    user.password_hash = "$argon2id$hash";
    user.permissions = {"admin"};
    ASSERT_TRUE(e->users->Create(user).ok());
    ASSERT_TRUE(e->kv->Put("refresh:1", "token", kStart + 3'600'000'000).ok());
    ASSERT_TRUE(e->cursors->Save(a, "sub", {{1, 2}, {{1, 4}}}).ok());
  }
  clock_.Set(kStart - 3'600'000'000);  // the clock went back an hour meanwhile
  auto e = Open();
  ASSERT_TRUE(e);

  auto read = ReadAll(*e, a);
  ASSERT_EQ(read.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(read[i]->id, a_messages[i]->id);
    EXPECT_EQ(read[i]->payload, a_messages[i]->payload);
    EXPECT_EQ(read[i]->publish_time, kStart);
  }
  auto stats = *e->messages->Stats(a);
  EXPECT_EQ(stats.message_count, a_stats.message_count);
  EXPECT_EQ(stats.byte_count, a_stats.byte_count);
  EXPECT_EQ(stats.first_id, a_stats.first_id);
  EXPECT_EQ(stats.last_id, a_stats.last_id);
  auto next = Append(*e, a, Drafts(1));
  EXPECT_GT(next.front()->id, a_messages.back()->id);

  // b's own retention was kept.
  Append(*e, b, Drafts(2));
  EXPECT_EQ(e->messages->Stats(b)->message_count, 3u);
  // c stays deleted, and its ids go on from the last one it ever had.
  EXPECT_TRUE(ReadAll(*e, c).empty());
  EXPECT_EQ(e->messages->Stats(c)->last_id, c_stats.last_id);
  EXPECT_GT(Append(*e, c, Drafts(1)).front()->id, c_stats.last_id);

  auto record = e->topics->Get({"owner", "a"});
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->description, "described");
  EXPECT_EQ(*e->topics->Count(), 1u);
  auto user = e->users->GetByUsername("alice");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->password_hash, "$argon2id$hash");
  EXPECT_EQ(**e->kv->Get("refresh:1"), "token");
  EXPECT_EQ(*e->cursors->Load(a, "sub"), (core::CursorState{{1, 2}, {{1, 4}}}));

  // The TTL index survived too.
  clock_.Set(kStart + 11'000'000);
  e->messages->Sweep(clock_.Now());
  EXPECT_EQ(e->messages->Stats(a)->message_count, 3u);  // a0, a2 and the one appended above
}

// --- group commit ---

TEST_F(RocksDbEngineTest, PublishesWaitingTogetherShareOneBatchAndKeepTheirOrder) {
  auto e = Open();
  // Hold the writer inside the first callback while everyone else queues up.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> writer_held{false};
  e->messages->Append({"o", "gate"}, Drafts(1), [&](Result<std::vector<MessagePtr>> r) {
    EXPECT_TRUE(r.ok());
    writer_held = true;
    released.wait();
  });
  ASSERT_TRUE(WaitFor([&] { return writer_held.load(); }, 5s));

  constexpr int kThreads = 8, kPerThread = 100, kTopics = 4;
  struct Done {
    int thread, seq;
    std::vector<MessageId> ids;
  };
  std::mutex mutex;
  std::vector<std::vector<Done>> by_topic(kTopics);
  std::atomic<int> remaining{kThreads * kPerThread};
  std::promise<void> all_done;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int topic = (t + i) % kTopics;
        e->messages->Append({"o", "t" + std::to_string(topic)}, Drafts(1 + i % 2),
                            [&, t, i, topic](Result<std::vector<MessagePtr>> r) {
                              ASSERT_TRUE(r.ok());
                              {
                                std::lock_guard lock(mutex);
                                by_topic[topic].push_back({t, i, Ids(*r)});
                              }
                              if (--remaining == 0) all_done.set_value();
                            });
      }
    });
  }
  for (auto& th : threads) th.join();
  release.set_value();
  all_done.get_future().wait();

  const auto c = e->rocks->counters();
  EXPECT_EQ(c.appends, 1u + kThreads * kPerThread);
  EXPECT_LE(c.batches, 3u) << "800 queued appends should take one or two batches";
  EXPECT_EQ(c.synced_batches, c.batches);
  for (int topic = 0; topic < kTopics; ++topic) {
    MessageId last;
    std::map<int, int> last_seq_of_thread;
    for (const auto& d : by_topic[topic]) {
      for (MessageId id : d.ids) {
        EXPECT_GT(id, last);
        last = id;
      }
      auto [it, inserted] = last_seq_of_thread.try_emplace(d.thread, d.seq);
      if (!inserted) {
        EXPECT_GT(d.seq, it->second) << "a thread's appends completed out of order";
        it->second = d.seq;
      }
    }
    auto stored = ReadAll(*e, {"o", "t" + std::to_string(topic)});
    std::vector<MessageId> expected;
    for (const auto& d : by_topic[topic])
      expected.insert(expected.end(), d.ids.begin(), d.ids.end());
    EXPECT_EQ(Ids(stored), expected);
  }
}

TEST_F(RocksDbEngineTest, ConcurrentSynchronousPublishersShareSyncs) {
  auto e = Open();
  constexpr int kThreads = 16, kPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const TopicKey topic{"o", "t" + std::to_string(t % 3)};
      MessageId last;
      for (int i = 0; i < kPerThread; ++i) {
        auto r = AppendSync(*e->messages, topic, Drafts(1));
        if (!r.ok() || r->front()->id <= last) ++failures;
        if (r.ok()) last = r->front()->id;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const auto c = e->rocks->counters();
  EXPECT_EQ(c.appends, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LT(c.synced_batches, c.appends);
  size_t total = 0;
  for (int t = 0; t < 3; ++t) total += ReadAll(*e, {"o", "t" + std::to_string(t)}).size();
  EXPECT_EQ(total, static_cast<size_t>(kThreads * kPerThread));
}

// --- durability levels ---

TEST_F(RocksDbEngineTest, FsyncSyncsEveryBatchAndRecordsWrittenAsideWithinTheInterval) {
  auto e = Open();
  Append(*e, {"o", "t"}, Drafts(3));
  auto c = e->rocks->counters();
  EXPECT_EQ(c.batches, 1u);
  EXPECT_EQ(c.synced_batches, 1u);
  const uint64_t syncs = c.wal_syncs;
  ASSERT_TRUE(e->kv->Put("k", "v", 0).ok());  // written without waiting for a sync
  EXPECT_TRUE(WaitFor([&] { return e->rocks->counters().wal_syncs > syncs; }, 2s));
}

TEST_F(RocksDbEngineTest, BatchAcknowledgesBeforeTheTimedSync) {
  auto options = Options();
  options.durability = storage::Durability::kBatch;
  options.sync_interval = 20ms;
  auto e = Open(options);
  Append(*e, {"o", "t"}, Drafts(3));
  EXPECT_EQ(e->rocks->counters().synced_batches, 0u);
  EXPECT_TRUE(WaitFor([&] { return e->rocks->counters().wal_syncs >= 1; }, 2s));
}

TEST_F(RocksDbEngineTest, NoneNeverSyncs) {
  auto options = Options();
  options.durability = storage::Durability::kNone;
  auto e = Open(options);
  Append(*e, {"o", "t"}, Drafts(3));
  ASSERT_TRUE(e->kv->Put("k", "v", 0).ok());
  std::this_thread::sleep_for(50ms);
  const auto c = e->rocks->counters();
  EXPECT_EQ(c.synced_batches, 0u);
  EXPECT_EQ(c.wal_syncs, 0u);
  e.reset();
  auto again = Open(options);  // a clean close still keeps everything
  EXPECT_EQ(ReadAll(*again, {"o", "t"}).size(), 3u);
}

// --- refusals ---

TEST_F(RocksDbEngineTest, LockedDirectoryIsRefused) {
  auto first = Open();
  Append(*first, {"o", "t"}, Drafts(1));
  auto second = OpenRocksDb(clock_, Options());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("locked"), std::string::npos)
      << second.status().message();
  Append(*first, {"o", "t"}, Drafts(1));  // the owner is unaffected
  EXPECT_EQ(ReadAll(*first, {"o", "t"}).size(), 2u);
}

TEST_F(RocksDbEngineTest, NewerFormatIsRefusedAndLeftAlone) {
  Open().reset();
  WithRawDb(Options().path, [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cf, storage::RocksDbEngine::kFormatKey, "2").ok());
  });
  const auto before = Listing(Options().path);
  auto refused = OpenRocksDb(clock_, Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("format version 2, newer"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(Listing(Options().path), before) << "a refused directory was changed";
  WithRawDb(Options().path, [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    std::string value;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), cf, storage::RocksDbEngine::kFormatKey, &value).ok());
    EXPECT_EQ(value, "2");
  });
}

TEST_F(RocksDbEngineTest, CorruptDirectoryIsRefused) {
  {
    auto e = Open();
    Append(*e, {"o", "t"}, Drafts(1));
  }
  std::ofstream(Options().path + "/CURRENT", std::ios::trunc) << "MANIFEST-999999\n";
  auto refused = OpenRocksDb(clock_, Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("cannot read data directory"), std::string::npos)
      << refused.status().message();
}

TEST_F(RocksDbEngineTest, SomebodyElsesDatabaseIsRefused) {
  WithRawDb(
      Options().path,
      [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cf, "hello", "world").ok());
      },
      /*create=*/true);
  auto refused = OpenRocksDb(clock_, Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not Magnetar's"), std::string::npos)
      << refused.status().message();
}

TEST_F(RocksDbEngineTest, UnusablePathsAreRefused) {
  std::ofstream(dir_.path() + "/file") << "x";
  auto options = Options();
  options.path = dir_.path() + "/file";
  auto refused = OpenRocksDb(clock_, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not a directory"), std::string::npos);

  if (geteuid() != 0) {  // root reads everything
    std::filesystem::create_directory(dir_.path() + "/closed");
    std::filesystem::permissions(dir_.path() + "/closed", std::filesystem::perms::none);
    options.path = dir_.path() + "/closed";
    refused = OpenRocksDb(clock_, options);
    std::filesystem::permissions(dir_.path() + "/closed", std::filesystem::perms::owner_all);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("not readable and writable"), std::string::npos);
  }
}

// --- disk full ---

// A file system whose writes fail with "no space" while `full` is set.
class FullDiskFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FullDiskFs(std::shared_ptr<rocksdb::FileSystem> target)
      : rocksdb::FileSystemWrapper(std::move(target)) {}
  const char* Name() const override { return "FullDiskFs"; }

  std::atomic<bool> full{false};      // every write fails
  std::atomic<bool> wal_full{false};  // only WAL writes fail (RocksDB then gives up resuming)

  bool Fails(const std::string& name) const {
    return full || (wal_full && name.size() > 4 && name.substr(name.size() - 4) == ".log");
  }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (Fails(name)) return rocksdb::IOStatus::NoSpace("injected: disk full");
    auto s = target()->NewWritableFile(name, options, result, dbg);
    if (s.ok()) *result = std::make_unique<File>(std::move(*result), this, name);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    if (Fails(name)) return rocksdb::IOStatus::NoSpace("injected: disk full");
    auto s = target()->ReopenWritableFile(name, options, result, dbg);
    if (s.ok()) *result = std::make_unique<File>(std::move(*result), this, name);
    return s;
  }

 private:
  class File final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> target, FullDiskFs* fs, std::string name)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), name_(std::move(name)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->Fails(name_)) return rocksdb::IOStatus::NoSpace("injected: disk full");
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->Fails(name_)) return rocksdb::IOStatus::NoSpace("injected: disk full");
      return target()->Append(data, options, info, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      if (fs_->Fails(name_)) return rocksdb::IOStatus::NoSpace("injected: disk full");
      return target()->Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (fs_->Fails(name_)) return rocksdb::IOStatus::NoSpace("injected: disk full");
      return target()->Fsync(options, dbg);
    }

   private:
    FullDiskFs* fs_;
    const std::string name_;
  };
};

TEST_F(RocksDbEngineTest, DiskFullFailsWritesKeepsReadsAndRecoversByItself) {
  auto fs = std::make_shared<FullDiskFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  auto options = Options();
  options.env = env.get();
  options.max_resume_backoff = 200ms;
  auto e = Open(options);
  ASSERT_TRUE(e);
  const TopicKey topic{"o", "t"};
  auto before = Append(*e, topic, Drafts(3, "before"));
  auth::User user;
  user.user_id = "u1";
  user.username = "alice";
  ASSERT_TRUE(e->users->Create(user).ok());

  fs->full = true;
  auto failed = AppendSync(*e->messages, topic, Drafts(2, "lost"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  Status health = e->messages->Health();
  EXPECT_EQ(health.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(health.message().empty());
  // Later publishes fail fast; reads of everything go on.
  EXPECT_EQ(AppendSync(*e->messages, topic, Drafts(1)).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Payloads(ReadAll(*e, topic)),
            (std::vector<std::string>{"before0", "before1", "before2"}));
  EXPECT_TRUE(e->users->GetByUsername("alice").ok());
  auth::User bob;
  bob.user_id = "u2";
  bob.username = "bob";
  EXPECT_EQ(e->users->Create(bob).code(), StatusCode::kUnavailable);

  fs->full = false;
  ASSERT_TRUE(WaitFor([&] { return e->messages->Health().ok(); }, 10s))
      << e->messages->Health().message();
  auto after = Append(*e, topic, Drafts(2, "after"));
  ASSERT_EQ(after.size(), 2u);
  EXPECT_GT(after.front()->id, before.back()->id);
  EXPECT_EQ(Payloads(ReadAll(*e, topic)),
            (std::vector<std::string>{"before0", "before1", "before2", "after0", "after1"}));
  ASSERT_TRUE(e->users->Create(bob).ok());

  // And all of it is on disk.
  e.reset();
  auto reopened = Open(options);
  EXPECT_EQ(ReadAll(*reopened, topic).size(), 5u);
  EXPECT_TRUE(reopened->users->GetByUsername("bob").ok());
}

TEST_F(RocksDbEngineTest, AnErrorRocksDbCannotResumeFromIsRecoveredByReopening) {
  auto fs = std::make_shared<FullDiskFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  auto options = Options();
  options.env = env.get();
  options.max_resume_backoff = 200ms;
  auto e = Open(options);
  ASSERT_TRUE(e);
  const TopicKey topic{"o", "t"};
  auto before = Append(*e, topic, Drafts(3, "before"));
  ASSERT_TRUE(e->topics->Create({"id", "o", "t", kStart, std::nullopt}).ok());

  // Only the WAL fails: the write probe passes, Resume() then fails to switch to a new WAL, which
  // RocksDB treats as fatal, and the engine reopens the database (retrying until that works).
  fs->wal_full = true;
  EXPECT_EQ(AppendSync(*e->messages, topic, Drafts(2, "lost")).status().code(),
            StatusCode::kUnavailable);
  EXPECT_FALSE(e->messages->Health().ok());
  std::this_thread::sleep_for(300ms);
  fs->wal_full = false;
  ASSERT_TRUE(WaitFor([&] { return e->messages->Health().ok(); }, 10s))
      << e->messages->Health().message();

  auto after = Append(*e, topic, Drafts(2, "after"));
  ASSERT_EQ(after.size(), 2u);
  EXPECT_GT(after.front()->id, before.back()->id);
  EXPECT_EQ(Payloads(ReadAll(*e, topic)),
            (std::vector<std::string>{"before0", "before1", "before2", "after0", "after1"}));
  EXPECT_EQ(e->messages->Stats(topic)->message_count, 5u);
  EXPECT_EQ(*e->topics->Count(), 1u);
  EXPECT_TRUE(e->topics->Get({"o", "t"}).ok());
}

}  // namespace
}  // namespace magnetar::contract
