// Connection: namespace listing and schemas.

#include "pulsar/connection.h"

#include <boost/asio/post.hpp>

#include <set>

#include "common/log.h"
#include "common/random.h"
#include "pulsar/connection_internal.h"
#include "pulsar/message_codec.h"
#include "pulsar/pulsar_service.h"
#include "pulsar/tenants.h"

namespace magnetar::pulsar {

namespace asio = boost::asio;
using Type = proto::BaseCommand;
using namespace internal;  // NOLINT: the module's own helpers

void Connection::HandleTopicsOfNamespace(const proto::CommandGetTopicsOfNamespace& c) {
  const uint64_t request_id = c.request_id();
  const std::string& ns = c.namespace_();
  const size_t slash = ns.find('/');
  if (slash == std::string::npos || ns.find('/', slash + 1) != std::string::npos) {
    return SendError(request_id, proto::InvalidTopicName, "Namespace must be <tenant>/<namespace>");
  }
  PulsarTopicName probe;
  probe.tenant = ns.substr(0, slash);
  probe.ns = ns.substr(slash + 1);
  const bool non_persistent_only = c.mode() == proto::CommandGetTopicsOfNamespace::NON_PERSISTENT;
  paused_ = true;
  struct Listing {
    Resolved resolved;
    std::vector<std::string> names;
  };
  RunStoreWork(
      service_.deps(), socket_.get_executor(),
      [self = shared_from_this(), probe, non_persistent_only] {
        Listing l;
        // Resolving a probe name checks the tenant and namespace without creating anything.
        PulsarTopicName np = probe;
        np.persistent = false;
        l.resolved = self->Resolve(np, auth::Permission::kRead);
        if (l.resolved.error || non_persistent_only) return l;
        auto records = self->service_.deps().topics.ListByOwner(l.resolved.topic.owner.substr(
            std::string_view(kNonPersistentOwnerPrefix).size()));
        if (!records.ok()) {
          l.resolved.error = proto::ServiceNotReady;
          l.resolved.message = records.status().message();
          return l;
        }
        // As Pulsar lists them: a partitioned topic by its partitions (each once, whether or
        // not it has a record of its own yet), every other topic by its name.
        std::set<std::string> names;
        for (const auto& rec : *records) {
          if (rec.partitions == 0) {
            names.insert(rec.name);
            continue;
          }
          for (uint32_t i = 0; i < rec.partitions; ++i) names.insert(PartitionName(rec.name, i));
        }
        l.names.assign(names.begin(), names.end());
        return l;
      },
      [self = shared_from_this(), request_id, probe](Listing l) {
        if (self->closed_) return;
        if (l.resolved.error) {
          self->SendError(request_id, *l.resolved.error, l.resolved.message);
          return self->Resume();
        }
        proto::BaseCommand reply = MakeCommand(Type::GET_TOPICS_OF_NAMESPACE_RESPONSE);
        auto* r = reply.mutable_gettopicsofnamespaceresponse();
        r->set_request_id(request_id);
        for (const auto& n : l.names) {
          PulsarTopicName t = probe;
          t.local = n;
          r->add_topics(t.FullName());
        }
        r->set_filtered(false);
        r->set_changed(true);
        self->Send(reply);
        self->Resume();
      });
}

void Connection::HandleGetSchema(const proto::CommandGetSchema& c) {
  proto::BaseCommand reply = MakeCommand(Type::GET_SCHEMA_RESPONSE);
  auto* r = reply.mutable_getschemaresponse();
  r->set_request_id(c.request_id());
  std::string error;
  auto name = ParsePulsarTopic(c.topic(), &error);
  std::optional<StoredSchema> stored;
  if (name) stored = service_.GetSchema(name->FullName());
  if (!stored) {
    r->set_error_code(proto::TopicNotFound);
    r->set_error_message(name ? "Schema not found" : error);
  } else {
    *r->mutable_schema() = stored->schema;
    r->set_schema_version(SchemaVersionBytes(stored->version));
  }
  Send(reply);
}

void Connection::HandleGetOrCreateSchema(const proto::CommandGetOrCreateSchema& c) {
  proto::BaseCommand reply = MakeCommand(Type::GET_OR_CREATE_SCHEMA_RESPONSE);
  auto* r = reply.mutable_getorcreateschemaresponse();
  r->set_request_id(c.request_id());
  std::string error;
  auto name = ParsePulsarTopic(c.topic(), &error);
  if (!name) {
    r->set_error_code(proto::InvalidTopicName);
    r->set_error_message(error);
  } else {
    StoredSchema stored = service_.GetOrCreateSchema(name->FullName(), c.schema());
    r->set_schema_version(SchemaVersionBytes(stored.version));
  }
  Send(reply);
}

}  // namespace magnetar::pulsar
