#pragma once

// HttpSession: one HTTP/1.1 connection. Reads a request (bounded header and body), applies the
// host/CORS policy, dispatches through the router, writes the response, repeats while keep-alive.
// A handler may answer later (long-poll); meanwhile the session watches the socket so a client
// that disconnects is noticed (relay correction D14) and the handler told.
//
// One template for both transports (instantiated in http_session.cc only, so no other file
// compiles it): net::PlainStream (HTTP) and net::TlsStream (HTTPS). Over TLS the session first
// finds out whether the client speaks TLS at all (a plain HTTP request gets a plain 400 and is
// closed), then completes the handshake, both bounded by tls_handshake_timeout; a connection that
// never finishes its handshake holds nothing but its socket until then. A TLS connection closes
// with close_notify, bounded by tls_close_timeout.
//
// Threading: lives on one io_context; every member runs there. Responders may be called from any
// thread: they post back.

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>
#include <optional>

#include "http/http_service.h"
#include "net/connection_tracker.h"
#include "net/stream_types.h"

namespace magnetar::http {

template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>>,
                    public net::Closable {
 public:
  static constexpr bool kTls = net::kIsTls<Stream>;

  // `tls` is used (and required) only when Stream is net::TlsStream.
  HttpSession(HttpService& service, boost::asio::ip::tcp::socket socket,
              boost::asio::ssl::context* tls);
  ~HttpSession() override;

  void Start();
  void Shutdown() override;

 private:
  using Self = HttpSession<Stream>;
  using std::enable_shared_from_this<Self>::shared_from_this;
  using std::enable_shared_from_this<Self>::weak_from_this;

  boost::beast::tcp_stream& lowest() { return boost::beast::get_lowest_layer(stream_); }

  void StartTls();
  void OnDetected(boost::beast::error_code ec, bool is_tls);
  void OnHandshake(boost::beast::error_code ec);
  void RejectPlainHttp();
  void ReadHeader();
  void OnHeader(boost::beast::error_code ec);
  void OnBody(boost::beast::error_code ec);
  void Dispatch(Request request);
  boost::asio::ip::tcp::endpoint RemoteEndpoint();  // cached after the first call
  void Upgrade(Request request);
  void Respond(uint64_t seq, Response response);
  void OnWritten(bool keep_alive, boost::beast::error_code ec);
  void WatchForDisconnect(uint64_t seq);
  void RecheckLater(uint64_t seq);
  void ClientGone();
  void SendAndClose(Response response);
  void Close();
  void LingerThenClose();
  void DrainUntilClientCloses(size_t drained);
  void CloseSocket();
  Responder MakeResponder();
  Response Preflight(const RequestContext& ctx) const;

  HttpService& service_;
  Stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::asio::steady_timer watch_timer_;  // re-checks a parked client that has bytes waiting
  uint64_t tracker_id_ = 0;
  uint64_t seq_ = 0;       // number of the request being handled
  bool busy_ = false;      // a handler owns the current request
  bool keep_alive_ = true;
  bool shutting_down_ = false;
  bool close_wanted_ = false;  // Close() waits for the read or write in flight
  bool reading_ = false;       // a read (or TLS detection/handshake) is in flight
  bool writing_ = false;       // a response write is in flight
  bool tls_ready_ = false;     // handshake done: closing sends close_notify
  bool tls_closing_ = false;   // close_notify sent (or being sent)
  bool closed_ = false;
  bool linger_ = false;     // closing after an error response: drain the client's input first
  bool lingering_ = false;  // half-closed, draining
  std::string origin_;     // the current request's Origin, for CORS headers
  // The peer's address, read once per connection (getpeername is a system call: per request
  // it cost ~4% of a publish's CPU).
  boost::asio::ip::tcp::endpoint remote_;
  bool remote_known_ = false;
  RequestContextPtr current_;
  // For the request's metrics and its debug log line (the path only when that log is on; never
  // the query string, which may carry codes or tokens).
  std::chrono::steady_clock::time_point request_start_{};
  Verb request_method_ = Verb::unknown;
  std::string request_path_;
};

}  // namespace magnetar::http
