#pragma once

// MatcherIndex: finds the subscriptions whose matcher accepts a message without looking at every
// subscription (issue 12 "Speed"). Each subscription is filed under one of its equality terms
// (field, typed value); one with no equality term (only presence/absence, or empty) goes on a
// short scan list. For a message, only the entries filed under one of its own (field, value)
// pairs, plus the scan list, are candidates; the full matcher then decides. A message names each
// field once, so a subscription is visited at most once per message: the cost follows the number
// of candidates, not the number of subscriptions.
//
// Threading: not thread-safe; the owner (TopicFanout) guards it.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "eftl/matcher.h"

namespace magnetar::eftl {

class MatcherIndex {
 public:
  void Add(uint64_t id, std::shared_ptr<const Matcher> matcher);
  void Remove(uint64_t id);
  size_t size() const { return entries_.size(); }

  // Calls fn(id) for every subscription that matches `message`, in no particular order.
  template <typename Fn>
  void ForEachMatch(const Message& message, Fn&& fn) const {
    for (const auto& [name, field] : message.fields) {
      if (field.type != FieldType::kString && field.type != FieldType::kLong) continue;
      if (by_equality_.empty()) break;
      auto it = by_equality_.find(EqualityKey(name, field));
      if (it == by_equality_.end()) continue;
      for (uint64_t id : it->second) {
        if (entries_.at(id).matcher->Matches(message)) fn(id);
      }
    }
    for (uint64_t id : scan_) {
      if (entries_.at(id).matcher->Matches(message)) fn(id);
    }
  }

 private:
  struct Entry {
    std::shared_ptr<const Matcher> matcher;
    std::string key;  // empty: on the scan list
  };
  std::unordered_map<uint64_t, Entry> entries_;
  std::unordered_map<std::string, std::unordered_set<uint64_t>> by_equality_;
  std::unordered_set<uint64_t> scan_;
};

}  // namespace magnetar::eftl
