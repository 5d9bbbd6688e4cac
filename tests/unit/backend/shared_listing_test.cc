// SharedListing (backend/shared_listing.h) without a loop or a cloud: a listing whose fetches the
// test finishes by hand, whose deferred calls the test runs, and whose clock the test moves.
#include "backend/shared_listing.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;

class ManualListing final : public SharedListing<std::string> {
 public:
  explicit ManualListing(const MonoTime* now) : SharedListing(30s, [now] { return *now; }) {}
  ~ManualListing() override { close(); }

  int fetches = 0;
  int cancelled_fetches = 0;
  std::vector<std::function<void()>> deferred;

  void finish(std::optional<Items> items) { finish_fetch(std::move(items)); }
  // Runs what was deferred so far, as the loop's next iteration would.
  void run_deferred() {
    auto calls = std::exchange(deferred, {});
    for (auto& call : calls) call();
  }

 private:
  void start_fetch() override { ++fetches; }
  void cancel_fetch() override { ++cancelled_fetches; }
  void defer_once(std::function<void()> call) override { deferred.push_back(std::move(call)); }
};

struct Answers {
  std::vector<std::optional<std::string>> got;
  ManualListing::LookupCallback record() {
    return [this](std::optional<std::string> item) { got.push_back(std::move(item)); };
  }
};

class SharedListingTest : public ::testing::Test {
 protected:
  MonoTime now_ = MonoTime{} + 1h;
  ManualListing listing_{&now_};
  Answers answers_;

  static ManualListing::Items items(std::initializer_list<std::pair<const std::string, std::string>> list) {
    return ManualListing::Items(list);
  }
};

TEST_F(SharedListingTest, PaysOffOnlyForTwoMembersOrMore) {
  EXPECT_FALSE(listing_.shared());
  listing_.join();
  EXPECT_FALSE(listing_.shared());
  listing_.join();
  EXPECT_TRUE(listing_.shared());
  listing_.leave();
  EXPECT_FALSE(listing_.shared());
}

TEST_F(SharedListingTest, ALookupFetchesAndIsAnsweredFromTheListingNeverInsideFind) {
  listing_.find("a", now_, answers_.record());
  listing_.find("missing", now_, answers_.record());
  EXPECT_EQ(listing_.fetches, 1) << "one fetch for both lookups";
  EXPECT_TRUE(answers_.got.empty());
  listing_.finish(items({{"a", "A"}, {"b", "B"}}));
  ASSERT_EQ(answers_.got.size(), 2U);
  EXPECT_EQ(answers_.got[0], std::optional<std::string>("A"));
  EXPECT_EQ(answers_.got[1], std::nullopt) << "a VM the listing does not show is read on its own";
  EXPECT_EQ(listing_.listings(), 1U);
}

TEST_F(SharedListingTest, AListingServesLaterLookupsUntilItIsMaxAgeOld) {
  const MonoTime listed_at = now_;
  listing_.find("a", listed_at, answers_.record());
  listing_.finish(items({{"a", "A"}}));
  now_ += 30s;  // exactly max_age: still served
  listing_.find("a", listed_at, answers_.record());
  EXPECT_EQ(answers_.got.size(), 1U) << "answered on a later iteration, not inside find()";
  listing_.run_deferred();
  EXPECT_EQ(answers_.got.size(), 2U);
  EXPECT_EQ(listing_.fetches, 1);

  now_ += 1ms;  // past max_age: a new listing
  listing_.find("a", listed_at, answers_.record());
  EXPECT_EQ(listing_.fetches, 2);
  listing_.run_deferred();
  EXPECT_EQ(answers_.got.size(), 2U) << "not answered from the stale listing";
  listing_.finish(items({{"a", "A2"}}));
  ASSERT_EQ(answers_.got.size(), 3U);
  EXPECT_EQ(answers_.got[2], std::optional<std::string>("A2"));
}

TEST_F(SharedListingTest, AListingRequestedBeforeTheBackendsLastActionIsNeverUsedForIt) {
  listing_.find("a", now_, answers_.record());
  now_ += 1s;
  const MonoTime action_at = now_;  // a wake sent while the first listing is under way
  listing_.find("a", action_at, answers_.record());
  EXPECT_EQ(listing_.fetches, 1) << "one listing at a time";
  listing_.finish(items({{"a", "before"}}));
  ASSERT_EQ(answers_.got.size(), 1U) << "the later lookup waits for a listing requested after its action";
  EXPECT_EQ(listing_.fetches, 2);
  listing_.run_deferred();
  EXPECT_EQ(answers_.got.size(), 1U);
  listing_.finish(items({{"a", "after"}}));
  ASSERT_EQ(answers_.got.size(), 2U);
  EXPECT_EQ(answers_.got[1], std::optional<std::string>("after"));
}

TEST_F(SharedListingTest, AFailedListingAnswersNothingAndIsNotHeld) {
  listing_.find("a", now_, answers_.record());
  listing_.finish(std::nullopt);
  ASSERT_EQ(answers_.got.size(), 1U);
  EXPECT_EQ(answers_.got[0], std::nullopt);
  EXPECT_EQ(listing_.listings(), 0U);
  listing_.find("a", now_, answers_.record());
  EXPECT_EQ(listing_.fetches, 2) << "a failed listing serves nobody afterwards";
}

TEST_F(SharedListingTest, CancelAndCloseSilenceTheCallbacks) {
  const auto dropped = listing_.find("a", now_, answers_.record());
  listing_.find("b", now_, answers_.record());
  listing_.cancel(dropped);
  listing_.finish(items({{"a", "A"}, {"b", "B"}}));
  ASSERT_EQ(answers_.got.size(), 1U);
  EXPECT_EQ(answers_.got[0], std::optional<std::string>("B"));

  now_ += 1min;
  listing_.find("a", now_, answers_.record());
  EXPECT_EQ(listing_.fetches, 2);
  listing_.close();
  EXPECT_EQ(listing_.cancelled_fetches, 1);
  listing_.find("a", now_, answers_.record());
  listing_.run_deferred();
  EXPECT_EQ(answers_.got.size(), 1U) << "nothing runs after close()";
  EXPECT_EQ(listing_.fetches, 2) << "a closed listing fetches nothing";
}

}  // namespace
}  // namespace unshelver::core
