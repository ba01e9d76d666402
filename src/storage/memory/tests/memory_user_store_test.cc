#include "storage/memory/memory_user_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace magnetar::storage {
namespace {

auth::User MakeUser(const std::string& id, const std::string& name, UnixMicros created_at = 1) {
  auth::User u;
  u.user_id = id;
  u.username = name;
  u.email = name + "@example.com";
  u.password_hash = "$argon2id$v=19$m=65536,t=3,p=4$x$y";
  u.created_at = created_at;
  u.permissions = {"read", "read"};
  return u;
}

TEST(MemoryUserStoreTest, CreateAndGet) {
  MemoryUserStore store;
  ASSERT_TRUE(store.Create(MakeUser("id-1", "alice")).ok());
  Result<auth::User> by_id = store.GetById("id-1");
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->username, "alice");
  EXPECT_EQ(by_id->email, std::optional<std::string>("alice@example.com"));
  EXPECT_EQ(by_id->permissions, (std::vector<std::string>{"read", "read"}));
  Result<auth::User> by_name = store.GetByUsername("alice");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->user_id, "id-1");
  EXPECT_EQ(store.GetById("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.GetById("nope").status().message(), "User with ID 'nope' not found");
  EXPECT_EQ(store.GetByUsername("Alice").status().code(), StatusCode::kNotFound);
}

TEST(MemoryUserStoreTest, DuplicateUsername) {
  MemoryUserStore store;
  ASSERT_TRUE(store.Create(MakeUser("id-1", "alice")).ok());
  Status dup = store.Create(MakeUser("id-2", "alice"));
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message(), "Username 'alice' already exists");
  EXPECT_EQ(store.Create(MakeUser("id-1", "bob")).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store.List()->size(), 1u);
  EXPECT_EQ(store.GetByUsername("bob").status().code(), StatusCode::kNotFound);
}

TEST(MemoryUserStoreTest, UpdateKeepsUsername) {
  MemoryUserStore store;
  ASSERT_TRUE(store.Create(MakeUser("id-1", "alice")).ok());
  auth::User changed = MakeUser("id-1", "mallory");
  changed.email = std::nullopt;
  changed.is_active = false;
  changed.permissions = {"admin"};
  changed.password_hash = "new";
  ASSERT_TRUE(store.Update(changed).ok());
  auth::User stored = *store.GetById("id-1");
  EXPECT_EQ(stored.username, "alice");
  EXPECT_EQ(stored.email, std::nullopt);
  EXPECT_FALSE(stored.is_active);
  EXPECT_EQ(stored.permissions, std::vector<std::string>{"admin"});
  EXPECT_EQ(stored.password_hash, "new");
  EXPECT_TRUE(store.GetByUsername("alice").ok());
  EXPECT_EQ(store.GetByUsername("mallory").status().code(), StatusCode::kNotFound);

  Status missing = store.Update(MakeUser("id-9", "zed"));
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.message(), "User with ID 'id-9' not found");
}

TEST(MemoryUserStoreTest, DeleteFreesUsername) {
  MemoryUserStore store;
  ASSERT_TRUE(store.Create(MakeUser("id-1", "alice")).ok());
  ASSERT_TRUE(store.Delete("id-1").ok());
  EXPECT_EQ(store.GetById("id-1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.GetByUsername("alice").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.Delete("id-1").code(), StatusCode::kNotFound);
  EXPECT_TRUE(store.Create(MakeUser("id-2", "alice")).ok());
  EXPECT_EQ(store.GetByUsername("alice")->user_id, "id-2");
}

TEST(MemoryUserStoreTest, ListOrderedByCreation) {
  MemoryUserStore store;
  EXPECT_TRUE(store.List()->empty());
  ASSERT_TRUE(store.Create(MakeUser("c", "carol", 3)).ok());
  ASSERT_TRUE(store.Create(MakeUser("a", "alice", 1)).ok());
  ASSERT_TRUE(store.Create(MakeUser("b", "bob", 2)).ok());
  std::vector<std::string> names;
  Result<std::vector<auth::User>> users = store.List();
  ASSERT_TRUE(users.ok());
  for (const auth::User& u : *users) names.push_back(u.username);
  EXPECT_EQ(names, (std::vector<std::string>{"alice", "bob", "carol"}));
}

TEST(MemoryUserStoreTest, ConcurrentCreatesOfOneUsernameHaveOneWinner) {
  MemoryUserStore store;
  std::vector<std::thread> threads;
  std::atomic<int> wins = 0;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      if (store.Create(MakeUser("id-" + std::to_string(i), "same")).ok()) ++wins;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins, 1);
  EXPECT_EQ(store.List()->size(), 1u);
}

}  // namespace
}  // namespace magnetar::storage
