// The eFTL client's pieces that need no server: typed message fields and their wire encoding,
// and the URL list.

#include <gtest/gtest.h>

#include <cmath>

#include "client/eftl.h"
#include "client/eftl_message.h"

namespace magnetar::client {
namespace {

using namespace std::chrono_literals;

TEST(EftlMessage, TypedFieldsRoundTripThroughTheWireEncoding) {
  const auto when = EftlMessage::TimePoint(1700000000123ms);
  EftlMessage inner;
  inner.set_string("name", "acme").set_long("n", 1);
  EftlMessage m;
  m.set_string("s", "text \"quoted\"")
      .set_long("l", -9007199254740993)
      .set_double("d", 0.1)
      .set_double("nan", std::nan(""))
      .set_double("inf", -INFINITY)
      .set_datetime("t", when)
      .set_opaque("o", std::string("\0\1\xff", 3))
      .set_message("m", inner)
      .set_string_array("sa", {"a", "b"})
      .set_long_array("la", {1, 2, 3})
      .set_double_array("da", {1.5, 2.0})
      .set_datetime_array("ta", {when})
      .set_message_array("ma", {inner, inner});
  const EftlMessage back = EftlMessage::from_json(m.to_json());
  EXPECT_EQ(back.to_json(), m.to_json());
  EXPECT_EQ(back.get_string("s"), "text \"quoted\"");
  EXPECT_EQ(back.get_long("l"), -9007199254740993);
  EXPECT_EQ(back.get_double("d"), 0.1);
  EXPECT_TRUE(std::isnan(*back.get_double("nan")));
  EXPECT_EQ(back.get_double("inf"), -INFINITY);
  EXPECT_EQ(back.get_datetime("t"), when);
  EXPECT_EQ(back.get_opaque("o"), std::string("\0\1\xff", 3));
  EXPECT_EQ(back.get_message("m")->get_string("name"), "acme");
  EXPECT_EQ(back.get_string_array("sa"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(back.get_long_array("la"), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(back.get_double_array("da"), (std::vector<double>{1.5, 2.0}));
  EXPECT_EQ(back.get_datetime_array("ta")->at(0), when);
  EXPECT_EQ(back.get_message_array("ma")->size(), 2u);
  EXPECT_EQ(back.field_type("o"), EftlFieldType::kOpaque);
  EXPECT_EQ(back.field_names().front(), "s");
  // Type-strict getters: a long is not a string.
  EXPECT_FALSE(back.get_string("l"));
  EXPECT_FALSE(back.get_long("missing"));
  // The wire form of the wrappers.
  EXPECT_NE(m.to_json().find(R"("d":{"_d_":0.1})"), std::string::npos) << m.to_json();
  EXPECT_NE(m.to_json().find(R"("nan":{"_d_":"NaN"})"), std::string::npos);
  EXPECT_NE(m.to_json().find(R"("t":{"_m_":1700000000123})"), std::string::npos);
  EXPECT_NE(m.to_json().find(R"("o":{"_o_":"AAH/"})"), std::string::npos);
}

TEST(EftlMessage, SetReplacesClearRemoves) {
  EftlMessage m;
  m.set_long("a", 1).set_string("b", "x").set_long("a", 2);
  EXPECT_EQ(m.field_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(m.get_long("a"), 2);
  m.clear_field("a");
  EXPECT_FALSE(m.is_set("a"));
  m.clear_all_fields();
  EXPECT_TRUE(m.empty());
  EXPECT_THROW(m.set_long("", 1), std::invalid_argument);
  EXPECT_THROW(EftlMessage::from_json(R"({"b":true})"), std::invalid_argument);
  EXPECT_THROW(EftlMessage::from_json("[1]"), std::invalid_argument);
  EXPECT_EQ(m.store_message_id(), 0);
  EXPECT_FALSE(m.is_request());
}

TEST(EftlUrls, ListParsingCredentialsAndClientId) {
  auto urls = parse_eftl_urls(
      " ws://u%40x:p%3Aw@127.0.0.1:9191/chan?clientId=c1&x=1 | wss://[::1]/other ");
  ASSERT_EQ(urls.size(), 2u);
  EXPECT_FALSE(urls[0].tls);
  EXPECT_EQ(urls[0].host, "127.0.0.1");
  EXPECT_EQ(urls[0].port, 9191);
  EXPECT_EQ(urls[0].target, "/chan?x=1");
  EXPECT_EQ(urls[0].username, "u@x");
  EXPECT_EQ(urls[0].password, "p:w");
  EXPECT_EQ(urls[0].client_id, "c1");
  EXPECT_EQ(urls[0].display(), "ws://127.0.0.1:9191/chan?x=1");
  EXPECT_TRUE(urls[1].tls);
  EXPECT_EQ(urls[1].host, "::1");
  EXPECT_EQ(urls[1].port, 443);
  EXPECT_EQ(urls[1].target, "/other");
  EXPECT_EQ(parse_eftl_urls("ws://h")[0].target, "/");
  for (const char* bad : {"", "http://h/c", "ws:///c", "ws://h:0/c", "ws://h:99999/c",
                          "ws://h:x/c", "ws://h/c|ftp://h"}) {
    EXPECT_THROW(parse_eftl_urls(bad), std::invalid_argument) << bad;
  }
}

TEST(EftlUrls, ConnectingToNothingFailsAcrossAllUrls) {
  EftlOptions o;
  o.handshake_timeout = 2s;
  try {
    EftlConnection conn("ws://127.0.0.1:1/c|ws://127.0.0.1:2/c", o);
    ADD_FAILURE() << "connected to nothing";
  } catch (const EftlError& e) {
    EXPECT_EQ(e.code(), EftlError::kConnectFailed);
    EXPECT_NE(std::string(e.what()).find("across all provided urls"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace magnetar::client
