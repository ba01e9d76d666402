// GET /health and GET /ready (spec §1.1-§1.2, corrections D3 and D16).

#include "common/time_format.h"
#include "relay/json_util.h"
#include "relay/relay_api.h"

namespace magnetar::relay {

void RelayApi::RegisterHealth(http::HttpService& service) {
  service.router().Add(http::Verb::get, "/health",
                       [this](const http::RequestContextPtr&, http::Responder respond) {
                         std::string body = R"({"status":"healthy","timestamp":")";
                         AppendRfc3339(body, deps_.clock.Now());
                         body += R"(","version":)";
                         AppendJsonString(body, options_.version);
                         body += "}";
                         respond(http::Response::Json(200, std::move(body)));
                       });
  service.router().Add(
      http::Verb::get, "/ready", [this](const http::RequestContextPtr&, http::Responder respond) {
        const Status health = deps_.broker.store().Health();
        if (health.ok()) {
          return respond(http::Response::Json(200, R"({"ready":true,"checks":{"storage":"ok"}})"));
        }
        std::string body = R"({"ready":false,"checks":{"storage":)";
        AppendJsonString(body, "error: " + health.message());
        body += "}}";
        respond(http::Response::Json(503, std::move(body)));
      });
}

}  // namespace magnetar::relay
