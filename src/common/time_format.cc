#include "common/time_format.h"

#include <charconv>
#include <chrono>
#include <cstdio>

namespace magnetar {
namespace {

void AppendDigits(std::string& out, int64_t value, int width) {
  char buf[16];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(buf, width);
}

std::optional<int> ParseFixed(std::string_view s, size_t pos, size_t len) {
  if (pos + len > s.size()) return std::nullopt;
  int v = 0;
  for (size_t i = pos; i < pos + len; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

void AppendRfc3339(std::string& out, UnixMicros t) {
  using namespace std::chrono;
  const int64_t micros = ((t % 1000000) + 1000000) % 1000000;
  const int64_t secs = (t - micros) / 1000000;
  const sys_days day{floor<days>(sys_seconds{seconds{secs}})};
  const year_month_day ymd{day};
  const int64_t sod = secs - duration_cast<seconds>(day.time_since_epoch()).count();
  AppendDigits(out, static_cast<int>(ymd.year()), 4);
  out.push_back('-');
  AppendDigits(out, static_cast<unsigned>(ymd.month()), 2);
  out.push_back('-');
  AppendDigits(out, static_cast<unsigned>(ymd.day()), 2);
  out.push_back('T');
  AppendDigits(out, sod / 3600, 2);
  out.push_back(':');
  AppendDigits(out, (sod / 60) % 60, 2);
  out.push_back(':');
  AppendDigits(out, sod % 60, 2);
  out.push_back('.');
  AppendDigits(out, micros, 6);
  out.push_back('Z');
}

std::string FormatRfc3339(UnixMicros t) {
  std::string out;
  out.reserve(27);
  AppendRfc3339(out, t);
  return out;
}

std::optional<UnixMicros> ParseRfc3339(std::string_view s) {
  using namespace std::chrono;
  auto y = ParseFixed(s, 0, 4), mo = ParseFixed(s, 5, 2), d = ParseFixed(s, 8, 2);
  auto h = ParseFixed(s, 11, 2), mi = ParseFixed(s, 14, 2), se = ParseFixed(s, 17, 2);
  if (!y || !mo || !d || !h || !mi || !se) return std::nullopt;
  const char sep = s[10];
  if (s[4] != '-' || s[7] != '-' || (sep != 'T' && sep != 't' && sep != ' ') || s[13] != ':' ||
      s[16] != ':') {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 6) {
        micros = micros * 10 + (s[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 6; ++digits) micros *= 10;
  }
  int64_t offset_secs = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    auto oh = ParseFixed(s, pos + 1, 2), om = ParseFixed(s, pos + 4, 2);
    if (!oh || !om || s[pos + 3] != ':' || *oh > 23 || *om > 59) return std::nullopt;
    offset_secs = (*oh * 3600 + *om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)},
                           day{static_cast<unsigned>(*d)}};
  if (!ymd.ok() || *h > 23 || *mi > 59 || *se > 60) return std::nullopt;
  const int64_t days_since = sys_days{ymd}.time_since_epoch().count();
  const int64_t secs = days_since * 86400 + *h * 3600 + *mi * 60 + *se - offset_secs;
  return secs * 1000000 + micros;
}

}  // namespace magnetar
