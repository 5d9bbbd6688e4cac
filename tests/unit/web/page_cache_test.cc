// Unit tests for the page cache: the documents joined from per-backend pieces are exactly the
// documents rendered whole, and a change of one backend writes that backend's pieces only.
#include "web/page_cache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/json_text.h"
#include "base/text.h"
#include "web/page_model.h"

namespace unshelver::web {
namespace {

using nlohmann::json;

core::Template launcher_template() {
  std::ifstream file(std::string(UNSHELVER_SOURCE_DIR) + "/templates/launcher.html");
  std::stringstream text;
  text << file.rdbuf();
  auto compiled = core::Template::compile(text.str(), "launcher.html");
  EXPECT_TRUE(compiled.ok());
  return compiled.ok() ? std::move(compiled.value()) : core::Template();
}

std::vector<BackendView> fleet(int size) {
  std::vector<BackendView> views;
  for (int i = 0; i < size; ++i) {
    BackendView view;
    view.name = "b" + std::to_string(i);
    view.label = "Backend <" + std::to_string(i) + ">";
    view.state = i % 2 == 0 ? core::BackendState::kAsleep : core::BackendState::kReady;
    view.since = core::TimePoint(std::chrono::seconds(1'700'000'000 + i));
    view.url = "http://" + view.name + ".localhost/";
    view.idle_timeout = std::chrono::seconds(900);
    view.error = "secret traceback";
    views.push_back(view);
  }
  return views;
}

json entry_of(const BackendView& view) {
  json entry = backend_json(view);
  add_page_fields(view, entry);
  entry["wake_action"] = "/wake/" + view.name;
  return entry;
}

// The documents as the web layer rendered them whole before the cache (routes.cc's history).
std::string whole_public_status(const std::vector<BackendView>& views, std::uint64_t revision,
                                const std::string& title) {
  json backends = json::array();
  for (const BackendView& view : views) backends.push_back(public_backend(entry_of(view)));
  return json{{"backends", backends}, {"revision", revision}, {"title", title}}.dump(2) + "\n";
}

std::string whole_launcher(const core::Template& page, const std::vector<BackendView>& views,
                           const std::string& title, std::chrono::system_clock::time_point now) {
  json data = {{"title", title}, {"form_token", "TOKEN"}, {"backends", json::array()}};
  for (const BackendView& view : views) {
    json item = entry_of(view);
    add_time_texts(item, now);
    data["backends"].push_back(item);
  }
  return page.render(data);
}

TEST(PageCacheTest, JoinedDocumentsEqualTheWholeRender) {
  const core::Template page = launcher_template();
  const auto now = std::chrono::system_clock::now();
  for (int size : {0, 1, 5}) {
    PageCache cache(&page, "Fleet \"1\"", "MARKER");
    const std::vector<BackendView> views = fleet(size);
    cache.update(7, views, now);
    EXPECT_EQ(cache.public_status().joined(), whole_public_status(views, 7, "Fleet \"1\"")) << size;
    EXPECT_EQ(cache.launcher("TOKEN").joined(), whole_launcher(page, views, "Fleet \"1\"", now)) << size;
    EXPECT_EQ(cache.public_status().joined().find("secret traceback"), std::string::npos);
  }
}

TEST(PageCacheTest, AChangeRendersThatBackendOnly) {
  const core::Template page = launcher_template();
  const auto now = std::chrono::system_clock::now();
  PageCache cache(&page, "Fleet", "MARKER");
  std::vector<BackendView> views = fleet(50);
  cache.update(1, views, now);
  EXPECT_EQ(cache.backends_rendered(), 50u);
  // The same revision again: nothing to do, whatever is passed.
  cache.update(1, {}, now);
  EXPECT_EQ(cache.backends_rendered(), 50u);
  // A new revision with nothing changed for the pages: no render, but the document's revision.
  cache.update(2, views, now);
  EXPECT_EQ(cache.backends_rendered(), 50u);
  EXPECT_EQ(cache.public_status().joined(), whole_public_status(views, 2, "Fleet"));

  views[17].state = core::BackendState::kWaking;
  views[17].desired_awake = true;
  cache.update(3, views, now);
  EXPECT_EQ(cache.backends_rendered(), 51u);
  EXPECT_EQ(cache.public_status().joined(), whole_public_status(views, 3, "Fleet"));
  EXPECT_EQ(cache.launcher("TOKEN").joined(), whole_launcher(page, views, "Fleet", now));
  ASSERT_NE(cache.view("b17"), nullptr);
  EXPECT_EQ(cache.view("b17")->state, core::BackendState::kWaking);
  EXPECT_EQ(cache.page_entry("b17").value("state", ""), "waking");
  EXPECT_EQ(cache.page_entry("b17").value("wake_action", ""), "/wake/b17");
  EXPECT_EQ(cache.page_entry("nope"), json::object());
  EXPECT_EQ(cache.view("nope"), nullptr);

  // Fewer or more backends (a reload): everything again.
  views.pop_back();
  cache.update(4, views, now);
  EXPECT_EQ(cache.backends_rendered(), 51u + 49u);
  EXPECT_EQ(cache.public_status().joined(), whole_public_status(views, 4, "Fleet"));
}

// An answer is slices of the cache's pieces: one still being written when the cache moves on
// keeps the pieces it points into, and still reads as the document of its revision.
TEST(PageCacheTest, AnAnswerKeepsItsPiecesPastAnUpdate) {
  const core::Template page = launcher_template();
  const auto now = std::chrono::system_clock::now();
  PageCache cache(&page, "Fleet", "MARKER");
  std::vector<BackendView> views = fleet(20);
  cache.update(1, views, now);
  const core::SharedText status = cache.public_status();
  const core::SharedText launcher = cache.launcher("TOKEN");
  const std::vector<BackendView> before = views;
  for (BackendView& view : views) view.state = core::BackendState::kWaking;
  cache.update(2, views, now);
  cache.update(3, fleet(3), now);  // A reload: every piece replaced.
  EXPECT_EQ(status.joined(), whole_public_status(before, 1, "Fleet"));
  EXPECT_EQ(launcher.joined(), whole_launcher(page, before, "Fleet", now));
  EXPECT_EQ(cache.public_status().joined(), whole_public_status(fleet(3), 3, "Fleet"));
  // No slice per byte: about one per piece and token place.
  EXPECT_LE(status.slices().size(), 2u * 20u + 2u);
  EXPECT_EQ(status.size(), status.joined().size());
}

// The visitor's token goes where the marker was, in the frame and in every backend's section,
// whatever its length.
TEST(PageCacheTest, TheTokenGoesInEveryPlaceOfTheMarker) {
  const core::Template page = launcher_template();
  const auto now = std::chrono::system_clock::now();
  PageCache cache(&page, "Fleet", "MARKER");
  const std::vector<BackendView> views = fleet(4);
  cache.update(1, views, now);
  const std::string whole = whole_launcher(page, views, "Fleet", now);
  ASSERT_NE(whole.find("TOKEN"), std::string::npos);
  for (const std::string token : {"", "x", "a-much-longer-token-than-the-marker.0123456789"}) {
    EXPECT_EQ(cache.launcher(token).joined(), core::replace_all(whole, "TOKEN", token)) << token;
  }
}

TEST(PageCacheTest, EveryPageFieldCountsAsAChange) {
  const BackendView base = fleet(1).front();
  auto differs = [&base](auto change) {
    BackendView other = base;
    change(other);
    return !same_for_pages(base, other);
  };
  EXPECT_FALSE(differs([](BackendView&) {}));
  EXPECT_TRUE(differs([](BackendView& v) { v.last_activity = core::TimePoint(std::chrono::seconds(5)); }));
  EXPECT_TRUE(differs([](BackendView& v) { v.requests_in_flight = 2; }));
  EXPECT_TRUE(differs([](BackendView& v) { v.wake_estimate_seconds = 12.5; }));
  EXPECT_TRUE(differs([](BackendView& v) { v.gate = GateView{}; }));
  EXPECT_TRUE(differs([](BackendView& v) { v.pin = core::AwakeHold{}; }));
  EXPECT_TRUE(differs([](BackendView& v) { v.routing = "backend"; }));
  // The wall clock of a monotonic time moves by nanoseconds from one reading to the next.
  EXPECT_FALSE(differs([](BackendView& v) { v.since += std::chrono::nanoseconds(40); }));
  EXPECT_TRUE(differs([](BackendView& v) { v.since += std::chrono::milliseconds(2); }));
  // What page views leave out is no change for the pages.
  EXPECT_FALSE(differs([](BackendView& v) { v.savings = json{{"x", 1}}; }));
}

TEST(PageCacheTest, IndentedJsonMatchesANestedDump) {
  const json value = {{"a", json::array({1, "x\ny"})}, {"b", json::object()}};
  const json document = {{"list", json::array({value})}};
  const std::string whole = document.dump(2);
  EXPECT_NE(whole.find(core::indented_json(value, 2)), std::string::npos);
}

}  // namespace
}  // namespace unshelver::web
