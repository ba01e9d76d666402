#include "bench/magnetar_bench/ws_conn.h"

#include <boost/asio/write.hpp>

#include <cstring>

#include "bench/magnetar_bench/http_conn.h"

namespace magnetar::bench {

namespace {

constexpr size_t kInitialBuffer = 4 * 1024;  // small: the connections scenario holds many
constexpr size_t kMaxMessage = 64 << 20;

enum Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

}  // namespace

WsConn::WsConn(asio::io_context& io, const Target& target, std::optional<asio::ip::address> source,
               WsListener* listener, uint64_t seed)
    : io_(io), target_(target), source_(source), listener_(listener), socket_(io),
      buf_(kInitialBuffer), mask_state_(seed * 0x9E3779B97F4A7C15ull + 1) {}

void WsConn::Connect(std::string_view handshake) {
  Close();
  len_ = 0;
  active_ = true;
  if (auto ec = OpenBound(socket_, target_.endpoint, source_)) return Fail("socket: " + ec.message());
  socket_.async_connect(target_.endpoint, [this, gen = gen_, handshake](
                                              const boost::system::error_code& ec) {
    if (gen != gen_) return;
    if (ec) return Fail("connect: " + ec.message());
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    asio::async_write(socket_, asio::buffer(handshake.data(), handshake.size()),
                      [this, gen](const boost::system::error_code& ec, size_t) {
                        if (gen != gen_) return;
                        if (ec) return Fail("handshake write: " + ec.message());
                        Read();
                      });
  });
}

void WsConn::Close() {
  ++gen_;
  open_ = false;
  active_ = false;
  write_busy_ = false;
  writing_.clear();
  pending_.clear();
  in_fragment_ = false;
  if (socket_.is_open()) {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
}

void WsConn::Fail(const std::string& why) {
  if (!active_) return;
  Close();
  listener_->OnClosed(*this, why);
}

void WsConn::Read() {
  if (len_ == buf_.size()) buf_.resize(buf_.size() * 2);
  socket_.async_read_some(asio::buffer(buf_.data() + len_, buf_.size() - len_),
                          [this, gen = gen_](const boost::system::error_code& ec, size_t n) {
                            if (gen == gen_) OnRead(ec, n);
                          });
}

void WsConn::OnRead(const boost::system::error_code& ec, size_t n) {
  if (ec) return Fail(ec == asio::error::eof ? "server closed the connection" : ec.message());
  len_ += n;
  const uint32_t gen = gen_;
  if (!open_) {
    if (!ParseHandshake()) {
      if (gen == gen_) Read();
      return;
    }
    if (gen != gen_) return;
  }
  ParseFrames(NowNs());
  if (gen == gen_) Read();
}

bool WsConn::ParseHandshake() {
  const std::string_view data(buf_.data(), len_);
  const size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (len_ > 64 * 1024) Fail("handshake response too large");
    return false;
  }
  if (data.substr(0, 12) != "HTTP/1.1 101") {
    const size_t eol = data.find("\r\n");
    Fail("handshake refused: " + std::string(data.substr(0, eol)));
    return false;
  }
  const size_t used = end + 4;
  std::memmove(buf_.data(), buf_.data() + used, len_ - used);
  len_ -= used;
  open_ = true;
  const uint32_t gen = gen_;
  listener_->OnOpen(*this);
  return gen == gen_;
}

void WsConn::ParseFrames(uint64_t now_ns) {
  const uint32_t gen = gen_;
  size_t pos = 0;
  while (gen == gen_ && len_ - pos >= 2) {
    auto* p = reinterpret_cast<unsigned char*>(buf_.data() + pos);
    const size_t avail = len_ - pos;
    const bool fin = p[0] & 0x80;
    const uint8_t opcode = p[0] & 0x0F;
    const bool masked = p[1] & 0x80;
    uint64_t payload_len = p[1] & 0x7F;
    size_t header = 2;
    if (payload_len == 126) {
      if (avail < 4) break;
      payload_len = (uint64_t{p[2]} << 8) | p[3];
      header = 4;
    } else if (payload_len == 127) {
      if (avail < 10) break;
      payload_len = 0;
      for (int i = 0; i < 8; ++i) payload_len = (payload_len << 8) | p[2 + i];
      header = 10;
    }
    if (payload_len > kMaxMessage) return Fail("frame too large");
    const size_t mask_at = header;
    if (masked) header += 4;
    if (avail < header + payload_len) {
      // Make room for the whole frame; the read continues into the grown buffer.
      if (buf_.size() < header + payload_len) {
        std::memmove(buf_.data(), buf_.data() + pos, avail);
        len_ = avail;
        pos = 0;
        buf_.resize(header + payload_len);
      }
      break;
    }
    char* payload = buf_.data() + pos + header;
    if (masked) {  // servers must not mask, but be lenient
      for (uint64_t i = 0; i < payload_len; ++i) payload[i] ^= static_cast<char>(p[mask_at + i % 4]);
    }
    const std::string_view body(payload, payload_len);
    pos += header + payload_len;
    switch (opcode) {
      case kText:
      case kBinary:
        if (fin) {
          if (opcode == kText) listener_->OnText(*this, body, now_ns);
        } else {
          in_fragment_ = opcode == kText;
          fragments_.assign(body);
        }
        break;
      case kContinuation:
        fragments_.append(body);
        if (fin && in_fragment_) {
          in_fragment_ = false;
          listener_->OnText(*this, fragments_, now_ns);
        }
        break;
      case kPing:
        SendFrame(kPong, body);
        break;
      case kPong:
        break;
      case kClose: {
        SendFrame(kClose, body.substr(0, 2));
        std::string why = "closed by server";
        if (body.size() >= 2) {
          const int code = (static_cast<unsigned char>(body[0]) << 8) |
                           static_cast<unsigned char>(body[1]);
          why += " (" + std::to_string(code) + " " + std::string(body.substr(2)) + ")";
        }
        return Fail(why);
      }
      default:
        return Fail("unknown opcode");
    }
  }
  if (gen != gen_) return;
  if (pos > 0) {
    std::memmove(buf_.data(), buf_.data() + pos, len_ - pos);
    len_ -= pos;
  }
}

void WsConn::SendText(std::string_view text) { SendFrame(kText, text); }

void WsConn::SendFrame(uint8_t opcode, std::string_view payload) {
  if (!open_) return;
  std::string& out = pending_;
  out.push_back(static_cast<char>(0x80 | opcode));
  const size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((uint64_t{n} >> (8 * i)) & 0xFF));
  }
  // xorshift64: client frames must be masked (RFC 6455 §5.3); the key need not be strong here.
  mask_state_ ^= mask_state_ << 13;
  mask_state_ ^= mask_state_ >> 7;
  mask_state_ ^= mask_state_ << 17;
  char key[4];
  std::memcpy(key, &mask_state_, 4);
  out.append(key, 4);
  const size_t start = out.size();
  out.append(payload);
  for (size_t i = 0; i < n; ++i) out[start + i] ^= key[i % 4];
  Flush();
}

void WsConn::Flush() {
  if (write_busy_ || pending_.empty()) return;
  std::swap(writing_, pending_);
  pending_.clear();
  write_busy_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    [this, gen = gen_](const boost::system::error_code& ec, size_t) {
                      if (gen != gen_) return;
                      write_busy_ = false;
                      if (ec) return Fail("write: " + ec.message());
                      Flush();
                    });
}

}  // namespace magnetar::bench
