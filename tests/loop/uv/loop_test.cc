// Loop tests for io::Loop: the loop's life from init to a clean close, and what it does about a
// handle that nobody closed.
#include "uv/loop.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "uv/timer.h"

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;

TEST(LoopTest, RunsAndClosesCleanly) {
  Loop loop;
  ASSERT_EQ(0, loop.init_error());
  EXPECT_TRUE(loop.open());
  int fired = 0;
  {
    Timer timer(loop.get());
    timer.start(1ms, [&] { ++fired; });
    loop.run();
  }
  EXPECT_EQ(1, fired);
  std::vector<std::string> leaked;
  EXPECT_EQ(0,
            loop.close([&](uv_handle_t* handle) { leaked.emplace_back(uv_handle_type_name(handle->type)); }));
  EXPECT_TRUE(leaked.empty());
  EXPECT_FALSE(loop.open());
  EXPECT_EQ(0, loop.close());  // a second close does nothing
}

TEST(LoopTest, CloseRunsTheCloseCallbacksOfHandlesClosedAfterTheLastRun) {
  Loop loop;
  auto timer = std::make_unique<Timer>(loop.get());
  timer->start(1h, [] {});
  timer.reset();  // closed, but its close callback has not run yet
  EXPECT_EQ(0, loop.close([](uv_handle_t*) { ADD_FAILURE() << "nothing leaked"; }));
}

TEST(LoopTest, NamesAndForceClosesALeakedHandle) {
  Loop loop;
  uv_idle_t idle;  // outlives the loop: the force-close needs no memory of its own
  uv_idle_init(loop.get(), &idle);
  std::vector<std::string> leaked;
  const int rc =
      loop.close([&](uv_handle_t* handle) { leaked.emplace_back(uv_handle_type_name(handle->type)); });
  EXPECT_EQ(UV_EBUSY, rc);
  EXPECT_EQ(std::vector<std::string>{"idle"}, leaked);
  EXPECT_FALSE(loop.open());
}

TEST(LoopTest, DrainAndCloseServesABareLoop) {
  uv_loop_t loop;
  ASSERT_EQ(0, uv_loop_init(&loop));
  {
    Timer timer(&loop);
    timer.start(1ms, [] {});
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(0, Loop::drain_and_close(&loop));
}

TEST(LoopTest, DestructorClosesAnOpenLoop) {
  // Nothing to assert beyond a clean exit under the sanitizers: the destructor drains and closes.
  Loop loop;
  Timer timer(loop.get());
  timer.start(1ms, [] {});
  loop.run();
}

}  // namespace
}  // namespace unshelver::io
