#pragma once

// `magnetar eftl publish|subscribe|request|kv`: the eFTL channel from the command line, through
// the library's EftlConnection.
//
// Where: --eftl-url (a '|'-separated list, like the library takes), else MAGNETAR_EFTL_URL, else
// the relay URL's host on port 9191 (ws:// for http://, wss:// for https://) with the channel
// --channel (default "eftl") as the path.
// Who: like every other command — the stored login (or MAGNETAR_USERNAME/MAGNETAR_PASSWORD)
// gives an access token, which is the eFTL password (the server takes a valid access token as
// the password). User info in the eFTL URL is used instead when present.
// Messages are eFTL messages in their JSON wire form: {"name":"x","n":1,"d":{"_d_":1.5}}.

#include <cstdint>
#include <stop_token>
#include <string>

#include "cli/session.h"

namespace magnetar::cli {

struct EftlCommonOptions {
  std::string eftl_url;
  std::string channel = "eftl";
};

struct EftlPublishOptions {
  std::string message;  // JSON, or "-" for one message per line on stdin
};
int EftlPublish(Session& session, const EftlCommonOptions& common, const EftlPublishOptions& o);

struct EftlSubscribeOptions {
  std::string matcher;
  std::string durable;
  std::string type;  // standard | shared | last-value
  std::string key;
  std::string ack = "auto";  // auto | client | none (client: acked after printing)
  int count = 0;             // exit after this many messages (0 = never)
};
int EftlSubscribe(Session& session, const EftlCommonOptions& common, const EftlSubscribeOptions& o,
                  std::stop_token stop);

struct EftlRequestOptions {
  std::string message;
  double timeout = 10;  // seconds
};
int EftlRequest(Session& session, const EftlCommonOptions& common, const EftlRequestOptions& o);

struct EftlKvOptions {
  std::string action;  // set | get | remove | destroy
  std::string map;
  std::string key;
  std::string message;  // set
};
int EftlKv(Session& session, const EftlCommonOptions& common, const EftlKvOptions& o);

}  // namespace magnetar::cli
