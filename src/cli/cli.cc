#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstring>
#include <iostream>
#include <set>
#include <string>

#include "cli/commands.h"
#include "cli/eftl_commands.h"
#include "cli/session.h"
#include "cli/signals.h"
#include "client/eftl.h"
#include "client/errors.h"
#include "client/pulsar/pulsar_client.h"
#include "common/log.h"

namespace magnetar::cli {
namespace {

const std::set<std::string>& ClientCommands() {
  static const std::set<std::string> names{"login", "logout",    "whoami", "topics", "publish",
                                           "poll",  "subscribe", "eftl",   "pulsar",
                                           "help"};
  return names;
}

constexpr const char* kFooter =
    "Exit codes: 0 success, 1 failure, 2 usage error, 3 not logged in or credentials refused.\n"
    "Environment: MAGNETAR_URL, MAGNETAR_CREDENTIALS, MAGNETAR_USERNAME, MAGNETAR_PASSWORD.";

void AddCommon(CLI::App* cmd, CommonOptions& c, bool with_url = true) {
  if (with_url) {
    cmd->add_option("--url", c.url,
                    "Relay base URL (default: MAGNETAR_URL, else the URL stored at login)");
  }
  cmd->add_option("--credentials", c.credentials,
                  "Credentials file (default: MAGNETAR_CREDENTIALS, else "
                  "$XDG_CONFIG_HOME/magnetar/relay_credentials.json)");
  cmd->add_flag("--json", c.json,
                "Machine-readable output: JSON (one object per line for streams)");
  cmd->add_option("--ca-file", c.ca_file, "PEM file of CA certificates to trust for https://");
  cmd->add_flag("--insecure-skip-tls-verify", c.insecure,
                "Do not verify the relay's TLS certificate (testing only)");
  cmd->add_flag("-v,--verbose", c.verbose, "Log what the client library does");
}

int Report(const std::string& message, int code) {
  std::cerr << "magnetar: " << message << std::endl;
  return code;
}

}  // namespace

std::optional<int> RunClientCommand(int argc, char** argv) {
  const bool top_help =
      argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0;
  if (!top_help && ClientCommands().count(argv[1]) == 0) return std::nullopt;  // the server's

  CLI::App app{"magnetar: a message relay (`magnetar serve`) and its command-line client"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.add_subcommand("serve", "Run the server (options: magnetar serve --help)");

  CommonOptions common;
  LoginOptions login;
  LogoutOptions logout;
  PublishOptions publish;
  PollOptions poll;
  SubscribeOptions subscribe;
  std::string topic_name, topic_description;
  std::vector<std::string> help_topic;

  CLI::App* login_cmd = app.add_subcommand(
      "login", "Log in and store a refresh token: --username (password) or --device (browser)");
  AddCommon(login_cmd, common);
  login_cmd->add_option("--username", login.username, "User name (password login)");
  login_cmd->add_option(
      "--password", login.password,
      "Password (prefer --password-stdin or MAGNETAR_PASSWORD; a prompt otherwise)");
  login_cmd->add_flag("--password-stdin", login.password_stdin, "Read the password from stdin");
  login_cmd->add_flag("--device", login.device,
                      "Device-flow login: approve the shown code in a browser");
  login_cmd->add_flag("--pair", login.pair,
                      "With --device: also get a second, independent refresh token");
  login_cmd->add_option("--client-hint", login.client_hint,
                        "Name shown to the approver (default: magnetar-cli on <host>)");
  login_cmd->add_option("--secondary-credentials", login.secondary_credentials,
                        "With --pair: save the second token to this file (default: print it)");
  login_cmd->footer(kFooter);

  CLI::App* logout_cmd = app.add_subcommand(
      "logout", "Revoke the stored refresh token on the relay and delete the credentials file");
  AddCommon(logout_cmd, common);
  logout_cmd->add_flag("--local-only", logout.local_only, "Only delete the local files");
  logout_cmd->footer(kFooter);

  CLI::App* whoami_cmd = app.add_subcommand("whoami", "Show the logged-in user");
  AddCommon(whoami_cmd, common);
  whoami_cmd->footer(kFooter);

  CLI::App* topics_cmd = app.add_subcommand("topics", "List, create or delete your topics");
  topics_cmd->require_subcommand(1);
  CLI::App* topics_list = topics_cmd->add_subcommand("list", "List your topics");
  AddCommon(topics_list, common);
  CLI::App* topics_create =
      topics_cmd->add_subcommand("create", "Create a topic (succeeds if it is already yours)");
  AddCommon(topics_create, common);
  topics_create->add_option("NAME", topic_name, "Topic name")->required();
  topics_create->add_option("--description", topic_description, "Description");
  CLI::App* topics_delete = topics_cmd->add_subcommand("delete", "Delete a topic and its messages");
  AddCommon(topics_delete, common);
  topics_delete->add_option("NAME", topic_name, "Topic name")->required();
  for (CLI::App* c : {topics_cmd, topics_list, topics_create, topics_delete}) c->footer(kFooter);

  CLI::App* publish_cmd = app.add_subcommand(
      "publish", "Publish one message, or JSON lines from stdin (JSON = -) in bulk requests");
  AddCommon(publish_cmd, common);
  publish_cmd->add_option("TOPIC", publish.topic, "Topic")->required();
  publish_cmd->add_option("JSON", publish.json, "Payload: a JSON object, or - for stdin")
      ->required();
  publish_cmd->add_option("--ttl", publish.ttl, "Seconds until the message expires")
      ->check(CLI::PositiveNumber);
  publish_cmd->add_option("--metadata", publish.metadata, "KEY=VALUE (repeatable)");
  publish_cmd
      ->add_option("--max-attempts", publish.max_attempts,
                   "HTTP attempts per request on 5xx and network errors (0 = no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  publish_cmd->footer(kFooter);

  CLI::App* poll_cmd = app.add_subcommand(
      "poll", "Long-poll topics and print their messages (--follow: keep polling)");
  AddCommon(poll_cmd, common);
  poll_cmd->add_option("TOPIC", poll.topics, "Topics (1-20)")->required();
  poll_cmd->add_flag("-f,--follow", poll.follow,
                     "Keep polling until interrupted, riding out relay restarts");
  poll_cmd->add_option("--timeout", poll.timeout, "Seconds each poll waits (1-60)")
      ->capture_default_str();
  poll_cmd->add_option("--cursor-file", poll.cursor_file,
                       "Remember the last message id per topic here, and resume from it");
  poll_cmd->add_option("--since", poll.since,
                       "Start after this message id (\"0-0\": from the oldest) where no cursor is "
                       "stored yet");
  poll_cmd->footer(kFooter);

  CLI::App* subscribe_cmd = app.add_subcommand(
      "subscribe", "Stream messages over the WebSocket as they arrive (reconnects by itself)");
  AddCommon(subscribe_cmd, common);
  subscribe_cmd->add_option("TOPIC", subscribe.topics, "Topics")->required();
  subscribe_cmd
      ->add_option("--offset", subscribe.offset,
                   "Where to start: last (new messages), first, or a message id")
      ->capture_default_str();
  subscribe_cmd->add_option("-n,--count", subscribe.count, "Exit after this many messages")
      ->check(CLI::NonNegativeNumber);
  subscribe_cmd->footer(kFooter);

  // eFTL: the channel on the server's --eftl-port (see eftl_commands.h).
  EftlCommonOptions eftl_common;
  EftlPublishOptions eftl_publish;
  EftlSubscribeOptions eftl_subscribe;
  EftlRequestOptions eftl_request;
  EftlKvOptions eftl_kv;
  CLI::App* eftl_cmd = app.add_subcommand(
      "eftl", "The eFTL channel: publish, subscribe (matchers, durables), request, kv maps");
  eftl_cmd->require_subcommand(1);
  eftl_cmd->footer(kFooter);
  auto eftl_options = [&](CLI::App* cmd) {
    AddCommon(cmd, common);
    cmd->add_option("--eftl-url", eftl_common.eftl_url,
                    "eFTL URL(s), '|'-separated for failover (default: MAGNETAR_EFTL_URL, else "
                    "ws(s)://<relay host>:9191/<channel>)");
    cmd->add_option("--channel", eftl_common.channel, "Channel when the URL is derived")
        ->capture_default_str();
    cmd->footer(kFooter);
  };
  CLI::App* eftl_publish_cmd =
      eftl_cmd->add_subcommand("publish", "Publish an eFTL message (JSON wire form), or - for lines");
  eftl_options(eftl_publish_cmd);
  eftl_publish_cmd->add_option("MESSAGE", eftl_publish.message,
                               R"(e.g. '{"type":"order","qty":5,"price":{"_d_":9.5}}', or -)")
      ->required();
  CLI::App* eftl_subscribe_cmd =
      eftl_cmd->add_subcommand("subscribe", "Print the messages of a subscription as they arrive");
  eftl_options(eftl_subscribe_cmd);
  eftl_subscribe_cmd->add_option("--matcher", eftl_subscribe.matcher,
                                 R"(Content matcher, e.g. '{"type":"order","qty":true}')");
  eftl_subscribe_cmd->add_option("--durable", eftl_subscribe.durable, "Durable name");
  eftl_subscribe_cmd->add_option("--type", eftl_subscribe.type,
                                 "Durable type: standard, shared or last-value");
  eftl_subscribe_cmd->add_option("--key", eftl_subscribe.key, "Last-value key field");
  eftl_subscribe_cmd
      ->add_option("--ack", eftl_subscribe.ack,
                   "auto, client (each message acknowledged once printed) or none")
      ->capture_default_str();
  eftl_subscribe_cmd->add_option("-n,--count", eftl_subscribe.count, "Exit after this many messages")
      ->check(CLI::NonNegativeNumber);
  CLI::App* eftl_request_cmd =
      eftl_cmd->add_subcommand("request", "Send a request and print the reply");
  eftl_options(eftl_request_cmd);
  eftl_request_cmd->add_option("MESSAGE", eftl_request.message, "The request (JSON)")->required();
  eftl_request_cmd->add_option("--timeout", eftl_request.timeout, "Seconds to wait for the reply")
      ->capture_default_str();
  CLI::App* eftl_kv_cmd = eftl_cmd->add_subcommand(
      "kv", "Key-value maps: set MAP KEY MESSAGE | get MAP KEY | remove MAP KEY | destroy MAP");
  eftl_options(eftl_kv_cmd);
  eftl_kv_cmd->add_option("ACTION", eftl_kv.action, "set, get, remove or destroy")
      ->required()
      ->check(CLI::IsMember({"set", "get", "remove", "destroy"}));
  eftl_kv_cmd->add_option("MAP", eftl_kv.map, "Map name")->required();
  eftl_kv_cmd->add_option("KEY", eftl_kv.key, "Key");
  eftl_kv_cmd->add_option("MESSAGE", eftl_kv.message, "Value for set (JSON)");

  PulsarProduceOptions pproduce;
  PulsarConsumeOptions pconsume;
  CLI::App* pulsar_cmd =
      app.add_subcommand("pulsar", "Produce or consume over the Pulsar binary protocol");
  pulsar_cmd->require_subcommand(1);
  auto add_pulsar_common = [&](CLI::App* cmd, PulsarOptions& p) {
    AddCommon(cmd, common);
    cmd->add_option("--service-url", p.service_url,
                    "pulsar://host:port, or pulsar+ssl://host:port (trusting --ca-file) "
                    "(default: MAGNETAR_PULSAR_URL, else the relay host on port 6650)");
    cmd->add_option("--token", p.token,
                    "Access token (default: MAGNETAR_TOKEN, else the stored credentials)");
    cmd->add_option("--timeout", p.timeout, "Seconds for connecting, registering and each send")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->footer(kFooter);
  };
  CLI::App* pproduce_cmd = pulsar_cmd->add_subcommand(
      "produce", "Send messages (each argument is one message; several leave as one batch)");
  add_pulsar_common(pproduce_cmd, pproduce.common);
  pproduce_cmd->add_option("TOPIC", pproduce.topic, "Topic (a short name or persistent://...)")
      ->required();
  pproduce_cmd->add_option("MESSAGE", pproduce.messages, "Message payloads")->required();
  pproduce_cmd->add_option("--key", pproduce.key, "Message key (partition key)");
  // One value per --property, so the messages after it stay positional.
  pproduce_cmd->add_option("--property", pproduce.properties, "KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  CLI::App* pconsume_cmd =
      pulsar_cmd->add_subcommand("consume", "Receive (and acknowledge) messages as they arrive");
  add_pulsar_common(pconsume_cmd, pconsume.common);
  pconsume_cmd->add_option("TOPIC", pconsume.topic, "Topic (a short name or persistent://...)")
      ->required();
  pconsume_cmd->add_option("-s,--subscription", pconsume.subscription, "Subscription name")
      ->required();
  pconsume_cmd->add_option("--type", pconsume.type, "exclusive, shared, failover or key_shared")
      ->capture_default_str();
  pconsume_cmd
      ->add_option("--position", pconsume.position,
                   "Where a new subscription starts: latest or earliest")
      ->capture_default_str();
  pconsume_cmd->add_option("-n,--count", pconsume.count, "Exit after this many messages")
      ->check(CLI::NonNegativeNumber);
  pulsar_cmd->footer(kFooter);

  CLI::App* help_cmd = app.add_subcommand("help", "Show help for a command");
  help_cmd->add_option("COMMAND", help_topic, "Command");

  if (argc < 2) {
    std::cerr << app.help() << std::endl;
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (help_cmd->parsed()) {
    std::vector<std::string> words{"magnetar"};
    words.insert(words.end(), help_topic.begin(), help_topic.end());
    words.push_back("--help");
    std::vector<char*> args;
    for (auto& w : words) args.push_back(w.data());
    if (help_topic.empty()) {
      std::cout << app.help() << std::endl;
      return 0;
    }
    return RunClientCommand(static_cast<int>(args.size()), args.data()).value_or(0);
  }

  // The library logs retries and refusals; keep it to warnings unless asked, in a short form.
  auto log = Logger("client");
  log->set_pattern("magnetar: %l: %v");
  log->set_level(common.verbose ? spdlog::level::debug : spdlog::level::warn);

  StopOnSignal signals;  // before any thread starts
  try {
    Session session(common);
    if (login_cmd->parsed()) return Login(session, login, signals.token());
    if (logout_cmd->parsed()) return Logout(session, logout);
    if (whoami_cmd->parsed()) return Whoami(session);
    if (topics_list->parsed()) return TopicsList(session);
    if (topics_create->parsed()) return TopicsCreate(session, topic_name, topic_description);
    if (topics_delete->parsed()) return TopicsDelete(session, topic_name);
    if (publish_cmd->parsed()) return Publish(session, publish, signals.token());
    if (poll_cmd->parsed()) return Poll(session, poll, signals.token());
    if (subscribe_cmd->parsed()) return Subscribe(session, subscribe, signals.token());
    if (eftl_publish_cmd->parsed()) return EftlPublish(session, eftl_common, eftl_publish);
    if (eftl_subscribe_cmd->parsed()) {
      return EftlSubscribe(session, eftl_common, eftl_subscribe, signals.token());
    }
    if (eftl_request_cmd->parsed()) return EftlRequest(session, eftl_common, eftl_request);
    if (eftl_kv_cmd->parsed()) {
      if (eftl_kv.action != "destroy" && eftl_kv.key.empty()) throw UsageError("kv needs a KEY");
      if (eftl_kv.action == "set" && eftl_kv.message.empty()) {
        throw UsageError("kv set needs a MESSAGE");
      }
      return EftlKv(session, eftl_common, eftl_kv);
    }
    if (pproduce_cmd->parsed()) return PulsarProduce(session, pproduce, signals.token());
    if (pconsume_cmd->parsed()) return PulsarConsume(session, pconsume, signals.token());
  } catch (const UsageError& e) {
    return Report(std::string("error: ") + e.what(), 2);
  } catch (const std::invalid_argument& e) {
    return Report(std::string("error: ") + e.what(), 2);
  } catch (const client::UrlError& e) {
    return Report(std::string("error: ") + e.what(), 2);
  } catch (const NotLoggedIn& e) {
    return Report(e.what(), 3);
  } catch (const client::AuthError& e) {
    // Unreachable relay: a failure like any other; refused or missing credentials: 3.
    if (e.network()) return Report(std::string("error: ") + e.what(), 1);
    return Report(std::string("authentication failed: ") + e.what(), 3);
  } catch (const client::TransportError& e) {
    const bool auth = e.status() == 401 || e.status() == 403;
    return Report(std::string("error: ") + e.what(), auth ? 3 : 1);
  } catch (const client::pulsar::PulsarError& e) {
    // AuthenticationError (3) and AuthorizationError (4) from the broker: credentials refused.
    const bool auth = e.server_error() == 3 || e.server_error() == 4;
    const bool usage = e.code() == client::pulsar::ErrorCode::kInvalidArgument;
    return Report(std::string("error: ") + e.what(), auth ? 3 : usage ? 2 : 1);
  } catch (const client::ClientError& e) {
    const bool auth = e.status() == 401 || e.status() == 403;
    return Report(std::string("error: ") + e.what(), auth ? 3 : 1);
  } catch (const client::EftlError& e) {
    const bool auth = e.code() == client::EftlError::kAuthenticationFailed;
    return Report(std::string(auth ? "authentication failed: " : "error: ") + e.what(),
                  auth ? 3 : 1);
  } catch (const std::exception& e) {
    return Report(std::string("error: ") + e.what(), 1);
  }
  return Report("error: no command", 2);
}

}  // namespace magnetar::cli
