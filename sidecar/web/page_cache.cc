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

void PageCache::update_from(const Controller& controller, std::chrono::system_clock::time_point now) {
  const std::uint64_t revision = controller.revision();
  if (revision == revision_) return;
  // Whatever was not read into this cache is read now (the first update).
  if (seen_.size() != backends_.size()) seen_.clear();
  std::vector<IndexedView> changed = controller.changed_page_views(seen_);
  if (seen_.size() != backends_.size() && changed.size() != seen_.size()) {
    // The fleet changed its size since the last reading: every view is read again.
    seen_.clear();
    changed = controller.changed_page_views(seen_);
  }
  for (const IndexedView& each : changed) {
    if (moves_without_revision(each.view)) seen_[each.index] = 0;
  }
  update(revision, seen_.size(), std::move(changed), now);
}

void PageCache::update(std::uint64_t revision, std::vector<BackendView> views,
                       std::chrono::system_clock::time_point now) {
  std::vector<IndexedView> changed;
  changed.reserve(views.size());
  for (std::size_t i = 0; i < views.size(); ++i) changed.push_back(IndexedView{i, std::move(views[i])});
  const std::size_t count = changed.size();
  update(revision, count, std::move(changed), now);
}

void PageCache::update(std::uint64_t revision, std::size_t count, std::vector<IndexedView> changed,
                       std::chrono::system_clock::time_point now) {
  if (revision == revision_) return;
  const bool all = revision_ == kNever || count != backends_.size();
  revision_ = revision;
  if (all) {
    backends_.assign(count, Backend{});
    launcher_data_["backends"] = json::array();
    for (std::size_t i = 0; i < count; ++i) launcher_data_["backends"].push_back(json::object());
    if (split_launcher_) {
      core::Template::Split frame = launcher_template_->render_split(launcher_data_, kList);
      frame_before_ = splice(frame.before);
      frame_after_ = splice(frame.after);
    }
  }
  // As public_status(document).dump(2) writes what follows the backends.
  status_end_ = std::make_shared<const std::string>(std::string(count == 0 ? "]" : "\n  ]") +
                                                    ",\n  \"revision\": " + std::to_string(revision_) +
                                                    ",\n  \"title\": " + json(title_).dump() + "\n}\n");
  for (IndexedView& each : changed) {
    if (each.index >= count) continue;
    Backend& backend = backends_[each.index];
    if (backend.public_json != nullptr && same_for_pages(each.view, backend.view)) continue;
    backend.view = std::move(each.view);
    render_backend(each.index, now);
  }
  // A backend that no view was given for (a caller that broke the contract above) shows as an
  // empty entry rather than leaving a hole in the documents.
  if (all) {
    for (std::size_t i = 0; i < count; ++i) {
      if (backends_[i].public_json == nullptr) render_backend(i, now);
    }
  }
}

json page_entry_of(const BackendView& view) {
  json entry = backend_json(view);
  add_page_fields(view, entry);
  entry["wake_action"] = "/wake/" + view.name;
  return entry;
}

void PageCache::render_backend(std::size_t index, std::chrono::system_clock::time_point now) {
  Backend& backend = backends_[index];
  ++backends_rendered_;
  json item = page_entry_of(backend.view);
  // Two levels deep: in the document's object, in its "backends" array.
  backend.public_json = std::make_shared<const std::string>(core::indented_json(public_backend(item), 2));
  // Without its script the launcher shows these; the script replaces them with relative times in
  // the reader's time zone.
  add_time_texts(item, now);
  if (split_launcher_) {
    backend.launcher = splice(launcher_template_->render_item(launcher_data_, kList, item));
  } else {
    launcher_data_["backends"][index] = std::move(item);
  }
}

std::shared_ptr<const PageCache::Spliced> PageCache::splice(std::string_view text) const {
  Spliced spliced;
  spliced.text.reserve(text.size());
  std::string_view rest = text;
  for (std::size_t at = rest.find(form_token_marker_); at != std::string_view::npos;
       at = rest.find(form_token_marker_)) {
    spliced.text.append(rest.substr(0, at));
    spliced.token_at.push_back(spliced.text.size());
    rest.remove_prefix(at + form_token_marker_.size());
  }
  spliced.text.append(rest);
  return std::make_shared<const Spliced>(std::move(spliced));
}

void PageCache::append(core::SharedText& text, const std::shared_ptr<const Spliced>& piece,
                       std::string_view token) {
  std::string_view rest = piece->text;
  std::size_t done = 0;
  for (std::size_t at : piece->token_at) {
    text.append(rest.substr(done, at - done));
    text.append(token);
    done = at;
  }
  text.append(rest.substr(done));
  text.keep(piece);
}

core::SharedText PageCache::public_status() const {
  // As public_status(document).dump(2) writes it: the keys in order, two spaces a level. The
  // separators are literals (static storage); each backend's piece is kept with the answer.
  core::SharedText text;
  if (status_end_ == nullptr) return text;  // No update yet.
  text.reserve(2 * backends_.size() + 2);
  text.append("{\n  \"backends\": [");
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    text.append(i == 0 ? std::string_view("\n    ") : std::string_view(",\n    "));
    text.append(*backends_[i].public_json);
    text.keep(backends_[i].public_json);
  }
  text.append(*status_end_);
  text.keep(status_end_);
  return text;
}

core::SharedText PageCache::launcher(std::string_view form_token) const {
  core::SharedText text;
  if (launcher_template_ == nullptr) {
    text.append("launcher.html is missing\n");
    return text;
  }
  if (!split_launcher_) {
    text.append(text.own(
        core::replace_all(launcher_template_->render(launcher_data_), form_token_marker_, form_token)));
    return text;
  }
  if (frame_before_ == nullptr) return text;  // No update yet.
  // The visitor's token, in one small buffer of the answer's own, goes in every place of it.
  const std::string_view token = text.own(std::string(form_token));
  text.reserve(4 * backends_.size() + 8);
  append(text, frame_before_, token);
  for (const Backend& backend : backends_) append(text, backend.launcher, token);
  append(text, frame_after_, token);
  return text;
}

}  // namespace unshelver::web
