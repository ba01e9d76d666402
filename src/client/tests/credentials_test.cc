// CredentialsFile, InMemoryCredentialsStore, utc_now_iso (spec clients.md §A.2, §A.7
// "Credentials file" / "In-memory store", §A.10.7).

#include "client/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <regex>

#include "client/tests/support/log_capture.h"
#include "client/tests/support/process.h"

namespace magnetar::client {
namespace {

namespace fs = std::filesystem;
using testsupport::LogCapture;
using testsupport::TempDir;

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Spit(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

std::vector<std::string> DotFiles(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

Credentials Sample(std::string token = "jti.secret") {
  return Credentials{"https://relay.example", std::move(token), utc_now_iso(), std::nullopt,
                     std::nullopt};
}

TEST(CredentialsFile, RoundTripWithMode0600AndPythonLayout) {
  TempDir dir;
  CredentialsFile file(dir.path() / "relay_credentials.json");
  EXPECT_FALSE(file.exists());
  EXPECT_EQ(file.load(), std::nullopt);
  Credentials c{"https://relay.example", "abc.def", "2026-05-13T14:33:07.412345+00:00",
                std::nullopt, std::nullopt};
  file.save(c);
  EXPECT_TRUE(file.exists());
  EXPECT_EQ(ModeOf(file.path()), 0600u);
  EXPECT_EQ(file.load(), c);
  // Keys sorted, two-space indent, ": " separators: what Python's json.dump(indent=2,
  // sort_keys=True) writes.
  EXPECT_EQ(Slurp(file.path()),
            "{\n  \"issued_at\": \"2026-05-13T14:33:07.412345+00:00\",\n"
            "  \"refresh_token\": \"abc.def\",\n  \"relay_url\": \"https://relay.example\"\n}");
}

TEST(CredentialsFile, DeviceRecordCarriesAccessTokenAndExpiresIn) {
  TempDir dir;
  CredentialsFile file(dir.path() / "c.json");
  Credentials c{"https://r", std::nullopt, "t", "AT", std::nullopt};
  file.save(c);
  const std::string text = Slurp(file.path());
  EXPECT_NE(text.find("\"access_token\": \"AT\""), std::string::npos);
  EXPECT_NE(text.find("\"expires_in\": null"), std::string::npos);
  EXPECT_NE(text.find("\"refresh_token\": null"), std::string::npos);
  EXPECT_EQ(file.load(), c);
}

TEST(CredentialsFile, ReadsWhatPythonWrites) {
  TempDir dir;
  fs::path p = dir.path() / "c.json";
  Spit(p,
       "{\n  \"access_token\": \"eyJ\\u00e9\",\n  \"expires_in\": 600,\n  \"issued_at\": "
       "\"2026-05-13T14:33:07.412345+00:00\",\n  \"refresh_token\": \"j.s\",\n  \"relay_url\": "
       "\"https://relay.example\"\n}");
  ::chmod(p.c_str(), 0600);
  auto c = CredentialsFile(p).load();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->refresh_token, "j.s");
  EXPECT_EQ(c->access_token, "eyJ\xc3\xa9");
  EXPECT_EQ(c->expires_in, 600);
  EXPECT_EQ(c->issued_at, "2026-05-13T14:33:07.412345+00:00");
}

TEST(CredentialsFile, SecondSaveReplacesAndLeavesNoTemporary) {
  TempDir dir;
  CredentialsFile file(dir.path() / "c.json");
  file.save(Sample("one.1"));
  file.save(Sample("two.2"));
  EXPECT_EQ(file.load()->refresh_token, "two.2");
  EXPECT_TRUE(DotFiles(dir.path(), ".pulsar-relay-cred-").empty());
}

TEST(CredentialsFile, CorruptJsonLoadsAsNothing) {
  TempDir dir;
  fs::path p = dir.path() / "c.json";
  Spit(p, "{not json");
  ::chmod(p.c_str(), 0600);
  LogCapture log;
  EXPECT_TRUE(CredentialsFile(p).exists());
  EXPECT_EQ(CredentialsFile(p).load(), std::nullopt);
  EXPECT_NE(log.text().find("Failed to read"), std::string::npos);
  Spit(p, "[1, 2]");
  EXPECT_EQ(CredentialsFile(p).load(), std::nullopt);
}

TEST(CredentialsFile, SymlinkIsRefused) {
  TempDir dir;
  CredentialsFile real(dir.path() / "real.json");
  real.save(Sample());
  fs::create_symlink(dir.path() / "real.json", dir.path() / "link.json");
  CredentialsFile link(dir.path() / "link.json");
  LogCapture log;
  EXPECT_TRUE(link.exists());            // exists() follows symlinks ...
  EXPECT_EQ(link.load(), std::nullopt);  // ... load() refuses them
  EXPECT_NE(log.text().find("symlink"), std::string::npos);
}

TEST(CredentialsFile, WritableParentIsRefused) {
  TempDir dir;
  fs::path shared = dir.path() / "shared";
  fs::create_directory(shared);
  CredentialsFile file(shared / "c.json");
  file.save(Sample());
  for (mode_t mode : {0777, 0770, 01777}) {
    ::chmod(shared.c_str(), mode);
    LogCapture log;
    EXPECT_EQ(file.load(), std::nullopt) << std::oct << mode;
    EXPECT_NE(log.text().find("world-writable"), std::string::npos);
    try {
      file.save(Sample());
      ADD_FAILURE() << "save under a writable parent succeeded";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("group- or world-writable"), std::string::npos);
      EXPECT_NE(std::string(e.what()).find(shared.string()), std::string::npos);
    }
  }
  ::chmod(shared.c_str(), 0750);
  EXPECT_TRUE(file.load());
}

TEST(CredentialsFile, SymlinkedParentIsRefused) {
  TempDir dir;
  fs::create_directory(dir.path() / "real");
  ::chmod((dir.path() / "real").c_str(), 0700);
  CredentialsFile(dir.path() / "real" / "c.json").save(Sample());
  fs::create_directory_symlink(dir.path() / "real", dir.path() / "alias");
  EXPECT_EQ(CredentialsFile(dir.path() / "alias" / "c.json").load(), std::nullopt);
}

TEST(CredentialsFile, LooseFileModeLoadsWithAWarning) {
  TempDir dir;
  CredentialsFile file(dir.path() / "c.json");
  file.save(Sample());
  ::chmod(file.path().c_str(), 0644);
  LogCapture log;
  EXPECT_TRUE(file.load());
  EXPECT_NE(log.text().find("mode 0644"), std::string::npos) << log.text();
  EXPECT_NE(log.text().find("0600"), std::string::npos);
}

TEST(CredentialsFile, MissingParentsAreCreatedPrivate) {
  TempDir dir;
  CredentialsFile file(dir.path() / "a" / "b" / "c.json");
  const mode_t old = ::umask(0);  // Python would create 0777 directories here
  file.save(Sample());
  ::umask(old);
  EXPECT_EQ(ModeOf(dir.path() / "a"), 0700u);
  EXPECT_EQ(ModeOf(dir.path() / "a" / "b"), 0700u);
  EXPECT_EQ(ModeOf(file.path()), 0600u);
}

TEST(CredentialsFile, FailedSaveThrowsAndLeavesNothing) {
  TempDir dir;
  Spit(dir.path() / "not-a-dir", "x");
  CredentialsFile file(dir.path() / "not-a-dir" / "c.json");
  EXPECT_THROW(file.save(Sample()), std::system_error);
  EXPECT_TRUE(DotFiles(dir.path(), ".pulsar-relay-cred-").empty());
}

TEST(CredentialsFile, RemoveDeletesFileAndLock) {
  TempDir dir;
  CredentialsFile file(dir.path() / "c.json");
  file.save(Sample());
  {
    auto lock = file.lock_for_rotation();
    ASSERT_TRUE(lock);
  }
  EXPECT_TRUE(fs::exists(dir.path() / ".c.json.lock"));
  EXPECT_TRUE(file.remove());
  EXPECT_FALSE(fs::exists(file.path()));
  EXPECT_FALSE(fs::exists(dir.path() / ".c.json.lock"));
  EXPECT_FALSE(file.remove());
}

TEST(CredentialsFile, LabelIsTheAbsolutePath) {
  CredentialsFile file("relative/c.json");
  EXPECT_TRUE(fs::path(file.label()).is_absolute());
  EXPECT_EQ(fs::path(file.label()).filename(), "c.json");
}

TEST(InMemoryCredentialsStore, LoadReturnsCopies) {
  InMemoryCredentialsStore store("https://r", "RT-1");
  EXPECT_EQ(store.label(), "<in-memory>");
  auto a = store.load();
  ASSERT_TRUE(a);
  a->refresh_token = "changed";
  EXPECT_EQ(store.load()->refresh_token, "RT-1");
  EXPECT_EQ(store.load()->relay_url, "https://r");
}

TEST(InMemoryCredentialsStore, EmptyTokenMeansNothingStored) {
  InMemoryCredentialsStore store("https://r", "", {}, "<in-memory:vault>");
  EXPECT_FALSE(store.exists());
  EXPECT_EQ(store.load(), std::nullopt);
  EXPECT_EQ(store.label(), "<in-memory:vault>");
}

TEST(InMemoryCredentialsStore, OnSaveFiresOnceWithTheNewRecord) {
  std::vector<Credentials> seen;
  InMemoryCredentialsStore store("https://r", "RT-1",
                                 [&](const Credentials& c) { seen.push_back(c); });
  store.save(Sample("RT-2"));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].refresh_token, "RT-2");
  EXPECT_EQ(store.load()->refresh_token, "RT-2");
}

TEST(InMemoryCredentialsStore, ThrowingCallbackIsSwallowedAndTokenKept) {
  InMemoryCredentialsStore store(
      "https://r", "RT-1", [](const Credentials&) { throw std::runtime_error("vault down"); });
  LogCapture log;
  EXPECT_NO_THROW(store.save(Sample("RT-2")));
  EXPECT_EQ(store.load()->refresh_token, "RT-2");
  EXPECT_NE(log.text().find("vault down"), std::string::npos);
}

TEST(UtcNowIso, HasMicrosecondsAndAnOffset) {
  const std::string s = utc_now_iso();
  EXPECT_TRUE(std::regex_match(s, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00)")))
      << s;
  EXPECT_NE(s.find('+'), std::string::npos);
}

}  // namespace
}  // namespace magnetar::client
