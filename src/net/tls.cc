#include "net/tls.h"

#include <boost/asio/ssl/error.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace magnetar::net {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD ciphers only (Mozilla
// "intermediate"). TLS 1.3 suites are OpenSSL's defaults, all of which are fine.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// The reason of the newest OpenSSL error, for messages ("no start line", "bad decrypt"...).
std::string OpenSslReason(const boost::system::error_code& ec) {
  std::string reason = ec.message();
  ERR_clear_error();
  return reason;
}

// A clear message for a file we cannot open, before OpenSSL gives a vaguer one.
Status CheckReadable(const std::string& what, const std::string& path) {
  if (path.empty()) return InvalidArgument(what + " file not given");
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot read " + what + " file " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const std::string& cert_file,
                                                            const std::string& key_file) {
  if (Status s = CheckReadable("TLS certificate", cert_file); !s.ok()) return s;
  if (Status s = CheckReadable("TLS key", key_file); !s.ok()) return s;

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                       ssl::context::single_dh_use,
                   ec);
  if (ec) return Internal("TLS: cannot set context options: " + OpenSslReason(ec));
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    ERR_clear_error();
    return Internal("TLS: the cipher list was refused by OpenSSL");
  }
  // An encrypted key would make OpenSSL prompt on the terminal; answer with no passphrase so the
  // load fails instead of blocking start-up.
  ctx->set_password_callback([](std::size_t, ssl::context::password_purpose) { return std::string(); },
                             ec);

  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return InvalidArgument("TLS certificate file " + cert_file +
                           " is not a PEM certificate chain (" + OpenSslReason(ec) + ")");
  }
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
      (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH ||
       ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_TYPE_MISMATCH)) {
    ERR_clear_error();
    return InvalidArgument("TLS key file " + key_file + " does not match the certificate in " +
                           cert_file);
  }
  if (ec) {
    return InvalidArgument("TLS key file " + key_file +
                           " is not an unencrypted PEM private key (" + OpenSslReason(ec) + ")");
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return InvalidArgument("TLS key file " + key_file + " does not match the certificate in " +
                           cert_file);
  }
  return ctx;
}

}  // namespace magnetar::net
