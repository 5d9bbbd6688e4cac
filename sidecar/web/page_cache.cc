#include "web/page_cache.h"

#include <tuple>

#include "base/json_text.h"
#include "base/text.h"
#include "web/page_model.h"

namespace unshelver::web {

using nlohmann::json;

nlohmann::json public_backend(const nlohmann::json& backend) {
  // The state and its times, and what the pages make of them (web/page_model.h); the estimate is
  // the backend's own history of wakes, no one's address or words.
  static constexpr const char* kPublicFields[] = {"name",
                                                  "label",
                                                  "description",
                                                  "state",
                                                  "since",
                                                  "last_activity",
                                                  "idle_deadline",
                                                  "idle_timeout_seconds",
                                                  "url",
                                                  "error_reason",
                                                  "desired",
                                                  "wake_started_at",
                                                  "wake_estimate_seconds",
                                                  "state_label",
                                                  "explanation",
                                                  "can_wake",
                                                  "is_ready",
                                                  "is_busy",
                                                  "is_error",
                                                  "auto_refresh",
                                                  "steps",
                                                  "step",
                                                  "hint",
                                                  "wake_button",
                                                  "idle_timeout_text"};
  json shown = json::object();
  for (const char* key : kPublicFields) {
    if (backend.contains(key)) shown[key] = backend[key];
  }
  // The cloud's own error text is for admins (it can carry a traceback and internal host names):
  // the public `error` is the classified summary (web/page_model.h).
  shown["error"] = backend.value("error_summary", "");
  // How long a wake takes, from the event log (events/wake_history.h): seconds, or null. The
  // waiting page and the launcher show it; the history it comes from is for admins only.
  shown["wake_estimate_seconds"] = backend.value("wake_estimate_seconds", json());
  return shown;
}

namespace {
// Every field of a view that a page, the status entry or the gate reads, but the times, the pin
// (an AwakeHold), `history` and `savings`. A field added to BackendView must be added here or to
// same_times below, or a change of it alone would leave the pages stale.
auto exact_fields(const BackendView& v) {
  return std::tie(v.name, v.label, v.description, v.provider, v.state, v.routing, v.desired_awake,
                  v.desired_by, v.desired_reason, v.idle_timeout, v.url, v.upstream, v.cloud_status, v.error,
                  v.observe_error, v.coordination, v.action_in_flight, v.requests_in_flight,
                  v.wake_on_request, v.dry_run, v.gate, v.activity_lines, v.ignored_lines,
                  v.wake_estimate_seconds, v.awake_reason, v.scheduled, v.wake_lead, v.prewarm_used,
                  v.prewarm_cap);
}

// The reconciler keeps monotonic times, shown on the wall clock as it reads at each view
// (core::ClockReading::wall_of): the same moment comes out a few tens of nanoseconds apart from
// one view to the next. A moment that moved by less than a millisecond is the same moment.
constexpr auto kSameMoment = std::chrono::milliseconds(1);

bool same_time(core::TimePoint a, core::TimePoint b) {
  return (a > b ? a - b : b - a) < kSameMoment;
}

bool same_time(const std::optional<core::TimePoint>& a, const std::optional<core::TimePoint>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || same_time(*a, *b);
}

bool same_times(const BackendView& a, const BackendView& b) {
  return same_time(a.since, b.since) && same_time(a.wake_started_at, b.wake_started_at) &&
         same_time(a.last_activity, b.last_activity) && same_time(a.idle_deadline, b.idle_deadline) &&
         same_time(a.observed_at, b.observed_at) && same_time(a.held_until, b.held_until) &&
         same_time(a.window_until, b.window_until) && same_time(a.next_window, b.next_window) &&
         same_time(a.next_prewarm, b.next_prewarm);
}

bool same_pin(const std::optional<core::AwakeHold>& a, const std::optional<core::AwakeHold>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return std::tie(a->reason, a->actor, a->detail) == std::tie(b->reason, b->actor, b->detail) &&
         same_time(a->since, b->since) && same_time(a->until, b->until);
}

constexpr std::string_view kList = "backends";
}  // namespace

bool same_for_pages(const BackendView& a, const BackendView& b) {
  return exact_fields(a) == exact_fields(b) && same_times(a, b) && same_pin(a.pin, b.pin);
}

PageCache::PageCache(const core::Template* launcher, std::string title, std::string form_token_marker)
    : launcher_template_(launcher),
      title_(std::move(title)),
      form_token_marker_(std::move(form_token_marker)) {
  launcher_data_ = {{"title", title_}, {"form_token", form_token_marker_}, {"backends", json::array()}};
  split_launcher_ =
      launcher_template_ != nullptr && launcher_template_->render_split(launcher_data_, kList).found;
}

void PageCache::update(std::uint64_t revision, std::vector<BackendView> views,
                       std::chrono::system_clock::time_point now) {
  if (revision == revision_) return;
  const bool all = revision_ == kNever || views.size() != backends_.size();
  revision_ = revision;
  if (all) {
    backends_.assign(views.size(), Backend{});
    launcher_data_["backends"] = json::array();
    for (std::size_t i = 0; i < views.size(); ++i) launcher_data_["backends"].push_back(json::object());
    if (split_launcher_) frame_ = launcher_template_->render_split(launcher_data_, kList);
  }
  for (std::size_t i = 0; i < views.size(); ++i) {
    if (!all && same_for_pages(views[i], backends_[i].view)) continue;
    backends_[i].view = std::move(views[i]);
    render_backend(i, now);
  }
}

namespace {
json page_entry_of(const BackendView& view) {
  json entry = backend_json(view);
  add_page_fields(view, entry);
  entry["wake_action"] = "/wake/" + view.name;
  return entry;
}
}  // namespace

void PageCache::render_backend(std::size_t index, std::chrono::system_clock::time_point now) {
  Backend& backend = backends_[index];
  ++backends_rendered_;
  json item = page_entry_of(backend.view);
  // Two levels deep: in the document's object, in its "backends" array.
  backend.public_json = core::indented_json(public_backend(item), 2);
  // Without its script the launcher shows these; the script replaces them with relative times in
  // the reader's time zone.
  add_time_texts(item, now);
  if (split_launcher_) {
    backend.launcher = launcher_template_->render_item(launcher_data_, kList, item);
  } else {
    launcher_data_["backends"][index] = std::move(item);
  }
}

std::string PageCache::public_status() const {
  // As public_status(document).dump(2) writes it: the keys in order, two spaces a level.
  std::size_t size = 64 + title_.size();
  for (const Backend& backend : backends_) size += backend.public_json.size() + 8;
  std::string text;
  text.reserve(size);
  text += "{\n  \"backends\": [";
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    text += i == 0 ? "\n    " : ",\n    ";
    text += backends_[i].public_json;
  }
  text += backends_.empty() ? "]" : "\n  ]";
  text += ",\n  \"revision\": " + std::to_string(revision_);
  text += ",\n  \"title\": " + json(title_).dump() + "\n}\n";
  return text;
}

std::string PageCache::launcher(std::string_view form_token) const {
  if (launcher_template_ == nullptr) return "launcher.html is missing\n";
  if (!split_launcher_)
    return core::replace_all(launcher_template_->render(launcher_data_), form_token_marker_, form_token);
  std::size_t size = frame_.before.size() + frame_.after.size();
  for (const Backend& backend : backends_) size += backend.launcher.size() + form_token.size();
  std::string text;
  text.reserve(size);
  // Each piece holds the marker where the visitor's token goes: spliced piece by piece, so the
  // page is written once per request, not joined and then copied with the token in.
  auto append = [&](std::string_view piece) {
    for (std::size_t at = piece.find(form_token_marker_); at != std::string_view::npos;
         at = piece.find(form_token_marker_)) {
      text.append(piece.substr(0, at)).append(form_token);
      piece.remove_prefix(at + form_token_marker_.size());
    }
    text.append(piece);
  };
  append(frame_.before);
  for (const Backend& backend : backends_) append(backend.launcher);
  append(frame_.after);
  return text;
}

const BackendView* PageCache::view(std::string_view name) const {
  for (const Backend& backend : backends_) {
    if (backend.view.name == name) return &backend.view;
  }
  return nullptr;
}

nlohmann::json PageCache::page_entry(std::string_view name) const {
  const BackendView* found = view(name);
  return found != nullptr ? page_entry_of(*found) : json::object();
}

}  // namespace unshelver::web
