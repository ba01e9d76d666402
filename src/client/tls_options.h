#pragma once

// TLS settings for https:// relays. By default the server certificate is verified against the
// system's trust store (OpenSSL's default paths; SSL_CERT_FILE and SSL_CERT_DIR are honoured)
// and must match the relay's host name.

#include <string>

namespace magnetar::client {

struct TlsOptions {
  bool verify = true;   // false: accept any certificate (tests only; logged as a warning)
  std::string ca_file;  // PEM bundle to trust instead of the system store
  std::string ca_path;  // directory of hashed PEM certificates to trust instead
};

}  // namespace magnetar::client
