#include "net/stream.h"

#include "net/stream_types.h"

namespace magnetar::net {

AnyStream::AnyStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AnyStream::AnyStream(AnyStream&&) noexcept = default;
AnyStream& AnyStream::operator=(AnyStream&&) noexcept = default;
AnyStream::~AnyStream() = default;

bool AnyStream::is_tls() const { return impl_ && std::holds_alternative<TlsStream>(impl_->stream); }

}  // namespace magnetar::net
