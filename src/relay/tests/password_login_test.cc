#include "relay/password_login.h"

#include <gtest/gtest.h>

#include "auth/password.h"
#include "storage/memory/memory_user_store.h"

namespace magnetar::relay {
namespace {

using Kind = PasswordLogin::Kind;

class PasswordLoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Add("alice", "alice-password", true);
    Add("carol", "carol-password", false);
    Add("fed", "", true);  // federated: no local password
  }
  void Add(const std::string& name, const std::string& password, bool active) {
    auth::User u;
    u.user_id = "id-" + name;
    u.username = name;
    u.password_hash = password.empty() ? "" : auth::HashPassword(password);
    u.is_active = active;
    ASSERT_TRUE(users_.Create(u).ok());
  }

  storage::MemoryUserStore users_;
};

TEST_F(PasswordLoginTest, RightPasswordSignsIn) {
  const PasswordLogin out = CheckPasswordLogin(users_, "alice", "alice-password");
  EXPECT_EQ(out.kind, Kind::kOk);
  EXPECT_EQ(out.user.user_id, "id-alice");
}

TEST_F(PasswordLoginTest, WrongPasswordUnknownUserAndNoLocalPasswordLookAlike) {
  EXPECT_EQ(CheckPasswordLogin(users_, "alice", "wrong").kind, Kind::kBadCredentials);
  EXPECT_EQ(CheckPasswordLogin(users_, "nobody", "alice-password").kind, Kind::kBadCredentials);
  EXPECT_EQ(CheckPasswordLogin(users_, "fed", "").kind, Kind::kBadCredentials);
  EXPECT_EQ(CheckPasswordLogin(users_, "fed", "anything").kind, Kind::kBadCredentials);
  const std::string huge(auth::kMaxPasswordChars + 1, 'x');
  EXPECT_EQ(CheckPasswordLogin(users_, "alice", huge).kind, Kind::kBadCredentials);
}

TEST_F(PasswordLoginTest, InactiveUserIsToldApartOnlyWithTheRightPassword) {
  EXPECT_EQ(CheckPasswordLogin(users_, "carol", "carol-password").kind, Kind::kInactive);
  EXPECT_EQ(CheckPasswordLogin(users_, "carol", "wrong").kind, Kind::kBadCredentials);
}

}  // namespace
}  // namespace magnetar::relay
