// FirstRead: the first observation waits for resolve()'s read rather than reading again.
#include "backend/first_read.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace unshelver::core {
namespace {

TEST(FirstReadTest, ObservationsJoinTheRunningReadAndAllGetItsAnswer) {
  FirstRead<std::string> read;
  std::vector<std::string> answers;
  auto record = [&](const Result<std::string>& item, bool) { answers.push_back(item ? *item : "error"); };
  EXPECT_FALSE(read.join(record)) << "no read runs: the caller reads itself";
  read.begin();
  EXPECT_TRUE(read.join(record));
  EXPECT_TRUE(read.join(record));
  EXPECT_TRUE(answers.empty()) << "never inside join()";
  read.finish(std::string("server-1"), false);
  EXPECT_EQ(answers, (std::vector<std::string>{"server-1", "server-1"}));
  EXPECT_FALSE(read.running());
  EXPECT_FALSE(read.join(record)) << "later observations read for themselves";
}

TEST(FirstReadTest, AFailedReadIsPassedOnWithWhetherItIsDefinitive) {
  FirstRead<std::string> read;
  read.begin();
  std::optional<bool> definitive;
  std::string message;
  read.join([&](const Result<std::string>& item, bool is_definitive) {
    ASSERT_FALSE(item);
    message = item.error().message;
    definitive = is_definitive;
  });
  read.finish(Error{"no server named gpu-box"}, true);
  EXPECT_EQ(message, "no server named gpu-box");
  EXPECT_EQ(definitive, true);
}

TEST(FirstReadTest, CancelledWaitersAreNeverCalled) {
  FirstRead<std::string> read;
  read.begin();
  int calls = 0;
  read.join([&](const Result<std::string>&, bool) { ++calls; });
  read.cancel();
  read.finish(std::string("late"), false);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace unshelver::core
