#include "pulsar/pulsar_service.h"

#include "common/log.h"
#include "pulsar/connection.h"

namespace magnetar::pulsar {

PulsarService::PulsarService(PulsarDeps deps, PulsarOptions options)
    : deps_(std::move(deps)), options_(std::move(options)) {}

PulsarService::~PulsarService() = default;

void PulsarService::Accept(boost::asio::ip::tcp::socket socket) {
  auto conn = std::make_shared<Connection>(*this, std::move(socket), nullptr);
  conn->Start();
}

void PulsarService::AcceptTls(boost::asio::ip::tcp::socket socket) {
  auto conn = std::make_shared<Connection>(*this, std::move(socket), options_.tls_context.get());
  conn->Start();
}

namespace {
std::string HostForUrl(const std::string& host) {
  // A bare IPv6 address goes in brackets (an advertised "[v6]" already has them).
  return host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host;
}
}  // namespace

std::string PulsarService::BrokerUrl() const {
  if (options_.advertised_port == 0) return "";
  return "pulsar://" + HostForUrl(options_.advertised_host) + ":" +
         std::to_string(options_.advertised_port);
}

std::string PulsarService::BrokerUrlTls() const {
  if (options_.advertised_tls_port == 0) return "";
  return "pulsar+ssl://" + HostForUrl(options_.advertised_host) + ":" +
         std::to_string(options_.advertised_tls_port);
}

bool PulsarService::AcquireProducerSlot(const core::TopicKey& topic, bool exclusive) {
  std::lock_guard lock(mutex_);
  Slots& s = slots_[{topic.owner, topic.name}];
  if (s.exclusive || (exclusive && s.producers > 0)) return false;
  ++s.producers;
  s.exclusive = exclusive;
  return true;
}

void PulsarService::ReleaseProducerSlot(const core::TopicKey& topic) {
  std::lock_guard lock(mutex_);
  auto it = slots_.find({topic.owner, topic.name});
  if (it == slots_.end()) return;
  if (--it->second.producers <= 0) slots_.erase(it);
}

std::optional<StoredSchema> PulsarService::GetSchema(const std::string& topic) {
  std::lock_guard lock(mutex_);
  auto it = schemas_.find(topic);
  if (it == schemas_.end()) return std::nullopt;
  return it->second;
}

StoredSchema PulsarService::GetOrCreateSchema(const std::string& topic,
                                              const proto::Schema& schema) {
  std::lock_guard lock(mutex_);
  auto it = schemas_.find(topic);
  if (it != schemas_.end()) {
    const proto::Schema& old = it->second.schema;
    if (old.type() == schema.type() && old.schema_data() == schema.schema_data()) return it->second;
    it->second.schema = schema;
    ++it->second.version;
    return it->second;
  }
  StoredSchema stored{schema, 0};
  schemas_.emplace(topic, stored);
  return stored;
}

}  // namespace magnetar::pulsar
