#include "auth/authenticator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "auth/password.h"
#include "storage/memory/memory_kv_store.h"
#include "storage/memory/memory_user_store.h"

namespace magnetar::auth {
namespace {

using std::chrono::seconds;

// A KvStore whose every call fails, to show the deny-list never fails open.
class UnavailableKvStore final : public core::KvStore {
 public:
  Result<bool> PutIfAbsent(const std::string&, const std::string&, UnixMicros) override {
    return Unavailable("kv down");
  }
  Status Put(const std::string&, const std::string&, UnixMicros) override {
    return Unavailable("kv down");
  }
  Result<bool> CompareAndSet(const std::string&, const std::string&, const std::string&,
                             UnixMicros) override {
    return Unavailable("kv down");
  }
  Result<std::optional<std::string>> Get(const std::string&) override {
    return Unavailable("kv down");
  }
  Status Delete(const std::string&) override { return Unavailable("kv down"); }
  void Sweep(UnixMicros) override {}
};

void ExpectStatus(const Status& s, StatusCode code, const std::string& message) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_EQ(s.message(), message);
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest() {
    alice_.user_id = "2f0c1c9e-6a2b-4a8e-9d0e-3f1b2c3d4e5f";
    alice_.username = "alice";
    alice_.password_hash = "";  // not needed here
    alice_.created_at = clock_.Now();
    alice_.permissions = {"read"};
    EXPECT_TRUE(users_.Create(alice_).ok());
  }

  std::string TokenFor(const User& user, int64_t lifetime = 600) {
    claims_ = MakeAccessClaims(user, clock_.NowSeconds(), lifetime);
    return jwt_.Issue(claims_);
  }

  ManualClock clock_;
  storage::MemoryUserStore users_;
  storage::MemoryKvStore kv_{clock_};
  JwtCodec jwt_{"unit-test-secret"};
  Authenticator auth_{users_, jwt_, kv_, clock_};
  User alice_;
  AccessClaims claims_;
};

TEST_F(AuthenticatorTest, AuthenticatesActiveUser) {
  Result<AuthContext> ctx = auth_.Authenticate(TokenFor(alice_));
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ(ctx->user.user_id, alice_.user_id);
  EXPECT_EQ(ctx->user.username, "alice");
  EXPECT_EQ(ctx->claims.jti, claims_.jti);
}

TEST_F(AuthenticatorTest, InvalidAndExpiredTokens) {
  ExpectStatus(auth_.Authenticate("garbage").status(), StatusCode::kUnauthenticated,
               "Invalid or expired token");
  JwtCodec other("other-secret");
  ExpectStatus(
      auth_.Authenticate(other.Issue(MakeAccessClaims(alice_, clock_.NowSeconds(), 600))).status(),
      StatusCode::kUnauthenticated, "Invalid or expired token");
  const std::string token = TokenFor(alice_, 600);
  clock_.Advance(seconds(599));
  EXPECT_TRUE(auth_.Authenticate(token).ok());
  clock_.Advance(seconds(1));
  ExpectStatus(auth_.Authenticate(token).status(), StatusCode::kUnauthenticated,
               "Invalid or expired token");
}

TEST_F(AuthenticatorTest, UsesStoredUserNotTokenClaims) {
  User claimed = alice_;
  claimed.permissions = {"admin", "read", "write"};
  Result<AuthContext> ctx = auth_.Authenticate(TokenFor(claimed));
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->claims.permissions, claimed.permissions);
  EXPECT_EQ(ctx->user.permissions, std::vector<std::string>{"read"});
  EXPECT_FALSE(Authenticator::Require(ctx->user, Permission::kAdmin).ok());
}

TEST_F(AuthenticatorTest, RevokedTokenRejectedBeforeUserLookup) {
  const std::string token = TokenFor(alice_);
  ASSERT_TRUE(auth_.Revoke(claims_).ok());
  ExpectStatus(auth_.Authenticate(token).status(), StatusCode::kUnauthenticated,
               "Token has been revoked");
  ExpectStatus(auth_.VerifyToken(token).status(), StatusCode::kUnauthenticated,
               "Token has been revoked");
  // Revoked wins over a deleted or inactive user.
  User inactive = alice_;
  inactive.is_active = false;
  ASSERT_TRUE(users_.Update(inactive).ok());
  ExpectStatus(auth_.Authenticate(token).status(), StatusCode::kUnauthenticated,
               "Token has been revoked");
  ASSERT_TRUE(users_.Delete(alice_.user_id).ok());
  ExpectStatus(auth_.Authenticate(token).status(), StatusCode::kUnauthenticated,
               "Token has been revoked");
}

// A token that already verified (and so sits in the verified-token memo) is still checked
// against the deny-list and the stored user on every request.
TEST_F(AuthenticatorTest, RememberedTokenStillHonoursLogoutAndUserState) {
  const std::string token = TokenFor(alice_);
  ASSERT_TRUE(auth_.Authenticate(token).ok());
  ASSERT_TRUE(auth_.Authenticate(token).ok());
  User inactive = alice_;
  inactive.is_active = false;
  ASSERT_TRUE(users_.Update(inactive).ok());
  ExpectStatus(auth_.Authenticate(token).status(), StatusCode::kPermissionDenied,
               "User is inactive");
  ASSERT_TRUE(users_.Update(alice_).ok());
  ASSERT_TRUE(auth_.Authenticate(token).ok());
  ASSERT_TRUE(auth_.Revoke(claims_).ok());
  ExpectStatus(auth_.Authenticate(token).status(), StatusCode::kUnauthenticated,
               "Token has been revoked");
}

// A token one byte away from a remembered one is verified on its own (and fails).
TEST_F(AuthenticatorTest, TamperedCopyOfRememberedTokenIsRefused) {
  const std::string token = TokenFor(alice_);
  ASSERT_TRUE(auth_.Authenticate(token).ok());
  std::string tampered = token;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  ExpectStatus(auth_.Authenticate(tampered).status(), StatusCode::kUnauthenticated,
               "Invalid or expired token");
  ExpectStatus(auth_.Authenticate(token + "x").status(), StatusCode::kUnauthenticated,
               "Invalid or expired token");
}

TEST_F(AuthenticatorTest, RevokeAffectsOnlyThatToken) {
  const std::string first = TokenFor(alice_);
  const AccessClaims first_claims = claims_;
  const std::string second = TokenFor(alice_);
  ASSERT_TRUE(auth_.Revoke(first_claims).ok());
  EXPECT_FALSE(auth_.Authenticate(first).ok());
  EXPECT_TRUE(auth_.Authenticate(second).ok());
  EXPECT_TRUE(*auth_.IsRevoked(first_claims.jti));
  EXPECT_FALSE(*auth_.IsRevoked(claims_.jti));
}

TEST_F(AuthenticatorTest, DenyListRecordExpiresWithToken) {
  TokenFor(alice_, 600);
  ASSERT_TRUE(auth_.Revoke(claims_).ok());
  Result<std::optional<std::string>> record = kv_.Get(kDenyListKeyPrefix + claims_.jti);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(*record, std::optional<std::string>("logout"));
  clock_.Advance(seconds(599));
  EXPECT_TRUE(*auth_.IsRevoked(claims_.jti));
  clock_.Advance(seconds(1));
  EXPECT_FALSE(*auth_.IsRevoked(claims_.jti));  // the token itself is expired by now
}

TEST_F(AuthenticatorTest, RevokeOfExpiredClaimsStillWritesShortRecord) {
  AccessClaims old = MakeAccessClaims(alice_, clock_.NowSeconds() - 1000, 600);
  ASSERT_TRUE(auth_.Revoke(old).ok());
  EXPECT_TRUE(*auth_.IsRevoked(old.jti));
  clock_.Advance(seconds(1));
  EXPECT_FALSE(*auth_.IsRevoked(old.jti));
}

TEST_F(AuthenticatorTest, LegacyTokenWithoutJti) {
  AccessClaims legacy = MakeAccessClaims(alice_, clock_.NowSeconds(), 600);
  legacy.jti.clear();
  const std::string token = jwt_.Issue(legacy);
  ASSERT_TRUE(auth_.Revoke(legacy).ok());  // no-op
  EXPECT_FALSE(*auth_.IsRevoked(""));
  Result<AuthContext> ctx = auth_.Authenticate(token);
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->claims.jti, "");
}

TEST_F(AuthenticatorTest, DeletedUserNotFound) {
  const std::string token = TokenFor(alice_);
  ASSERT_TRUE(users_.Delete(alice_.user_id).ok());
  ExpectStatus(auth_.Authenticate(token).status(), StatusCode::kUnauthenticated, "User not found");
  // VerifyToken (logout) does not look the user up.
  EXPECT_TRUE(auth_.VerifyToken(token).ok());
}

TEST_F(AuthenticatorTest, InactiveUserDeniedOnNextRequest) {
  const std::string token = TokenFor(alice_);
  ASSERT_TRUE(auth_.Authenticate(token).ok());
  User inactive = alice_;
  inactive.is_active = false;
  ASSERT_TRUE(users_.Update(inactive).ok());
  ExpectStatus(auth_.Authenticate(token).status(), StatusCode::kPermissionDenied,
               "User is inactive");
  ASSERT_TRUE(users_.Update(alice_).ok());
  EXPECT_TRUE(auth_.Authenticate(token).ok());
}

TEST_F(AuthenticatorTest, PermissionChangeAppliesOnNextRequest) {
  const std::string token = TokenFor(alice_);
  EXPECT_FALSE(Authenticator::Require(auth_.Authenticate(token)->user, Permission::kWrite).ok());
  User writer = alice_;
  writer.permissions = {"read", "write"};
  ASSERT_TRUE(users_.Update(writer).ok());
  EXPECT_TRUE(Authenticator::Require(auth_.Authenticate(token)->user, Permission::kWrite).ok());
}

TEST_F(AuthenticatorTest, DenyListFailureIsNotIgnored) {
  UnavailableKvStore down;
  Authenticator auth(users_, jwt_, down, clock_);
  const std::string token = TokenFor(alice_);
  EXPECT_EQ(auth.Authenticate(token).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(auth.Revoke(claims_).code(), StatusCode::kUnavailable);
  // An invalid token is still reported as such first.
  ExpectStatus(auth.Authenticate("x").status(), StatusCode::kUnauthenticated,
               "Invalid or expired token");
}

TEST(RequireTest, Messages) {
  User user;
  user.permissions = {"read"};
  EXPECT_TRUE(Authenticator::Require(user, Permission::kRead).ok());
  ExpectStatus(Authenticator::Require(user, Permission::kAdmin), StatusCode::kPermissionDenied,
               "Permission 'admin' required");
  ExpectStatus(Authenticator::Require(user, Permission::kWrite), StatusCode::kPermissionDenied,
               "Permission 'write' required");
  user.permissions = {};
  ExpectStatus(Authenticator::Require(user, Permission::kRead), StatusCode::kPermissionDenied,
               "Permission 'read' required");
}

TEST(ParseBearerTest, SchemeIsCaseInsensitive) {
  EXPECT_EQ(ParseBearer("Bearer abc.def.ghi"), std::optional<std::string_view>("abc.def.ghi"));
  EXPECT_EQ(ParseBearer("bearer abc"), std::optional<std::string_view>("abc"));
  EXPECT_EQ(ParseBearer("BEARER abc"), std::optional<std::string_view>("abc"));
  EXPECT_EQ(ParseBearer("bEaReR abc"), std::optional<std::string_view>("abc"));
}

TEST(ParseBearerTest, RejectsMissingOrOtherSchemes) {
  EXPECT_FALSE(ParseBearer(""));
  EXPECT_FALSE(ParseBearer("Bearer"));
  EXPECT_FALSE(ParseBearer("Bearer "));
  EXPECT_FALSE(ParseBearer("Bearerabc"));
  EXPECT_FALSE(ParseBearer("Basic YWxhZGRpbjpvcGVuc2VzYW1l"));
  EXPECT_FALSE(ParseBearer("Token abc"));
  EXPECT_FALSE(ParseBearer(" Bearer abc"));
}

class BootstrapAdminTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  storage::MemoryUserStore users_;
};

TEST_F(BootstrapAdminTest, CreatesAbsentAdmin) {
  ASSERT_TRUE(EnsureBootstrapAdmin(users_, clock_, "root", "initial-password", std::nullopt).ok());
  Result<User> user = users_.GetByUsername("root");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->permissions, (std::vector<std::string>{"admin", "read", "write"}));
  EXPECT_EQ(user->email, std::optional<std::string>("root@example.com"));
  EXPECT_TRUE(user->is_active);
  EXPECT_EQ(user->created_at, clock_.Now());
  EXPECT_EQ(user->user_id.size(), 36u);
  EXPECT_EQ(user->user_id[14], '4');
  EXPECT_TRUE(VerifyPassword("initial-password", user->password_hash));
  EXPECT_FALSE(PasswordNeedsRehash(user->password_hash));
}

TEST_F(BootstrapAdminTest, UsesGivenEmail) {
  ASSERT_TRUE(
      EnsureBootstrapAdmin(users_, clock_, "root", "initial-password", "ops@corp.test").ok());
  EXPECT_EQ(users_.GetByUsername("root")->email, std::optional<std::string>("ops@corp.test"));
}

TEST_F(BootstrapAdminTest, UnchangedPasswordIsNotRehashed) {
  ASSERT_TRUE(EnsureBootstrapAdmin(users_, clock_, "root", "initial-password", std::nullopt).ok());
  const User before = *users_.GetByUsername("root");
  ASSERT_TRUE(EnsureBootstrapAdmin(users_, clock_, "root", "initial-password", std::nullopt).ok());
  const User after = *users_.GetByUsername("root");
  EXPECT_EQ(after.password_hash, before.password_hash);
  EXPECT_EQ(after.user_id, before.user_id);
}

TEST_F(BootstrapAdminTest, ChangedPasswordIsRehashedPermissionsKept) {
  ASSERT_TRUE(EnsureBootstrapAdmin(users_, clock_, "root", "initial-password", std::nullopt).ok());
  User demoted = *users_.GetByUsername("root");
  demoted.permissions = {"read"};
  ASSERT_TRUE(users_.Update(demoted).ok());

  ASSERT_TRUE(EnsureBootstrapAdmin(users_, clock_, "root", "rotated-password", "x@y.z").ok());
  const User after = *users_.GetByUsername("root");
  EXPECT_EQ(after.user_id, demoted.user_id);
  EXPECT_NE(after.password_hash, demoted.password_hash);
  EXPECT_TRUE(VerifyPassword("rotated-password", after.password_hash));
  EXPECT_FALSE(VerifyPassword("initial-password", after.password_hash));
  EXPECT_EQ(after.permissions, std::vector<std::string>{"read"});          // not re-asserted
  EXPECT_EQ(after.email, std::optional<std::string>("root@example.com"));  // not changed
}

TEST_F(BootstrapAdminTest, MissingHashIsSet) {
  User oidc;
  oidc.user_id = "11111111-2222-4333-8444-555555555555";
  oidc.username = "root";
  ASSERT_TRUE(users_.Create(oidc).ok());
  ASSERT_TRUE(EnsureBootstrapAdmin(users_, clock_, "root", "initial-password", std::nullopt).ok());
  EXPECT_TRUE(VerifyPassword("initial-password", users_.GetByUsername("root")->password_hash));
}

TEST_F(BootstrapAdminTest, CreateRulesApply) {
  ExpectStatus(EnsureBootstrapAdmin(users_, clock_, "ab", "initial-password", std::nullopt),
               StatusCode::kInvalidArgument, "Bootstrap admin username must be 3-50 characters");
  ExpectStatus(
      EnsureBootstrapAdmin(users_, clock_, std::string(51, 'a'), "initial-password", std::nullopt),
      StatusCode::kInvalidArgument, "Bootstrap admin username must be 3-50 characters");
  ExpectStatus(EnsureBootstrapAdmin(users_, clock_, "root", "short", std::nullopt),
               StatusCode::kInvalidArgument,
               "Bootstrap admin password must be at least 8 characters");
  // Characters, not bytes: three two-byte letters make a valid username.
  EXPECT_TRUE(EnsureBootstrapAdmin(users_, clock_, "\xc3\xa9\xc3\xa9\xc3\xa9", "initial-password",
                                   std::nullopt)
                  .ok());
  EXPECT_EQ(users_.List()->size(), 1u);
}

}  // namespace
}  // namespace magnetar::auth
