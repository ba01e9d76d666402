#include "relay/device_sessions.h"

#include <gtest/gtest.h>

#include "common/random.h"
#include "storage/memory/memory_kv_store.h"

namespace magnetar::relay {
namespace {

using std::chrono::seconds;

class DeviceSessionsTest : public ::testing::Test {
 protected:
  std::optional<DevicePageSession> Verify(const DevicePageSessions& sessions,
                                          std::string_view cookie) {
    auto v = sessions.Verify(cookie);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : std::nullopt;
  }
  std::optional<DevicePageSession> Verify(std::string_view cookie) {
    return Verify(sessions_, cookie);
  }

  ManualClock clock_;
  storage::MemoryKvStore kv_{clock_};
  const std::string session_key_ = std::string(32, 's');
  const std::string csrf_key_ = std::string(32, 'c');
  DevicePageSessions sessions_{session_key_, csrf_key_, kv_, clock_, 900};
};

TEST_F(DeviceSessionsTest, IssuedCookieVerifiesAndNamesTheUser) {
  DevicePageSession issued;
  const std::string cookie = sessions_.Issue("user-1", &issued);
  EXPECT_TRUE(cookie.starts_with("v1."));
  EXPECT_EQ(cookie.find_first_of(" ;,\"\\"), std::string::npos);  // a valid cookie value
  auto session = Verify(cookie);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->user_id, "user-1");
  EXPECT_EQ(session->sid, issued.sid);
  EXPECT_EQ(session->sid.size(), 32u);
  EXPECT_EQ(session->expires_at_seconds, clock_.NowSeconds() + 900);
  EXPECT_NE(sessions_.Issue("user-1"), cookie);  // every sign-in is its own session
}

TEST_F(DeviceSessionsTest, TamperedForgedOrForeignCookiesAreRefused) {
  const std::string cookie = sessions_.Issue("user-1");
  const size_t dot = cookie.rfind('.');
  // Another user id under the original signature.
  const std::string forged_payload =
      "v1." + Base64UrlEncode("user-2|" + std::string(32, 'a') + "|9999999999");
  EXPECT_FALSE(Verify(forged_payload + cookie.substr(dot)));
  std::string flipped = cookie;
  flipped[5] = flipped[5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(Verify(flipped));
  EXPECT_FALSE(Verify(cookie.substr(0, dot)));
  EXPECT_FALSE(Verify(cookie + "x"));
  EXPECT_FALSE(Verify(""));
  EXPECT_FALSE(Verify("v1."));
  EXPECT_FALSE(Verify(std::string(kMaxDevicePageCookieBytes + 1, 'a')));
  // Signed with another key (another server, or a rotated JWT secret).
  DevicePageSessions other(std::string(32, 'x'), csrf_key_, kv_, clock_, 900);
  EXPECT_FALSE(Verify(other.Issue("user-1")));
  EXPECT_TRUE(Verify(other, other.Issue("user-1")));
}

TEST_F(DeviceSessionsTest, ExpiresAfterItsLifetime) {
  const std::string cookie = sessions_.Issue("user-1");
  clock_.Advance(seconds(899));
  EXPECT_TRUE(Verify(cookie));
  clock_.Advance(seconds(1));
  EXPECT_FALSE(Verify(cookie));
}

TEST_F(DeviceSessionsTest, SignOutKillsTheCookieEvenIfItWasCopied) {
  DevicePageSession session;
  const std::string cookie = sessions_.Issue("user-1", &session);
  const std::string other = sessions_.Issue("user-1");
  ASSERT_TRUE(sessions_.SignOut(session).ok());
  EXPECT_FALSE(Verify(cookie));
  EXPECT_TRUE(Verify(other));  // only that sign-in ends
}

TEST_F(DeviceSessionsTest, CsrfTokenIsBoundToTheSession) {
  DevicePageSession a, b;
  sessions_.Issue("user-1", &a);
  sessions_.Issue("user-1", &b);
  const std::string token = sessions_.CsrfToken(a);
  EXPECT_FALSE(token.empty());
  EXPECT_EQ(sessions_.CsrfToken(a), token);  // stable for the session's life
  EXPECT_TRUE(sessions_.CsrfValid(a, token));
  EXPECT_FALSE(sessions_.CsrfValid(b, token));  // another sign-in of the same user
  EXPECT_FALSE(sessions_.CsrfValid(a, ""));
  EXPECT_FALSE(sessions_.CsrfValid(a, token.substr(1)));
  EXPECT_FALSE(sessions_.CsrfValid(a, sessions_.CsrfToken(b)));
  DevicePageSession c = a;
  c.user_id = "user-2";
  EXPECT_FALSE(sessions_.CsrfValid(c, token));
  DevicePageSessions other(session_key_, std::string(32, 'y'), kv_, clock_, 900);
  EXPECT_FALSE(other.CsrfValid(a, token));
}

TEST(FindCookieTest, FindsOneCookieAmongMany) {
  EXPECT_EQ(FindCookie("a=1; magnetar_device_session=v1.x.y; b=2", "magnetar_device_session"),
            "v1.x.y");
  EXPECT_EQ(FindCookie("magnetar_device_session=\"q\"", "magnetar_device_session"), "q");
  EXPECT_EQ(FindCookie("a=1;b=2", "b"), "2");
  EXPECT_FALSE(FindCookie("xmagnetar_device_session=1", "magnetar_device_session"));
  EXPECT_FALSE(FindCookie("", "a"));
  EXPECT_FALSE(FindCookie("a", "a"));
  EXPECT_EQ(FindCookie("a=", "a"), "");
}

}  // namespace
}  // namespace magnetar::relay
