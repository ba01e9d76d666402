#pragma once

// WsConn: one WebSocket client connection (RFC 6455) for load generation: the HTTP upgrade with
// the relay's bearer subprotocols, then a read loop that hands every complete text message to
// the listener as a view into the read buffer (no copy unless the server fragments), masked
// client frames written from a reused buffer, answers to pings and to the close handshake.
//
// Threading: lives on one io_context; call it only from there.

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/magnetar_bench/common.h"

namespace magnetar::bench {

class WsConn;

class WsListener {
 public:
  virtual ~WsListener() = default;
  virtual void OnOpen(WsConn& conn) = 0;
  // A complete text message; `now_ns` is when the read that completed it returned.
  virtual void OnText(WsConn& conn, std::string_view text, uint64_t now_ns) = 0;
  // The handshake was refused, the connection failed or it was closed (by either side).
  virtual void OnClosed(WsConn& conn, const std::string& why) = 0;
};

class WsConn {
 public:
  WsConn(asio::io_context& io, const Target& target, std::optional<asio::ip::address> source,
         WsListener* listener, uint64_t seed);
  WsConn(const WsConn&) = delete;
  WsConn& operator=(const WsConn&) = delete;

  // Connects and sends `handshake` (kept alive by the caller until OnOpen/OnClosed).
  void Connect(std::string_view handshake);
  void SendText(std::string_view text);
  void Close();
  bool open() const { return open_; }

 private:
  void Read();
  void OnRead(const boost::system::error_code& ec, size_t n);
  bool ParseHandshake();
  void ParseFrames(uint64_t now_ns);
  void SendFrame(uint8_t opcode, std::string_view payload);
  void Flush();
  void Fail(const std::string& why);

  asio::io_context& io_;
  const Target& target_;
  std::optional<asio::ip::address> source_;
  WsListener* listener_;
  tcp::socket socket_;
  std::vector<char> buf_;
  size_t len_ = 0;
  std::string fragments_;  // a fragmented message being reassembled
  bool in_fragment_ = false;
  std::string writing_;    // bytes of the write in flight
  std::string pending_;    // frames queued behind it
  bool write_busy_ = false;
  bool open_ = false;      // handshake done, not closed
  bool active_ = false;    // connecting or open
  uint64_t mask_state_;
  uint32_t gen_ = 0;       // bumped on close; handlers of older sockets ignore themselves
};

}  // namespace magnetar::bench
