#include "auth/user.h"

#include <gtest/gtest.h>

namespace magnetar::auth {
namespace {

TEST(PermissionTest, ParsesExactNames) {
  EXPECT_EQ(ParsePermission("admin"), Permission::kAdmin);
  EXPECT_EQ(ParsePermission("read"), Permission::kRead);
  EXPECT_EQ(ParsePermission("write"), Permission::kWrite);
  EXPECT_FALSE(ParsePermission("Admin"));
  EXPECT_FALSE(ParsePermission("root"));
  EXPECT_FALSE(ParsePermission(""));
  EXPECT_FALSE(ParsePermission("read "));
}

TEST(PermissionTest, NamesRoundTrip) {
  for (Permission p : {Permission::kAdmin, Permission::kRead, Permission::kWrite}) {
    EXPECT_EQ(ParsePermission(PermissionName(p)), p);
  }
  EXPECT_STREQ(PermissionName(Permission::kAdmin), "admin");
  EXPECT_STREQ(PermissionName(Permission::kRead), "read");
  EXPECT_STREQ(PermissionName(Permission::kWrite), "write");
}

TEST(UserTest, HasLooksAtPermissionList) {
  User user;
  EXPECT_FALSE(user.Has(Permission::kRead));
  user.permissions = {"read", "read", "bogus"};
  EXPECT_TRUE(user.Has(Permission::kRead));
  EXPECT_FALSE(user.Has(Permission::kWrite));
  EXPECT_FALSE(user.Has(Permission::kAdmin));
}

}  // namespace
}  // namespace magnetar::auth
