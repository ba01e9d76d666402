#pragma once

// The client library's exceptions (spec clients.md §A.6.5, C++ shape §A.9).
//
//   Error                       base; what() carries the message
//   ├─ UrlError                 a relay base URL was rejected (§A.1.1)
//   ├─ AuthError                login or refresh failed, or no refresh token is stored
//   ├─ DeviceFlowError          the device-flow login failed; code() names the RFC 8628 error
//   ├─ TransportError           publish or long-poll failed; status() and attempts() say how
//   └─ ClientError              HttpRelayClient calls; status() when the server answered
//        ├─ RefreshTokenRejected    401 from a refresh exchange or a message fetch
//        └─ TopicOwnershipConflict  the topic exists and is not (readably) the caller's
//
// Bad arguments raise std::invalid_argument (Python's ValueError); a credentials file that cannot
// be written raises std::system_error (Python's OSError).

#include <optional>
#include <stdexcept>
#include <string>

namespace magnetar::client {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

class UrlError : public Error {
 public:
  using Error::Error;
};

class AuthError : public Error {
 public:
  explicit AuthError(const std::string& message, std::optional<int> status = {},
                     bool network = false)
      : Error(message), status_(status), network_(network) {}
  // The HTTP status of a refused login or refresh (401 when the token was rejected).
  std::optional<int> status() const { return status_; }
  // True when the relay could not be reached at all (nothing was refused).
  bool network() const { return network_; }

 private:
  std::optional<int> status_;
  bool network_;
};

class DeviceFlowError : public Error {
 public:
  explicit DeviceFlowError(const std::string& message, std::string code = {})
      : Error(message), code_(std::move(code)) {}
  // The RFC 8628 error ("access_denied", "expired_token", ...), or "" for local failures.
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

class TransportError : public Error {
 public:
  explicit TransportError(const std::string& message, std::optional<int> status = {},
                          int attempts = 0)
      : Error(message), status_(status), attempts_(attempts) {}
  // The HTTP status of the final answer, if the server answered at all.
  std::optional<int> status() const { return status_; }
  // HTTP attempts made by the failing call (0 when not counted, e.g. long-poll).
  int attempts() const { return attempts_; }

 private:
  std::optional<int> status_;
  int attempts_;
};

class ClientError : public Error {
 public:
  explicit ClientError(const std::string& message, std::optional<int> status = {})
      : Error(message), status_(status) {}
  std::optional<int> status() const { return status_; }

 private:
  std::optional<int> status_;
};

class RefreshTokenRejected : public ClientError {
 public:
  using ClientError::ClientError;
};

class TopicOwnershipConflict : public ClientError {
 public:
  TopicOwnershipConflict(const std::string& message, std::optional<int> status,
                         std::optional<std::string> owner)
      : ClientError(message, status), owner_(std::move(owner)) {}
  // The foreign owner's user id, when the topic could be read.
  const std::optional<std::string>& owner() const { return owner_; }

 private:
  std::optional<std::string> owner_;
};

}  // namespace magnetar::client
