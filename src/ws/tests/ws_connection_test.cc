// WsConnection against a real Beast client over loopback, plain and TLS: many queued frames
// (written by gather writes below Beast) arrive intact and in order while the client pings (the
// pongs Beast writes on the same socket must not corrupt the stream), the close comes after the
// queued frames, and a client that does not read is closed with 1008.

#include "ws/ws_connection.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/connection_tracker.h"
#include "net/stream_types.h"

namespace magnetar::ws {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

// Frame k's payload: sizes around every header length boundary, and one larger than a whole
// gather write; bytes that depend on k and the position, so a lost, torn or reordered frame shows.
std::string Payload(int k) {
  static constexpr size_t kSizes[] = {0, 1, 125, 126, 127, 1000, 65535, 65536, 70000, 300000};
  const size_t size = kSizes[static_cast<size_t>(k) % std::size(kSizes)];
  std::string s(size, '\0');
  for (size_t j = 0; j < size; ++j) s[j] = static_cast<char>('a' + (k * 7 + j) % 26);
  return s;
}

// A self-signed certificate and key, made in memory for the TLS server.
void UseSelfSignedCertificate(asio::ssl::context& ctx) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  ASSERT_EQ(SSL_CTX_use_certificate(ctx.native_handle(), cert), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(ctx.native_handle(), key), 1);
  X509_free(cert);
  EVP_PKEY_free(key);
}

// Server side: queues `initial` frames when the connection opens, `more` frames for every "more"
// text from the client, and closes with 1000 on "done".
class Sender final : public WsHandler {
 public:
  Sender(int initial, int more) : initial_(initial), more_(more) {}
  void OnOpen(WsConnection& conn) override { Queue(conn, initial_); }
  void OnText(WsConnection& conn, std::string_view text) override {
    if (text == "more") Queue(conn, more_);
    if (text == "done") conn.Close(1000, "done");
  }
  void OnBinary(WsConnection&, std::string_view) override {}
  void OnClosed(WsConnection&) override { closed = true; }

  std::atomic<bool> closed{false};

 private:
  void Queue(WsConnection& conn, int n) {
    for (int i = 0; i < n; ++i) conn.Send(std::make_shared<const std::string>(Payload(next_++)));
  }
  int initial_;
  int more_;
  int next_ = 0;
};

// One server connection on its own I/O thread: accepts one TCP connection (TLS when `tls`), reads
// the upgrade request and hands the stream to WsConnection with `handler`.
class Server {
 public:
  Server(bool tls, WsOptions options, std::shared_ptr<WsHandler> handler)
      : tls_(tls), options_(options), handler_(std::move(handler)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    if (tls_) UseSelfSignedCertificate(tls_ctx_);
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      ASSERT_FALSE(ec) << ec.message();
      if (tls_) {
        auto stream = std::make_shared<net::TlsStream>(net::PlainStream(std::move(socket)), tls_ctx_);
        stream->async_handshake(asio::ssl::stream_base::server, [this, stream](beast::error_code e) {
          ASSERT_FALSE(e) << e.message();
          ReadUpgrade(std::move(*stream));
        });
      } else {
        ReadUpgrade(net::PlainStream(std::move(socket)));
      }
    });
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Server() {
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  template <class Stream>
  void ReadUpgrade(Stream stream) {
    auto s = std::make_shared<Stream>(std::move(stream));
    auto req = std::make_shared<http::Request>();
    beast::http::async_read(*s, buffer_, *req, [this, s, req](beast::error_code ec, size_t) {
      ASSERT_FALSE(ec) << ec.message();
      conn_ = WsConnection::Create(net::MakeAnyStream(std::move(*s)), tracker_, options_);
      conn_->Accept(std::move(*req), "", handler_);
    });
  }

  bool tls_;
  WsOptions options_;
  std::shared_ptr<WsHandler> handler_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  asio::ssl::context tls_ctx_{asio::ssl::context::tls_server};
  beast::flat_buffer buffer_;
  net::ConnectionTracker tracker_;
  std::shared_ptr<WsConnection> conn_;
  std::thread thread_;
};

bool WaitFor(const std::function<bool()>& done) {
  for (int i = 0; i < 500 && !done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// The client's WebSocket over plain TCP or TLS, connected and past the handshake.
template <class Ws>
void Handshake(Ws& ws, uint16_t port) {
  beast::get_lowest_layer(ws).connect({asio::ip::make_address("127.0.0.1"), port});
  if constexpr (!std::is_same_v<Ws, websocket::stream<tcp::socket>>) ws.next_layer().handshake(asio::ssl::stream_base::client);
  ws.read_message_max(1 << 20);
  ws.handshake("127.0.0.1", "/");
}

constexpr int kInitial = 200;  // about 10 MB: below the default 16 MiB queue bound
constexpr int kMore = 50;
constexpr int kMoreRounds = 5;

// Reads every frame, checking each against Payload(k) in order, pinging every 7 frames and asking
// for more every 60; then asks the server to close and checks every ping got its pong.
template <class Ws>
void ReceiveAllWithPings(Ws& ws) {
  std::vector<std::string> pongs;
  ws.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::pong) pongs.emplace_back(payload);
  });
  int pings = 0;
  int more_sent = 0;
  const int total = kInitial + kMore * kMoreRounds;
  for (int k = 0; k < total; ++k) {
    beast::flat_buffer buffer;
    ws.read(buffer);
    ASSERT_TRUE(ws.got_text());
    ASSERT_EQ(beast::buffers_to_string(buffer.data()), Payload(k)) << "frame " << k;
    if (k % 7 == 0) ws.ping(websocket::ping_data("p" + std::to_string(pings++)));
    if (k % 60 == 59 && more_sent < kMoreRounds) {
      ws.write(asio::buffer(std::string("more")));
      ++more_sent;
    }
  }
  ws.write(asio::buffer(std::string("done")));
  beast::flat_buffer buffer;
  beast::error_code ec;
  ws.read(buffer, ec);
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(ws.reason().code, 1000);
  ASSERT_EQ(pongs.size(), static_cast<size_t>(pings));
  for (int i = 0; i < pings; ++i) EXPECT_EQ(pongs[static_cast<size_t>(i)], "p" + std::to_string(i));
}

TEST(WsConnectionTest, QueuedFramesArriveInOrderWithPingsPlain) {
  auto sender = std::make_shared<Sender>(kInitial, kMore);
  Server server(false, WsOptions{}, sender);
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  Handshake(ws, server.port());
  ReceiveAllWithPings(ws);
  EXPECT_TRUE(WaitFor([&] { return sender->closed.load(); }));
}

TEST(WsConnectionTest, QueuedFramesArriveInOrderWithPingsTls) {
  auto sender = std::make_shared<Sender>(kInitial, kMore);
  Server server(true, WsOptions{}, sender);
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);
  websocket::stream<beast::ssl_stream<tcp::socket>> ws(ioc, ctx);
  Handshake(ws, server.port());
  ReceiveAllWithPings(ws);
  EXPECT_TRUE(WaitFor([&] { return sender->closed.load(); }));
}

// The whole queue is handed over at once (more than fits in the queue bound): the frames written
// before the overflow arrive intact and in order, then the close with 1008.
TEST(WsConnectionTest, QueueOverflowClosesWith1008AfterWhatWasWritten) {
  WsOptions options;
  options.max_queue_frames = 10;
  auto sender = std::make_shared<Sender>(100, 0);
  Server server(false, options, sender);
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  Handshake(ws, server.port());
  int k = 0;
  beast::error_code ec;
  for (;;) {
    beast::flat_buffer buffer;
    ws.read(buffer, ec);
    if (ec) break;
    ASSERT_EQ(beast::buffers_to_string(buffer.data()), Payload(k)) << "frame " << k;
    ++k;
  }
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(ws.reason().code, 1008);
  EXPECT_GE(k, 1);
  EXPECT_LE(k, 11);
  EXPECT_TRUE(WaitFor([&] { return sender->closed.load(); }));
}

}  // namespace
}  // namespace magnetar::ws
