#include "schedule/windows.h"

#include <algorithm>
#include <array>

#include "base/text.h"

namespace unshelver::core {

namespace {

using std::chrono::days;
using std::chrono::minutes;

constexpr std::array<std::string_view, 7> kDayNames = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

std::optional<int> day_index(std::string_view name) {
  for (std::size_t i = 0; i < kDayNames.size(); ++i) {
    if (kDayNames[i] == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::optional<std::uint8_t> parse_days(std::string_view text) {
  if (text == "daily") return std::uint8_t{0x7f};
  std::uint8_t mask = 0;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const std::size_t dash = item.find('-');
    const auto first = day_index(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : day_index(item.substr(dash + 1));
    if (!first || !last) return std::nullopt;
    // A range may wrap past Sunday (fri-mon).
    for (int day = *first;; day = (day + 1) % 7) {
      mask = static_cast<std::uint8_t>(mask | (1U << day));
      if (day == *last) break;
    }
  }
  return mask == 0 ? std::nullopt : std::optional<std::uint8_t>(mask);
}

std::optional<minutes> parse_clock(std::string_view text, bool allow_24) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  auto digits = [](std::string_view two) -> std::optional<int> {
    if (two[0] < '0' || two[0] > '9' || two[1] < '0' || two[1] > '9') return std::nullopt;
    return (two[0] - '0') * 10 + (two[1] - '0');
  };
  const auto hours = digits(text.substr(0, 2));
  const auto mins = digits(text.substr(3, 2));
  if (!hours || !mins || *mins > 59) return std::nullopt;
  if (*hours > 23 && !(allow_24 && *hours == 24 && *mins == 0)) return std::nullopt;
  return minutes(*hours * 60 + *mins);
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t start = text.find_first_not_of(" \t", at);
    if (start == std::string_view::npos) break;
    const std::size_t end = std::min(text.find_first_of(" \t", start), text.size());
    words.emplace_back(text.substr(start, end - start));
    at = end;
  }
  return words;
}

std::vector<WindowSpan> merged(std::vector<WindowSpan> spans) {
  std::sort(spans.begin(), spans.end(),
            [](const WindowSpan& a, const WindowSpan& b) { return a.start < b.start; });
  std::vector<WindowSpan> out;
  for (const WindowSpan& span : spans) {
    if (!out.empty() && span.start <= out.back().end) {
      out.back().end = std::max(out.back().end, span.end);
    } else {
      out.push_back(span);
    }
  }
  return out;
}

}  // namespace

Result<KeepWarmWindow> parse_keep_warm_window(std::string_view text) {
  const std::vector<std::string> words = split_words(text);
  const Error bad{
      "expected \"DAYS HH:MM-HH:MM [TIME_ZONE]\" (for example \"mon-fri 08:00-18:00 Europe/Zurich\"), got "
      "\"" +
      std::string(text) + "\""};
  if (words.size() < 2 || words.size() > 3) return bad;
  KeepWarmWindow window;
  const auto days_mask = parse_days(to_lower(words[0]));
  if (!days_mask)
    return Error{"unknown days \"" + words[0] +
                 "\": use mon, tue, wed, thu, fri, sat, sun, ranges such as mon-fri, or daily"};
  window.days = *days_mask;
  const std::size_t dash = words[1].find('-');
  if (dash == std::string::npos) return bad;
  const auto from = parse_clock(std::string_view(words[1]).substr(0, dash), false);
  const auto until = parse_clock(std::string_view(words[1]).substr(dash + 1), true);
  if (!from || !until) return bad;
  if (*from == *until)
    return Error{"the window \"" + std::string(text) + "\" is empty: from and until are the same time"};
  window.from = *from;
  window.until = *until;
  if (words.size() == 3) window.time_zone = words[2];
  if (std::string problem = time_zone_name_problem(window.time_zone); !problem.empty()) return Error{problem};
  return window;
}

std::string time_zone_name_problem(std::string_view name) {
  // Zone names are file names under the zone directory: nothing may climb out of it.
  if (name.empty() || name.front() == '/' || name.find("..") != std::string_view::npos) {
    return "not a time zone name: \"" + std::string(name) + "\"";
  }
  return "";
}

std::string keep_warm_window_problem(std::string_view text) {
  const auto window = parse_keep_warm_window(text);
  return window ? "" : window.error().message;
}

void KeepWarmSchedule::add(KeepWarmWindow window, TimeZone zone) {
  windows_.push_back(Zoned{std::move(window), std::move(zone)});
}

std::vector<WindowSpan> KeepWarmSchedule::spans(SysSeconds from, SysSeconds to) const {
  std::vector<WindowSpan> all;
  for (const Zoned& zoned : windows_) {
    // Local days from the one before `from` (its window may cross midnight into `from`) to `to`.
    const auto first_day = std::chrono::floor<days>(zoned.zone.to_local(from)) - days(1);
    const auto last_day = std::chrono::floor<days>(zoned.zone.to_local(to));
    for (auto day = first_day; day <= last_day; day += days(1)) {
      const unsigned iso = std::chrono::weekday(day).iso_encoding();  // 1 = Monday
      if ((zoned.window.days & (1U << (iso - 1))) == 0) continue;
      const LocalSeconds start_local = day + zoned.window.from;
      const LocalSeconds end_local =
          day + zoned.window.until + (zoned.window.until <= zoned.window.from ? days(1) : days(0));
      const SysSeconds start = zoned.zone.to_utc(start_local, Ambiguous::kEarlier);
      const SysSeconds end = zoned.zone.to_utc(end_local, Ambiguous::kLater);
      if (end <= start || end <= from || start >= to) continue;
      all.push_back(WindowSpan{start, end});
    }
  }
  return merged(std::move(all));
}

KeepWarmDecision KeepWarmSchedule::decide(SysSeconds now, std::chrono::seconds lead) const {
  KeepWarmDecision decision;
  if (windows_.empty()) return decision;
  // Openings merge across this whole range, so a window that runs into the next one holds to
  // the end of both.
  const std::vector<WindowSpan> all = spans(now - days(2), now + days(9));
  for (const WindowSpan& span : all) {
    if (span.start <= now && now < span.end) {
      decision.open = span;
    } else if (span.start > now && !decision.next) {
      decision.next = span;
    }
  }
  if (decision.open) {
    decision.wake_now = true;
    decision.hold = decision.open;
  } else if (decision.next && now >= decision.next->start - lead) {
    decision.wake_now = true;
    decision.hold = decision.next;
  }
  return decision;
}

}  // namespace unshelver::core
