#pragma once

// AnyStream: one accepted connection, plain TCP or TLS over TCP, handed from the layer that read
// the first request (http/) to the one that takes it over (ws/). Opaque here so the headers that
// pass it around stay free of Beast and OpenSSL templates; the code that reads and writes
// includes net/stream_types.h for the concrete streams. Move-only.

#include <memory>

namespace magnetar::net {

class AnyStream {
 public:
  struct Impl;  // net/stream_types.h

  explicit AnyStream(std::unique_ptr<Impl> impl);
  AnyStream(AnyStream&&) noexcept;
  AnyStream& operator=(AnyStream&&) noexcept;
  ~AnyStream();

  Impl& impl() { return *impl_; }
  bool is_tls() const;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace magnetar::net
