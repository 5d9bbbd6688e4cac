// Unit tests for the page cache: the documents joined from per-backend pieces are exactly the
// documents rendered whole, a change of one backend writes that backend's pieces only, and
// update_from reads only the views whose backend's revision moved (and those that move without).
#include "web/page_cache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
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
  // The waiting page's entry is written from the one view it reads (web::page_entry_of).
  EXPECT_EQ(page_entry_of(views[17]).value("state", ""), "waking");
  EXPECT_EQ(page_entry_of(views[17]).value("wake_action", ""), "/wake/b17");

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

// A controller that keeps a revision per backend, as the application does: changed_page_views
// reads only the views whose revision moved, and counts the views it read.
class FleetController final : public Controller {
 public:
  explicit FleetController(std::vector<BackendView> fleet)
      : views(std::move(fleet)), revisions(views.size(), 1) {}

  // A change of backend `index` that its revision marks.
  template <typename Edit>
  void change(std::size_t index, Edit edit) {
    edit(views[index]);
    revisions[index] = ++revision_value;
  }

  std::uint64_t revision() const override { return revision_value; }
  std::vector<BackendView> backends() const override { return views; }
  std::vector<IndexedView> changed_page_views(std::vector<std::uint64_t>& seen) const override {
    seen.resize(views.size(), 0);
    std::vector<IndexedView> changed;
    for (std::size_t i = 0; i < views.size(); ++i) {
      if (seen[i] == revisions[i]) continue;
      seen[i] = revisions[i];
      changed.push_back(IndexedView{i, views[i]});
      ++views_read;
    }
    return changed;
  }
  json status() const override { return json::object(); }
  RequestOutcome wake(const std::string&, const std::string&, const std::string&) override {
    return RequestOutcome::kUnknownBackend;
  }
  RequestOutcome shelve(const std::string&, const std::string&, const std::string&) override {
    return RequestOutcome::kUnknownBackend;
  }
  void record_event(const std::string&, const std::string&, const std::string&) override {}
  std::string ignore_reason(const io::HttpRequest&) const override { return ""; }
  void metrics(core::MetricsPage&) const override {}
  std::string backend_for_host(std::string_view) const override { return ""; }
  void request_started(const std::string&, bool) override {}
  json events(std::optional<std::uint64_t>, const std::string&, std::size_t) const override { return {}; }
  void wait_for_events(std::uint64_t, std::chrono::milliseconds, std::function<void()>) override {}

  std::vector<BackendView> views;
  std::vector<std::uint64_t> revisions;
  std::uint64_t revision_value = 1;
  mutable std::size_t views_read = 0;
};

TEST(PageCacheTest, UpdateFromReadsTheChangedBackendsOnly) {
  const core::Template page = launcher_template();
  const auto now = std::chrono::system_clock::now();
  PageCache cache(&page, "Fleet", "MARKER");
  FleetController controller(fleet(100));
  cache.update_from(controller, now);
  EXPECT_EQ(controller.views_read, 100u);
  EXPECT_EQ(cache.public_status().joined(), whole_public_status(controller.views, 1, "Fleet"));
  // The same revision: nothing is read.
  cache.update_from(controller, now);
  EXPECT_EQ(controller.views_read, 100u);

  controller.change(17, [](BackendView& v) {
    v.state = core::BackendState::kWaking;
    v.desired_awake = true;
  });
  cache.update_from(controller, now);
  EXPECT_EQ(controller.views_read, 101u);
  EXPECT_EQ(cache.backends_rendered(), 101u);
  EXPECT_EQ(cache.public_status().joined(), whole_public_status(controller.views, 2, "Fleet"));
  EXPECT_EQ(cache.launcher("TOKEN").joined(), whole_launcher(page, controller.views, "Fleet", now));

  // A revision that moved for something no page shows (the application's alone): nothing is read,
  // and the document says the new revision.
  ++controller.revision_value;
  cache.update_from(controller, now);
  EXPECT_EQ(controller.views_read, 101u);
  EXPECT_EQ(cache.public_status().joined(), whole_public_status(controller.views, 3, "Fleet"));
}

// While requests are in flight, the last activity moves without a revision: such a backend is
// read again at every update, and no longer once it is idle.
TEST(PageCacheTest, ABusyBackendIsReadAtEveryUpdate) {
  const core::Template page = launcher_template();
  const auto now = std::chrono::system_clock::now();
  PageCache cache(&page, "Fleet", "MARKER");
  FleetController controller(fleet(10));
  cache.update_from(controller, now);
  controller.change(3, [](BackendView& v) { v.requests_in_flight = 2; });
  cache.update_from(controller, now);
  EXPECT_EQ(controller.views_read, 11u);

  controller.views[3].last_activity = core::TimePoint(std::chrono::seconds(1'700'000'123));
  controller.change(5, [](BackendView& v) { v.desired_awake = true; });
  cache.update_from(controller, now);
  EXPECT_EQ(controller.views_read, 13u);  // 5, and 3 again
  EXPECT_EQ(cache.public_status().joined(), whole_public_status(controller.views, 3, "Fleet"));

  controller.change(3, [](BackendView& v) { v.requests_in_flight = 0; });
  cache.update_from(controller, now);
  EXPECT_EQ(controller.views_read, 14u);
  controller.change(5, [](BackendView& v) { v.desired_awake = false; });
  cache.update_from(controller, now);
  EXPECT_EQ(controller.views_read, 15u);  // 5 alone
  EXPECT_EQ(cache.public_status().joined(), whole_public_status(controller.views, 5, "Fleet"));
}

// Whatever backends change, and however many at once, the documents stay exactly the whole render
// of the views as they are.
TEST(PageCacheTest, ChangesOfAnyBackendsKeepTheDocumentsWhole) {
  const core::Template page = launcher_template();
  const auto now = std::chrono::system_clock::now();
  PageCache cache(&page, "Fleet", "MARKER");
  FleetController controller(fleet(30));
  std::mt19937 random(20);  // NOLINT(cert-msc32-c,cert-msc51-cpp): the same sequence every run
  const std::vector<std::function<void(BackendView&)>> edits = {
      [](BackendView& v) { v.state = core::BackendState::kBooting; },
      [](BackendView& v) { v.state = core::BackendState::kError; },
      [](BackendView& v) { v.desired_awake = !v.desired_awake; },
      [](BackendView& v) { v.last_activity = v.since + std::chrono::seconds(90); },
      [](BackendView& v) { v.idle_deadline = v.since + std::chrono::minutes(20); },
      [](BackendView& v) { v.wake_estimate_seconds = 42.5; },
      [](BackendView& v) { v.coordination = Coordination::kHandingOver; },
      [](BackendView& v) { v.error = "quota exceeded"; },
      [](BackendView& v) { v.requests_in_flight = 1; },
      [](BackendView& v) { v.requests_in_flight = 0; },
  };
  cache.update_from(controller, now);
  for (int step = 0; step < 200; ++step) {
    const int changes = static_cast<int>(random() % 3);
    for (int i = 0; i < changes; ++i) {
      controller.change(random() % controller.views.size(), edits[random() % edits.size()]);
    }
    cache.update_from(controller, now);
    ASSERT_EQ(cache.public_status().joined(),
              whole_public_status(controller.views, controller.revision_value, "Fleet"))
        << step;
    ASSERT_EQ(cache.launcher("TOKEN").joined(), whole_launcher(page, controller.views, "Fleet", now)) << step;
  }
  // Far fewer views read than the fleet's at every step.
  EXPECT_LT(controller.views_read, 30u + 200u * 3u + 200u * 30u / 4u);
}

TEST(PageCacheTest, IndentedJsonMatchesANestedDump) {
  const json value = {{"a", json::array({1, "x\ny"})}, {"b", json::object()}};
  const json document = {{"list", json::array({value})}};
  const std::string whole = document.dump(2);
  EXPECT_NE(whole.find(core::indented_json(value, 2)), std::string::npos);
}

}  // namespace
}  // namespace unshelver::web
