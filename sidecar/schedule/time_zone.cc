#include "schedule/time_zone.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace unshelver::core {

namespace {

using std::chrono::days;
using std::chrono::sys_days;

// A cursor over a POSIX TZ string.
class RuleText {
 public:
  explicit RuleText(std::string_view text) : text_(text) {}
  bool done() const { return pos_ >= text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  bool take(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  // A zone abbreviation: three or more letters, or anything between < and >.
  std::optional<std::string> abbreviation() {
    if (take('<')) {
      const std::size_t close = text_.find('>', pos_);
      if (close == std::string_view::npos) return std::nullopt;
      std::string name(text_.substr(pos_, close - pos_));
      pos_ = close + 1;
      return name;
    }
    const std::size_t start = pos_;
    while (!done() && std::isalpha(static_cast<unsigned char>(peek())) != 0) ++pos_;
    if (pos_ - start < 3) return std::nullopt;
    return std::string(text_.substr(start, pos_ - start));
  }

  // [+-]hh[:mm[:ss]], in seconds; hours up to 167 (RFC 8536's extension for rule times).
  std::optional<std::int32_t> signed_time() {
    std::int32_t sign = 1;
    if (take('-')) {
      sign = -1;
    } else {
      take('+');
    }
    std::int32_t total = 0;
    for (int part = 0; part < 3; ++part) {
      if (part > 0 && !take(':')) break;
      const std::optional<int> number = integer();
      if (!number || (part == 0 && *number > 167) || (part > 0 && *number > 59)) return std::nullopt;
      total += *number * (part == 0 ? 3600 : part == 1 ? 60 : 1);
    }
    return sign * total;
  }

  std::optional<int> integer() {
    const std::size_t start = pos_;
    int value = 0;
    while (!done() && std::isdigit(static_cast<unsigned char>(peek())) != 0 && pos_ - start < 4) {
      value = value * 10 + (peek() - '0');
      ++pos_;
    }
    if (pos_ == start) return std::nullopt;
    return value;
  }

  std::optional<PosixZoneRule::Change> change() {
    using Kind = PosixZoneRule::Change::Kind;
    PosixZoneRule::Change result;
    if (take('M')) {
      result.kind = Kind::kMonthWeekDay;
      const auto month = integer();
      if (!month || !take('.')) return std::nullopt;
      const auto week = integer();
      if (!week || !take('.')) return std::nullopt;
      const auto weekday = integer();
      if (!weekday || *month < 1 || *month > 12 || *week < 1 || *week > 5 || *weekday > 6)
        return std::nullopt;
      result.month = *month;
      result.week = *week;
      result.day = *weekday;
    } else if (take('J')) {
      result.kind = Kind::kJulianNoLeap;
      const auto day = integer();
      if (!day || *day < 1 || *day > 365) return std::nullopt;
      result.day = *day;
    } else {
      result.kind = Kind::kZeroBased;
      const auto day = integer();
      if (!day || *day > 365) return std::nullopt;
      result.day = *day;
    }
    if (take('/')) {
      const auto time = signed_time();
      if (!time) return std::nullopt;
      result.time = *time;
    }
    return result;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

bool is_leap(int year) {
  return std::chrono::year(year).is_leap();
}

// The local midnight (as a day count) on which a change falls in `year`.
sys_days change_day(const PosixZoneRule::Change& change, int year) {
  using Kind = PosixZoneRule::Change::Kind;
  const sys_days january_first = sys_days(std::chrono::year(year) / std::chrono::January / 1);
  switch (change.kind) {
    case Kind::kJulianNoLeap:
      // Jn counts 1..365 and never names February 29: from March on, a leap year adds a day.
      return january_first + days(change.day - 1 + (is_leap(year) && change.day >= 60 ? 1 : 0));
    case Kind::kZeroBased: return january_first + days(change.day);
    case Kind::kMonthWeekDay: {
      const auto month = std::chrono::month(static_cast<unsigned>(change.month));
      const auto weekday = std::chrono::weekday(static_cast<unsigned>(change.day));
      if (change.week == 5) return sys_days(std::chrono::year(year) / month / weekday[std::chrono::last]);
      return sys_days(std::chrono::year(year) / month / weekday[static_cast<unsigned>(change.week)]);
    }
  }
  return january_first;
}

std::int64_t read_big_endian(std::string_view bytes, std::size_t at, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  if (width == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(value));
  return static_cast<std::int64_t>(value);
}

struct Counts {
  std::size_t isut = 0, isstd = 0, leap = 0, time = 0, type = 0, chars = 0;
  std::size_t data_size(std::size_t time_width) const {
    return time * time_width + time + type * 6 + chars + leap * (time_width + 4) + isstd + isut;
  }
};

std::optional<Counts> read_header(std::string_view bytes, std::size_t at) {
  constexpr std::size_t kHeaderSize = 44;
  if (bytes.size() < at + kHeaderSize || bytes.substr(at, 4) != "TZif") return std::nullopt;
  Counts counts;
  std::size_t* fields[] = {&counts.isut, &counts.isstd, &counts.leap,
                           &counts.time, &counts.type,  &counts.chars};
  for (std::size_t i = 0; i < 6; ++i) {
    *fields[i] =
        static_cast<std::size_t>(static_cast<std::uint32_t>(read_big_endian(bytes, at + 20 + i * 4, 4)));
  }
  return counts;
}

}  // namespace

std::int32_t PosixZoneRule::offset_at(SysSeconds at) const {
  if (!has_dst) return std_offset;
  const auto local_day = std::chrono::floor<days>(at + std::chrono::seconds(std_offset));
  const int year = static_cast<int>(std::chrono::year_month_day(local_day).year());
  const SysSeconds starts = change_day(start, year) + std::chrono::seconds(start.time - std_offset);
  const SysSeconds ends = change_day(end, year) + std::chrono::seconds(end.time - dst_offset);
  // In the southern hemisphere daylight-saving time spans the new year: it ends before it starts.
  const bool in_dst = starts < ends ? (at >= starts && at < ends) : !(at >= ends && at < starts);
  return in_dst ? dst_offset : std_offset;
}

Result<PosixZoneRule> parse_posix_zone_rule(std::string_view text) {
  const Error bad{"not a POSIX TZ rule: \"" + std::string(text) + "\""};
  RuleText cursor(text);
  PosixZoneRule rule;
  auto std_name = cursor.abbreviation();
  auto std_offset = cursor.signed_time();
  if (!std_name || !std_offset) return bad;
  rule.std_abbreviation = *std_name;
  // POSIX counts offsets westward; everything else here counts them eastward.
  rule.std_offset = -*std_offset;
  if (cursor.done()) return rule;
  auto dst_name = cursor.abbreviation();
  if (!dst_name) return bad;
  rule.has_dst = true;
  rule.dst_abbreviation = *dst_name;
  rule.dst_offset = rule.std_offset + 3600;
  if (!cursor.done() && cursor.peek() != ',') {
    auto dst_offset = cursor.signed_time();
    if (!dst_offset) return bad;
    rule.dst_offset = -*dst_offset;
  }
  if (cursor.done()) {
    // No rules given: POSIX leaves them to the implementation; the US rules are what glibc uses.
    rule.start = {PosixZoneRule::Change::Kind::kMonthWeekDay, 0, 3, 2, 2 * 3600};
    rule.end = {PosixZoneRule::Change::Kind::kMonthWeekDay, 0, 11, 1, 2 * 3600};
    return rule;
  }
  if (!cursor.take(',')) return bad;
  auto start = cursor.change();
  if (!start || !cursor.take(',')) return bad;
  auto end = cursor.change();
  if (!end || !cursor.done()) return bad;
  rule.start = *start;
  rule.end = *end;
  return rule;
}

Result<TimeZone> TimeZone::parse(std::string name, std::string_view tzif) {
  const Error bad{"time zone " + name + ": not a valid TZif file"};
  const std::optional<Counts> first = read_header(tzif, 0);
  if (!first) return bad;
  const char version = tzif[4];
  std::size_t time_width = 4;
  std::size_t data = 44;
  Counts counts = *first;
  if (version >= '2') {
    // Version 2+ repeats the data with 64-bit times after the version 1 block, which is skipped.
    const std::size_t second = 44 + first->data_size(4);
    const std::optional<Counts> again = read_header(tzif, second);
    if (!again) return bad;
    counts = *again;
    time_width = 8;
    data = second + 44;
  }
  if (counts.type == 0 || tzif.size() < data + counts.data_size(time_width)) return bad;

  TimeZone zone;
  zone.name_ = std::move(name);
  std::size_t at = data;
  for (std::size_t i = 0; i < counts.time; ++i, at += time_width) {
    zone.transitions_.push_back(read_big_endian(tzif, at, time_width));
  }
  for (std::size_t i = 0; i < counts.time; ++i, ++at) {
    const auto type = static_cast<std::uint8_t>(tzif[at]);
    if (type >= counts.type) return bad;
    zone.transition_types_.push_back(type);
  }
  for (std::size_t i = 0; i < counts.type; ++i, at += 6) {
    zone.types_.push_back(Type{static_cast<std::int32_t>(read_big_endian(tzif, at, 4)), tzif[at + 4] != 0});
  }
  if (!std::is_sorted(zone.transitions_.begin(), zone.transitions_.end())) return bad;
  at = data + counts.data_size(time_width);
  if (time_width == 8 && at < tzif.size() && tzif[at] == '\n') {
    const std::size_t close = tzif.find('\n', at + 1);
    if (close == std::string_view::npos) return bad;
    const std::string_view footer = tzif.substr(at + 1, close - at - 1);
    // An empty footer means that no rule is known past the last transition.
    if (!footer.empty()) {
      auto rule = parse_posix_zone_rule(footer);
      if (!rule) return Error{"time zone " + zone.name_ + ": " + rule.error().message};
      zone.has_footer_ = true;
      zone.footer_ = std::move(*rule);
    }
  }
  return zone;
}

TimeZone TimeZone::utc() {
  TimeZone zone;
  zone.name_ = "UTC";
  zone.types_.push_back(Type{0, false});
  return zone;
}

std::int32_t TimeZone::offset_at(SysSeconds at) const {
  const std::int64_t seconds = at.time_since_epoch().count();
  if (transitions_.empty() || seconds < transitions_.front()) {
    if (transitions_.empty() && has_footer_) return footer_.offset_at(at);
    return types_.empty() ? 0 : types_.front().offset;
  }
  if (has_footer_ && seconds >= transitions_.back()) return footer_.offset_at(at);
  const auto after = std::upper_bound(transitions_.begin(), transitions_.end(), seconds);
  const auto index = static_cast<std::size_t>(after - transitions_.begin() - 1);
  return types_[transition_types_[index]].offset;
}

LocalSeconds TimeZone::to_local(SysSeconds at) const {
  return LocalSeconds(at.time_since_epoch() + std::chrono::seconds(offset_at(at)));
}

SysSeconds TimeZone::to_utc(LocalSeconds local, Ambiguous choose) const {
  const std::chrono::seconds wall = local.time_since_epoch();
  // The offsets a day either side: a local time stands for at most these two (zones do not
  // change their offset twice within two days).
  const std::int32_t before = offset_at(SysSeconds(wall - days(1)));
  const std::int32_t after = offset_at(SysSeconds(wall + days(1)));
  auto moment = [&](std::int32_t offset) { return SysSeconds(wall - std::chrono::seconds(offset)); };
  const bool before_fits = offset_at(moment(before)) == before;
  const bool after_fits = offset_at(moment(after)) == after;
  if (before_fits && after_fits && before != after) {
    const SysSeconds one = moment(before);
    const SysSeconds other = moment(after);
    return choose == Ambiguous::kEarlier ? std::min(one, other) : std::max(one, other);
  }
  if (before_fits) return moment(before);
  if (after_fits) return moment(after);
  // In the gap of a jump forward: the moment of the jump, found by bisection between the two
  // readings of the local time.
  SysSeconds low = std::min(moment(before), moment(after));
  SysSeconds high = std::max(moment(before), moment(after));
  const std::int32_t target = offset_at(high);
  while (high - low > std::chrono::seconds(1)) {
    const SysSeconds middle = low + (high - low) / 2;
    if (offset_at(middle) == target) {
      high = middle;
    } else {
      low = middle;
    }
  }
  return high;
}

}  // namespace unshelver::core
