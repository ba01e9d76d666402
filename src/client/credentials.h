#pragma once

// Refresh-token persistence (spec clients.md §A.2): the record, the store interface, the JSON file
// (safety checks, atomic 0600 writes) and an in-memory store that reports rotations to its owner.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace magnetar::client {

// One credentials record. Every save replaces the whole record (fields are never merged).
// JSON keys: relay_url, refresh_token (string or null), issued_at, and, only in a record written
// by the device flow (access_token set), access_token and expires_in (number or null).
struct Credentials {
  std::string relay_url;  // informational: nothing reads it back to choose an endpoint
  std::optional<std::string> refresh_token;
  std::string issued_at;  // utc_now_iso() at the time of the write
  std::optional<std::string> access_token;
  std::optional<std::int64_t> expires_in;

  bool operator==(const Credentials&) const = default;
};

// The current UTC time as Python's datetime.now(timezone.utc).isoformat() writes it:
// "2026-05-13T14:33:07.412345+00:00" (always six fraction digits here, always "+00:00").
std::string utc_now_iso();

// Serialises a record the way the Python package does: keys sorted, 2-space indent,
// non-ASCII escaped.
std::string credentials_to_json(const Credentials& c);
// Parses a record; nullopt when `text` is not a JSON object. Fields of the wrong type are ignored.
std::optional<Credentials> credentials_from_json(std::string_view text);

// Held while a refresh token is loaded, exchanged and the rotated one saved, so that two
// processes sharing one credentials file never present the same single-use token.
class RotationLock {
 public:
  virtual ~RotationLock() = default;
};

class CredentialsStore {
 public:
  virtual ~CredentialsStore() = default;
  // For log and error messages only: a file's absolute path, or a label.
  virtual std::string label() const = 0;
  virtual bool exists() const = 0;
  // Never throws; nullopt when there is nothing usable.
  virtual std::optional<Credentials> load() const = 0;
  // Replaces the record. Throws on failure (std::system_error for files).
  virtual void save(const Credentials& credentials) = 0;
  // Cross-process exclusion around a rotation; nullptr when the store needs none.
  virtual std::unique_ptr<RotationLock> lock_for_rotation() { return nullptr; }
};

// A JSON credentials file.
//  * exists(): the path names a regular file (symlinks followed).
//  * load(): nullopt when missing, when the parent directory is group- or world-writable (or is a
//    symlink), when the file is a symlink (O_NOFOLLOW), or when it is unreadable or not a JSON
//    object; each refusal is logged. A file readable by others loads with a warning.
//  * save(): creates missing parent directories with mode 0700, refuses a group- or
//    world-writable parent, writes a `.pulsar-relay-cred-XXXXXX` temporary in the same directory
//    (mode 0600 before any byte), fsyncs, renames over the target, fsyncs the directory, and
//    removes the temporary on any failure. Throws std::system_error.
//  * lock_for_rotation(): flock on `.<name>.lock` beside the file.
// Thread-safe (it holds no state but the path).
class CredentialsFile final : public CredentialsStore {
 public:
  explicit CredentialsFile(std::filesystem::path path);

  const std::filesystem::path& path() const { return path_; }
  std::string label() const override { return path_.string(); }
  bool exists() const override;
  std::optional<Credentials> load() const override;
  void save(const Credentials& credentials) override;
  std::unique_ptr<RotationLock> lock_for_rotation() override;
  // Deletes the file and its lock file (logout). Returns whether the file existed.
  bool remove();

 private:
  std::filesystem::path path_;
};

// Keeps the record in memory. exists() and load() see it only while the refresh token is
// non-empty; load() returns a copy. save() stores a copy and then calls `on_save` with it; an
// exception from the callback is logged and swallowed (the new token stays in memory).
// Thread-safe.
class InMemoryCredentialsStore final : public CredentialsStore {
 public:
  InMemoryCredentialsStore(std::string relay_url, std::string refresh_token,
                           std::function<void(const Credentials&)> on_save = {},
                           std::string label = "<in-memory>");

  std::string label() const override { return label_; }
  bool exists() const override;
  std::optional<Credentials> load() const override;
  void save(const Credentials& credentials) override;

 private:
  mutable std::mutex mutex_;
  Credentials record_;
  std::function<void(const Credentials&)> on_save_;
  std::string label_;
};

}  // namespace magnetar::client
