#include "eftl/matcher_index.h"

namespace magnetar::eftl {

void MatcherIndex::Add(uint64_t id, std::shared_ptr<const Matcher> matcher) {
  Remove(id);
  Entry e;
  for (const MatchTerm& t : matcher->terms) {
    if (t.is_equality()) {
      e.key = EqualityKey(t);
      break;
    }
  }
  e.matcher = std::move(matcher);
  if (e.key.empty()) scan_.insert(id);
  else by_equality_[e.key].insert(id);
  entries_.emplace(id, std::move(e));
}

void MatcherIndex::Remove(uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (it->second.key.empty()) {
    scan_.erase(id);
  } else if (auto b = by_equality_.find(it->second.key); b != by_equality_.end()) {
    b->second.erase(id);
    if (b->second.empty()) by_equality_.erase(b);
  }
  entries_.erase(it);
}

}  // namespace magnetar::eftl
