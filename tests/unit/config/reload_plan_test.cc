// Tests of the reload plan: what a SIGHUP with a new configuration changes, and what it keeps.
#include "config/reload_plan.h"

#include <gtest/gtest.h>

namespace unshelver::core {
namespace {

BackendConfig backend(const std::string& name) {
  BackendConfig config;
  config.name = name;
  config.provider = ProviderKind::kSim;
  return config;
}

Config two_backends() {
  Config config;
  config.listen = "127.0.0.1:5001";
  config.backends = {backend("a"), backend("b")};
  config.app.control_token = "old-token-0123456789";
  return config;
}

TEST(ReloadPlan, SameConfigurationChangesNothing) {
  const ReloadPlan plan = plan_reload(two_backends(), two_backends());
  EXPECT_TRUE(plan.unchanged());
  EXPECT_EQ(plan.summary(), "no change");
}

TEST(ReloadPlan, NamesBackendsAddedRemovedAndChanged) {
  Config next = two_backends();
  next.backends.erase(next.backends.begin() + 1);            // b removed
  next.backends[0].idle_timeout = std::chrono::seconds(60);  // a changed
  next.backends.push_back(backend("c"));                     // c added
  const ReloadPlan plan = plan_reload(two_backends(), next);
  EXPECT_EQ(plan.added, std::vector<std::string>{"c"});
  EXPECT_EQ(plan.removed, std::vector<std::string>{"b"});
  EXPECT_EQ(plan.changed, std::vector<std::string>{"a"});
  EXPECT_EQ(plan.summary(), "backends added: c; backends removed: b; backends changed: a");
}

TEST(ReloadPlan, NamesAChangedSecretWithoutItsValue) {
  Config next = two_backends();
  next.app.control_token = "new-token-0123456789";
  const ReloadPlan plan = plan_reload(two_backends(), next);
  EXPECT_EQ(plan.settings, std::vector<std::string>{"control token"});
  EXPECT_EQ(plan.summary().find("token-0123"), std::string::npos);
}

TEST(ReloadPlan, NamesChangedSections) {
  Config next = two_backends();
  next.http.idle_timeout = Millis{1'000};
  next.activity.ignore.paths.push_back("/healthz");
  const ReloadPlan plan = plan_reload(two_backends(), next);
  EXPECT_EQ(plan.settings, (std::vector<std::string>{"activity", "http"}));
}

TEST(ReloadPlan, AChangedListenAddressIsKeptUntilARestart) {
  Config next = two_backends();
  next.listen = "127.0.0.1:6001";
  const ReloadPlan plan = plan_reload(two_backends(), next);
  EXPECT_TRUE(plan.listen_changed);
  EXPECT_EQ(plan.summary(), "listen stays 127.0.0.1:5001 until a restart (wanted 127.0.0.1:6001)");
  EXPECT_EQ(apply_reload_limits(two_backends(), next).listen, "127.0.0.1:5001");
}

}  // namespace
}  // namespace unshelver::core
