// Durable publish throughput: Magnetar's RocksDB engine with group commit (many concurrent
// publishers, `--durability fsync`) against the physical reference measured in the same run on the
// same disk: a plain loop of single RocksDB writes, each with sync = true.
//
//   build/bench/durable_publish_bench [--dir DIR] [--seconds S] [--publishers N] [--bulk M]
//
// Every figure is acknowledged-durable work: a Magnetar publish counts only after its callback ran,
// which happens only after the WAL of its batch was fsynced.

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "core/broker.h"
#include "storage/rocksdb/rocksdb_engine.h"
#include "storage/rocksdb/rocksdb_message_store.h"

namespace {

using Clock = std::chrono::steady_clock;
using magnetar::core::DraftPtr;

struct Args {
  std::string dir = "./bench-data";
  double seconds = 3;
  int publishers = 64;
  int bulk = 100;
};

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dir") a.dir = argv[i + 1];
    else if (flag == "--seconds") a.seconds = std::atof(argv[i + 1]);
    else if (flag == "--publishers") a.publishers = std::atoi(argv[i + 1]);
    else if (flag == "--bulk") a.bulk = std::atoi(argv[i + 1]);
  }
  return a;
}

// The reference: one synced write per message, back to back.
double SyncedWriteLoop(const std::string& path, double seconds) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, path, &raw).ok()) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions synced;
  synced.sync = true;
  const std::string value(64, 'x');
  uint64_t n = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  while (Clock::now() < end) {
    db->Put(synced, "k" + std::to_string(n), value);
    ++n;
  }
  return n / std::chrono::duration<double>(Clock::now() - start).count();
}

// Each publisher appends `per_publish` messages, waits for the durable acknowledgement, repeats.
// Publishers are driven the way the server drives them: as asynchronous loops on an I/O thread
// (an io_context), the store's completion posted back to it, not as one OS thread each; a
// thread per publisher would measure the kernel's context switches rather than the store.
double GroupCommit(const std::string& path, double seconds, int publishers, int per_publish) {
  const magnetar::Clock& clock = magnetar::SystemClock::Instance();
  magnetar::storage::RocksDbOptions options;
  options.path = path;
  options.durability = magnetar::storage::Durability::kFsync;
  auto engine = magnetar::storage::RocksDbEngine::Open(options, clock);
  if (!engine.ok()) {
    std::fprintf(stderr, "cannot open engine: %s\n", engine.status().message().c_str());
    std::exit(1);
  }
  auto store = magnetar::storage::RocksDbMessageStore::Open(*engine);
  if (!store.ok()) std::exit(1);
  magnetar::core::Broker broker(**store, clock);

  boost::asio::io_context io(1);
  auto work = boost::asio::make_work_guard(io);
  uint64_t acked = 0;  // touched on the I/O thread only
  std::atomic<bool> stop{false};
  const std::string payload = R"({"job":"bench","n":1})";
  std::vector<magnetar::core::TopicKey> topics;
  for (int t = 0; t < 16; ++t) topics.push_back({"bench", "t" + std::to_string(t)});

  std::function<void(int)> publish_next = [&](int p) {
    if (stop) return;
    const auto& topic = topics[p % topics.size()];
    std::vector<DraftPtr> drafts;
    drafts.reserve(per_publish);
    for (int i = 0; i < per_publish; ++i) {
      auto d = std::make_shared<magnetar::core::Message>();
      d->topic = topic.name;
      d->payload = payload;
      drafts.push_back(std::move(d));
    }
    broker.Publish(topic, std::move(drafts), [&, p](auto result) {
      const size_t n = result.ok() ? result->size() : 0;
      boost::asio::post(io, [&, p, n] {
        acked += n;
        publish_next(p);
      });
    });
  };
  for (int p = 0; p < publishers; ++p) boost::asio::post(io, [&, p] { publish_next(p); });
  std::thread io_thread([&] { io.run(); });

  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  uint64_t counted = 0;
  double elapsed = 0;
  boost::asio::post(io, [&] {
    stop = true;
    counted = acked;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  });
  work.reset();
  io_thread.join();  // returns once the publishes in flight have come back
  return counted / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  std::filesystem::remove_all(args.dir);
  std::filesystem::create_directories(args.dir);
  const double reference = SyncedWriteLoop(args.dir + "/reference", args.seconds);
  const double single = GroupCommit(args.dir + "/single", args.seconds, args.publishers, 1);
  const double bulk = GroupCommit(args.dir + "/bulk", args.seconds, args.publishers, args.bulk);
  std::filesystem::remove_all(args.dir);
  std::printf("%-52s %14s %10s\n", "scenario (all acknowledged after fsync)", "per second", "ratio");
  std::printf("%-52s %14.0f %10s\n", "reference: loop of single synced RocksDB writes", reference,
              "1.0x");
  std::printf("%-52s %14.0f %9.1fx\n",
              ("magnetar group commit, " + std::to_string(args.publishers) +
               " concurrent single publishers").c_str(),
              single, single / reference);
  std::printf("%-52s %14.0f %9.1fx\n",
              ("magnetar bulk, " + std::to_string(args.publishers) + " publishers x " +
               std::to_string(args.bulk) + " msgs (msgs/s)").c_str(),
              bulk, bulk / reference);
  return 0;
}
