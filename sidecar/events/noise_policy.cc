#include "events/noise_policy.h"

#include <algorithm>

namespace unshelver::core {

namespace {
// An IPv6 address with a zone fits in 64 bytes; anything longer is not an address.
constexpr std::size_t kClientBytes = 64;
constexpr std::string_view kOtherClients = "clients beyond the first ones tracked";

bool is_utf8_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

std::string window_key(const EventRecord& record, std::string_view client) {
  std::string key = record.action;
  key += '\n';
  key += record.actor;
  key += '\n';
  key += client;
  return key;
}
}  // namespace

EventClass web_event_class(std::string_view action) {
  return action == "login_failed" ? EventClass::kNoise : EventClass::kEssential;
}

void truncate_detail(std::string& detail, std::size_t limit) {
  if (detail.size() <= limit) return;
  const std::size_t total = detail.size();
  std::size_t cut = limit;
  // Step back to the start of the character that the limit falls in.
  while (cut > 0 && is_utf8_continuation(detail[cut])) --cut;
  detail.resize(cut);
  detail += "...[truncated: " + std::to_string(total) + " bytes in all]";
}

std::string_view noise_client(std::string_view detail) {
  constexpr std::string_view kFrom = " from ";
  const std::size_t found = detail.find(kFrom);
  if (found == std::string_view::npos) return {};
  std::string_view rest = detail.substr(found + kFrom.size());
  rest = rest.substr(0, std::min(rest.find(' '), rest.size()));
  return rest.size() <= kClientBytes ? rest : std::string_view();
}

bool NoiseAggregator::admit(const EventRecord& record, Clock::time_point now) {
  std::string client(noise_client(record.detail));
  std::string key = window_key(record, client);
  auto found = windows_.find(key);
  if (found == windows_.end() && windows_.size() >= settings_.max_clients) {
    // Full: the client shares one window per action and actor with every other untracked one.
    client.clear();
    key = window_key(record, client);
    found = windows_.find(key);
  }
  if (found != windows_.end()) {
    ++found->second.repeats;
    found->second.last_detail = record.detail;
    return false;
  }
  Window window;
  window.opened = now;
  window.first.backend = record.backend;
  window.first.instance_name = record.instance_name;
  window.first.action = record.action;
  window.first.actor = record.actor;
  window.client = std::move(client);
  windows_.emplace(std::move(key), std::move(window));
  return true;
}

std::vector<EventRecord> NoiseAggregator::take_summaries(Clock::time_point now, TimePoint wall_now,
                                                         bool all) {
  std::vector<EventRecord> summaries;
  for (auto it = windows_.begin(); it != windows_.end();) {
    const Window& window = it->second;
    if (!all && now - window.opened < settings_.window) {
      ++it;
      continue;
    }
    if (window.repeats > 0) {
      EventRecord summary = window.first;
      summary.at = wall_now;
      summary.count = window.repeats;
      const auto span = std::chrono::ceil<std::chrono::seconds>(
          std::min(now - window.opened, std::chrono::duration_cast<Clock::duration>(settings_.window)));
      summary.detail = std::to_string(window.repeats) + " more in " + std::to_string(span.count()) +
                       " s from " + (window.client.empty() ? std::string(kOtherClients) : window.client) +
                       " (summarised); the last: " + window.last_detail;
      summaries.push_back(std::move(summary));
    }
    it = windows_.erase(it);
  }
  return summaries;
}

std::optional<NoiseAggregator::Clock::time_point> NoiseAggregator::next_end() const {
  std::optional<Clock::time_point> next;
  for (const auto& [key, window] : windows_) {
    const Clock::time_point end = window.opened + settings_.window;
    if (!next || end < *next) next = end;
  }
  return next;
}

}  // namespace unshelver::core
