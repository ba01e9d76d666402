#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <stdexcept>

namespace magnetar::metrics {

namespace {

enum Type { kCounter, kGauge, kHistogram };

const char* TypeName(int type) {
  switch (type) {
    case kCounter:
      return "counter";
    case kGauge:
      return "gauge";
    default:
      return "histogram";
  }
}

// Go's strconv.ParseFloat, which Prometheus uses, reads these; fmt's shortest round-trip form
// ("0.005", "1e-05") is accepted as is.
void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

// Label values: backslash, double quote and line feed are escaped (exposition format 0.0.4).
void AppendLabelValue(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

// HELP text: backslash and line feed only.
void AppendHelp(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

bool ValidName(std::string_view name, bool label) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                       (!label && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return !(label && name.substr(0, 2) == "__");
}

// `{a="x",b="y"` (no closing brace, so a histogram can add le); empty when there are no labels
// and no extra label is coming.
void AppendLabels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out.push_back('{');
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out.push_back(',');
    first = false;
    out += name;
    out += "=\"";
    AppendLabelValue(out, value);
    out.push_back('"');
  }
  if (!extra_name.empty()) {
    if (!first) out.push_back(',');
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out.push_back('"');
  }
  out.push_back('}');
}

thread_local size_t t_shard = static_cast<size_t>(-1);
std::atomic<size_t> g_next_shard{0};

}  // namespace

size_t Counter::ShardIndex() {
  if (t_shard == static_cast<size_t>(-1)) {
    t_shard = g_next_shard.fetch_add(1, std::memory_order_relaxed) % kShards;
  }
  return t_shard;
}

uint64_t Counter::Value() const {
  uint64_t total = 0;
  for (const auto& s : shards_) total += s.value.load(std::memory_order_relaxed);
  return total;
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  std::erase_if(bounds_, [](double b) { return !std::isfinite(b); });
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  const size_t i = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
}

std::vector<double> SizeBuckets() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}; }

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

CallbackHandle& CallbackHandle::operator=(CallbackHandle&& other) noexcept {
  if (this != &other) {
    Reset();
    remove_ = std::move(other.remove_);
    other.remove_ = nullptr;
  }
  return *this;
}

void CallbackHandle::Reset() {
  if (remove_) {
    auto remove = std::move(remove_);
    remove_ = nullptr;
    remove();
  }
}

struct Registry::Series {
  Labels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> callback;
  uint64_t callback_id = 0;
};

struct Registry::Family {
  std::string name;
  std::string help;
  int type = kCounter;
  std::vector<std::string> label_names;
  std::vector<std::unique_ptr<Series>> series;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry& Registry::Default() {
  static Registry* registry = new Registry();  // never destroyed: metrics outlive every module
  return *registry;
}

Registry::Family& Registry::FamilyLocked(std::string_view name, std::string_view help, int type,
                                         const Labels& labels) {
  std::vector<std::string> label_names;
  for (const auto& [n, v] : labels) {
    if (!ValidName(n, true) || n == "le") {
      throw std::logic_error(fmt::format("metric {}: invalid label name '{}'", name, n));
    }
    label_names.push_back(n);
  }
  for (auto& f : families_) {
    if (f->name != name) continue;
    if (f->type != type || f->help != help || f->label_names != label_names) {
      throw std::logic_error(
          fmt::format("metric {} registered twice with different type, help or labels", name));
    }
    return *f;
  }
  if (!ValidName(name, false)) throw std::logic_error(fmt::format("invalid metric name '{}'", name));
  auto family = std::make_unique<Family>();
  family->name = std::string(name);
  family->help = std::string(help);
  family->type = type;
  family->label_names = std::move(label_names);
  families_.push_back(std::move(family));
  return *families_.back();
}

Registry::Series* Registry::FindLocked(Family& family, const Labels& labels) {
  for (auto& s : family.series) {
    if (s->labels == labels && !s->callback) return s.get();
  }
  family.series.push_back(std::make_unique<Series>());
  family.series.back()->labels = labels;
  return family.series.back().get();
}

Counter& Registry::GetCounter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Series* s = FindLocked(FamilyLocked(name, help, kCounter, labels), labels);
  if (!s->counter) s->counter = std::make_unique<Counter>();
  return *s->counter;
}

Gauge& Registry::GetGauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Series* s = FindLocked(FamilyLocked(name, help, kGauge, labels), labels);
  if (!s->gauge) s->gauge = std::make_unique<Gauge>();
  return *s->gauge;
}

Histogram& Registry::GetHistogram(std::string_view name, std::string_view help,
                                  const Labels& labels, const std::vector<double>& bounds) {
  std::lock_guard lock(mutex_);
  Series* s = FindLocked(FamilyLocked(name, help, kHistogram, labels), labels);
  if (!s->histogram) s->histogram = std::make_unique<Histogram>(bounds);
  return *s->histogram;
}

CallbackHandle Registry::AddCallbackGauge(std::string_view name, std::string_view help,
                                          const Labels& labels, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  Family& family = FamilyLocked(name, help, kGauge, labels);
  auto series = std::make_unique<Series>();
  series->labels = labels;
  series->callback = std::move(read);
  series->callback_id = next_callback_id_++;
  const uint64_t id = series->callback_id;
  family.series.push_back(std::move(series));
  return CallbackHandle([this, &family, id] {
    std::lock_guard lock(mutex_);
    std::erase_if(family.series, [id](const auto& s) { return s->callback_id == id; });
  });
}

double Registry::Total(std::string_view name) const {
  std::lock_guard lock(mutex_);
  double total = 0;
  for (const auto& f : families_) {
    if (f->name != name) continue;
    for (const auto& s : f->series) {
      if (s->counter) total += static_cast<double>(s->counter->Value());
      if (s->gauge) total += static_cast<double>(s->gauge->Value());
      if (s->callback) total += s->callback();
      if (s->histogram) total += static_cast<double>(s->histogram->Read().cumulative.back());
    }
  }
  return total;
}

Histogram::Snapshot Registry::MergedHistogram(std::string_view name) const {
  std::lock_guard lock(mutex_);
  Histogram::Snapshot merged;
  for (const auto& f : families_) {
    if (f->name != name || f->type != kHistogram) continue;
    for (const auto& s : f->series) {
      Histogram::Snapshot one = s->histogram->Read();
      if (merged.cumulative.empty()) {
        merged = std::move(one);
        continue;
      }
      if (one.bounds != merged.bounds) continue;
      for (size_t i = 0; i < one.cumulative.size(); ++i) merged.cumulative[i] += one.cumulative[i];
      merged.sum += one.sum;
    }
  }
  return merged;
}

std::string Registry::Render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(16 * 1024);
  for (const auto& f : families_) {
    out += "# HELP ";
    out += f->name;
    out.push_back(' ');
    AppendHelp(out, f->help);
    out += "\n# TYPE ";
    out += f->name;
    out.push_back(' ');
    out += TypeName(f->type);
    out.push_back('\n');
    for (const auto& s : f->series) {
      if (f->type == kHistogram) {
        const Histogram::Snapshot snap = s->histogram->Read();
        for (size_t i = 0; i <= snap.bounds.size(); ++i) {
          out += f->name;
          out += "_bucket";
          std::string le;
          if (i < snap.bounds.size()) {
            AppendDouble(le, snap.bounds[i]);
          } else {
            le = "+Inf";
          }
          AppendLabels(out, s->labels, "le", le);
          out += fmt::format(" {}\n", snap.cumulative[i]);
        }
        out += f->name;
        out += "_sum";
        AppendLabels(out, s->labels);
        out.push_back(' ');
        AppendDouble(out, snap.sum);
        out += "\n";
        out += f->name;
        out += "_count";
        AppendLabels(out, s->labels);
        out += fmt::format(" {}\n", snap.cumulative.back());
        continue;
      }
      out += f->name;
      AppendLabels(out, s->labels);
      out.push_back(' ');
      if (s->counter) {
        out += fmt::format("{}", s->counter->Value());
      } else if (s->gauge) {
        out += fmt::format("{}", s->gauge->Value());
      } else if (s->callback) {
        AppendDouble(out, s->callback());
      } else {
        out.push_back('0');
      }
      out.push_back('\n');
    }
  }
  return out;
}

}  // namespace magnetar::metrics
