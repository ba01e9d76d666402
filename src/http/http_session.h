#pragma once

// HttpSession: one HTTP/1.1 connection. Reads a request (bounded header and body), applies the
// host/CORS policy, dispatches through the router, writes the response, repeats while keep-alive.
// A handler may answer later (long-poll); meanwhile the session watches the socket so a client
// that disconnects is noticed (relay correction D14) and the handler told.
//
// Threading: lives on one io_context; every member runs there. Responders may be called from any
// thread: they post back.

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>
#include <optional>

#include "http/http_service.h"
#include "net/connection_tracker.h"

namespace magnetar::http {

class HttpSession : public std::enable_shared_from_this<HttpSession>, public net::Closable {
 public:
  HttpSession(HttpService& service, boost::asio::ip::tcp::socket socket);
  ~HttpSession() override;

  void Start();
  void Shutdown() override;

 private:
  void ReadHeader();
  void OnHeader(boost::beast::error_code ec);
  void OnBody(boost::beast::error_code ec);
  void Dispatch(Request request);
  void Upgrade(Request request);
  void Respond(uint64_t seq, Response response);
  void OnWritten(bool keep_alive, boost::beast::error_code ec);
  void WatchForDisconnect(uint64_t seq);
  void SendAndClose(Response response);
  void Close();
  Responder MakeResponder();
  Response Preflight(const RequestContext& ctx) const;

  HttpService& service_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  uint64_t tracker_id_ = 0;
  uint64_t seq_ = 0;       // number of the request being handled
  bool busy_ = false;      // a handler owns the current request
  bool keep_alive_ = true;
  bool shutting_down_ = false;
  bool closed_ = false;
  std::string origin_;     // the current request's Origin, for CORS headers
  RequestContextPtr current_;
};

}  // namespace magnetar::http
