// PageCache: the public status document and the launcher page, kept per backend, so that a state
// change costs the work of the backend that changed, not of the whole fleet.
//
// update_from() reads, whenever the application's revision moved, the views of the backends whose
// own revision moved since its last reading (Controller::changed_page_views), and again those whose
// view moves without a revision (moves_without_revision): a change of one backend reads one view.
// A backend whose view is the same as before (same_for_pages) keeps its public JSON and its
// launcher section; the others are written again. Each piece is an immutable shared
// string: an answer is a list of slices of the pieces (core::SharedText), which the server writes
// with one writev and keeps until written, so a request copies nothing and allocates no document,
// and a piece replaced while an answer is on its way lives until that answer is out. The launcher
// pieces are split once, when rendered, at the places of the visitor's form token. What the
// documents hold is exactly what rendering them whole from the same views would give
// (tests/unit/web/page_cache_test.cc).
//
// Pure: no loop, no clock of its own (update() is told the time for the launcher's time texts).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/shared_text.h"
#include "base/template.h"
#include "web/controller.h"

namespace unshelver::web {

// What the public may see of one backend's status entry (with its page fields): no cloud
// messages, addresses, upstreams or who asked for what (those can hold client addresses); the
// state, its times and the url.
nlohmann::json public_backend(const nlohmann::json& backend);

// Whether two views of one backend show the same on the public pages and in the status entry:
// every field but `history` (beyond its estimate) and `savings`, which page views leave out;
// times less than a millisecond apart are the same moment (the wall clock of a monotonic time
// moves by nanoseconds between two readings).
bool same_for_pages(const BackendView& a, const BackendView& b);

// The backend's status entry with the page fields (web/page_model.h) and its wake_action: what
// the waiting page and its status endpoint read, written from one view.
nlohmann::json page_entry_of(const BackendView& view);

class PageCache {
 public:
  // `launcher`: the launcher template, or nullptr when missing; `form_token_marker`: what the
  // launcher shows in place of each visitor's form token (replaced per request).
  PageCache(const core::Template* launcher, std::string title, std::string form_token_marker);

  // Brings the cache to the controller's revision, reading only the views that may have changed
  // (see the top).
  void update_from(const Controller& controller, std::chrono::system_clock::time_point now);
  // Brings the cache to `revision` for a fleet of `count` backends: `changed` holds the views of
  // the backends that may have changed since the last update (ascending index); the others keep
  // their pieces. The first update, and one with another count (a reload), holds every backend's.
  void update(std::uint64_t revision, std::size_t count, std::vector<IndexedView> changed,
              std::chrono::system_clock::time_point now);
  // The same with every backend's view (configuration order).
  void update(std::uint64_t revision, std::vector<BackendView> views,
              std::chrono::system_clock::time_point now);

  // The public /api/status document (web::public_status of the page entries), dumped: slices of
  // the kept pieces, so no joined copy is made or kept besides them.
  core::SharedText public_status() const;
  // The launcher page with `form_token` (the visitor's) where the marker is, the same way.
  core::SharedText launcher(std::string_view form_token) const;

  // For tests: how many backends' pieces were written again so far.
  std::uint64_t backends_rendered() const { return backends_rendered_; }

 private:
  // A piece of the launcher without the form token marker, and where the token goes in it.
  struct Spliced {
    std::string text;
    std::vector<std::size_t> token_at;  // offsets in `text`, ascending
  };
  struct Backend {
    BackendView view;
    // Indented for its place in the document.
    std::shared_ptr<const std::string> public_json;
    // Its section of the launcher; null when the launcher is drawn whole.
    std::shared_ptr<const Spliced> launcher;
  };
  void render_backend(std::size_t index, std::chrono::system_clock::time_point now);
  std::shared_ptr<const Spliced> splice(std::string_view text) const;
  // Appends `piece` (kept) to `text`, with `token` at its places.
  static void append(core::SharedText& text, const std::shared_ptr<const Spliced>& piece,
                     std::string_view token);

  const core::Template* launcher_template_;
  std::string title_;
  std::string form_token_marker_;
  bool split_launcher_ = false;  // the launcher has a top-level {{#backends}}: drawn per backend
  static constexpr std::uint64_t kNever = UINT64_MAX;  // no update yet
  std::uint64_t revision_ = kNever;
  std::vector<Backend> backends_;
  // Per backend, its revision when update_from() last read its view (Controller::changed_page_views).
  std::vector<std::uint64_t> seen_;
  // The launcher's data for the part of the page around the backends' sections: the title, the
  // marker and one empty object per backend (so {{^backends}} reads as it would; the sections
  // themselves are kept rendered, and only their text is kept). A template without a top-level
  // {{#backends}} is drawn whole, from every backend's entry with its time texts.
  nlohmann::json launcher_data_;
  // The launcher around its backends' sections.
  std::shared_ptr<const Spliced> frame_before_;
  std::shared_ptr<const Spliced> frame_after_;
  // The status document's end, after the backends: its revision and title.
  std::shared_ptr<const std::string> status_end_;
  std::uint64_t backends_rendered_ = 0;
};

}  // namespace unshelver::web
