#include "bench/magnetar_bench/http_conn.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include <cstring>

namespace magnetar::bench {

namespace {

constexpr size_t kInitialBuffer = 16 * 1024;

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool IContains(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (IEquals(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Decodes a complete chunked body starting at `data` into `out`. Returns the number of bytes
// the chunked encoding took, 0 when more bytes are needed, SIZE_MAX when it is malformed.
size_t DecodeChunked(std::string_view data, std::string& out) {
  out.clear();
  size_t pos = 0;
  for (;;) {
    const size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) return 0;
    size_t size = 0;
    size_t i = pos;
    for (; i < eol; ++i) {
      const char c = data[i];
      int digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        break;  // chunk extensions follow
      }
      size = size * 16 + static_cast<size_t>(digit);
      if (size > (size_t{1} << 32)) return SIZE_MAX;
    }
    if (i == pos) return SIZE_MAX;
    pos = eol + 2;
    if (size == 0) {
      // Trailers (rare) end with an empty line.
      const size_t end = data.find("\r\n", pos);
      if (end == std::string_view::npos) return 0;
      if (end == pos) return pos + 2;
      const size_t blank = data.find("\r\n\r\n", pos);
      return blank == std::string_view::npos ? 0 : blank + 4;
    }
    if (data.size() < pos + size + 2) return 0;
    out.append(data.data() + pos, size);
    pos += size + 2;
  }
}

}  // namespace

boost::system::error_code OpenBound(tcp::socket& socket, const tcp::endpoint& remote,
                                    const std::optional<asio::ip::address>& source) {
  boost::system::error_code ec;
  socket.open(remote.protocol(), ec);
  if (ec) return ec;
  if (source) {
#ifdef IP_BIND_ADDRESS_NO_PORT
    // Choose the port at connect time, per (source, destination): without this, bind() would
    // reserve a port per source address for any destination and run out at ~28k sockets.
    int one = 1;
    ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    socket.bind(tcp::endpoint(*source, 0), ec);
  }
  return ec;
}

HttpConn::HttpConn(asio::io_context& io, const Target& target,
                   std::optional<asio::ip::address> source, HttpListener* listener)
    : io_(io), target_(target), source_(source), listener_(listener), socket_(io),
      buf_(kInitialBuffer) {}

void HttpConn::Connect() {
  Close();
  len_ = 0;
  header_scan_ = 0;
  eof_ = false;
  connecting_ = true;
  if (auto ec = OpenBound(socket_, target_.endpoint, source_)) return Fail("socket: " + ec.message());
  socket_.async_connect(target_.endpoint, [this, gen = gen_](const boost::system::error_code& ec) {
    if (gen != gen_) return;  // a handler of an earlier socket
    if (ec) return Fail("connect: " + ec.message());
    connecting_ = false;
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    open_ = true;
    listener_->OnConnected(*this);
  });
}

void HttpConn::Send(std::string_view request) {
  if (!open_) return;
  asio::async_write(socket_, asio::buffer(request.data(), request.size()),
                    [this, gen = gen_](const boost::system::error_code& ec, size_t) {
                      if (gen != gen_) return;
                      if (ec) return Fail("write: " + ec.message());
                      Read();
                    });
}

void HttpConn::Close() {
  ++gen_;  // pending handlers of this socket become no-ops
  open_ = false;
  if (socket_.is_open()) {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
}

void HttpConn::Fail(const std::string& what) {
  // Operations of a connection we closed ourselves complete with errors too: not failures.
  if (!open_ && !connecting_) return;
  connecting_ = false;
  Close();
  listener_->OnFailed(*this, what);
}

void HttpConn::Read() {
  if (!open_) return;
  if (len_ == buf_.size()) buf_.resize(buf_.size() * 2);  // a large response: grow once
  socket_.async_read_some(asio::buffer(buf_.data() + len_, buf_.size() - len_),
                          [this, gen = gen_](const boost::system::error_code& ec, size_t n) {
                            if (gen == gen_) OnRead(ec, n);
                          });
}

void HttpConn::OnRead(const boost::system::error_code& ec, size_t n) {
  if (ec == asio::error::eof) {
    eof_ = true;
    if (TryParse(NowNs())) return;
    return Fail("server closed the connection");
  }
  if (ec) return Fail("read: " + ec.message());
  len_ += n;
  if (!TryParse(NowNs())) Read();
}

bool HttpConn::TryParse(uint64_t now_ns) {
  const std::string_view data(buf_.data(), len_);
  const size_t header_end = data.find("\r\n\r\n", header_scan_);
  if (header_end == std::string_view::npos) {
    header_scan_ = len_ > 3 ? len_ - 3 : 0;
    return false;
  }
  const size_t body_start = header_end + 4;
  if (data.size() < 12 || data.substr(0, 7) != "HTTP/1.") {
    Fail("malformed response");
    return true;
  }
  const int status = (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');

  std::optional<size_t> content_length;
  bool chunked = false;
  bool close = data.substr(0, 8) == "HTTP/1.0";
  size_t line = data.find("\r\n") + 2;
  while (line < header_end) {
    const size_t eol = data.find("\r\n", line);
    const std::string_view h = data.substr(line, eol - line);
    const size_t colon = h.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view name = h.substr(0, colon);
      const std::string_view value = Trim(h.substr(colon + 1));
      if (IEquals(name, "content-length")) {
        size_t v = 0;
        for (char c : value) v = v * 10 + static_cast<size_t>(c - '0');
        content_length = v;
      } else if (IEquals(name, "transfer-encoding")) {
        chunked = IContains(value, "chunked");
      } else if (IEquals(name, "connection")) {
        close = IContains(value, "close");
      }
    }
    line = eol + 2;
  }

  std::string_view body;
  size_t total;
  if ((status >= 100 && status < 200) || status == 204 || status == 304) {
    total = body_start;
  } else if (chunked) {
    const size_t used = DecodeChunked(data.substr(body_start), chunked_body_);
    if (used == SIZE_MAX) {
      Fail("malformed chunked body");
      return true;
    }
    if (used == 0) return false;
    body = chunked_body_;
    total = body_start + used;
  } else if (content_length) {
    if (data.size() < body_start + *content_length) {
      if (buf_.size() < body_start + *content_length) buf_.resize(body_start + *content_length);
      return false;
    }
    body = data.substr(body_start, *content_length);
    total = body_start + *content_length;
  } else {
    if (!eof_) return false;  // the body runs to the end of the connection
    body = data.substr(body_start);
    total = data.size();
    close = true;
  }
  if (status >= 100 && status < 200 && status != 101) {
    // 100 Continue and friends: skip it, the real response follows.
    std::memmove(buf_.data(), buf_.data() + total, len_ - total);
    len_ -= total;
    header_scan_ = 0;
    return TryParse(now_ns);
  }

  if (close) Close();
  listener_->OnResponse(*this, HttpResponse{status, body}, now_ns);
  // Keep whatever followed (nothing, without pipelining).
  if (total < len_) std::memmove(buf_.data(), buf_.data() + total, len_ - total);
  len_ -= total;
  header_scan_ = 0;
  if (close) listener_->OnFailed(*this, "server closed the connection");
  return true;
}

}  // namespace magnetar::bench
