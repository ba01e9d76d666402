#pragma once

// The concrete streams behind net::AnyStream. Include only from .cc files that do I/O on them
// (this pulls in Beast and Asio's OpenSSL layer).

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <type_traits>
#include <utility>
#include <variant>

#include "net/stream.h"

namespace magnetar::net {

using PlainStream = boost::beast::tcp_stream;
using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

template <class Stream>
inline constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

struct AnyStream::Impl {
  std::variant<PlainStream, TlsStream> stream;
};

template <class Stream>
AnyStream MakeAnyStream(Stream&& stream) {
  return AnyStream(std::make_unique<AnyStream::Impl>(AnyStream::Impl{std::forward<Stream>(stream)}));
}

}  // namespace magnetar::net
