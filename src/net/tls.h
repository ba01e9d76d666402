#pragma once

// Server-side TLS: builds the one OpenSSL context every TLS connection of a listener shares, from
// a PEM certificate chain and a PEM private key. Start-up only (reads files; may be slow).
//
// Policy (modern defaults): TLS 1.2 and 1.3 only, no compression, no renegotiation, the server's
// cipher preference, forward-secret AEAD suites only for TLS 1.2, buffers released while a
// connection is idle (many idle WebSockets stay cheap).

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

#include "common/status.h"

namespace magnetar::net {

// InvalidArgument (naming the file and what is wrong, never key material) when a file cannot be
// read, is not PEM, the key is encrypted, or the key does not belong to the certificate.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const std::string& cert_file, const std::string& key_file);

}  // namespace magnetar::net
