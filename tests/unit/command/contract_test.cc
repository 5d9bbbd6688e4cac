// The command provider's contract as data: observe's JSON, the exit codes of wake and sleep, and
// the environment the commands get (command/contract.h).
#include "command/contract.h"

#include <gtest/gtest.h>

namespace unshelver::core::command {
namespace {

using Kind = CloudObservation::Kind;

CloudObservation parsed(std::string_view output, int port = 8080) {
  auto observation = parse_observation(output, false, port);
  EXPECT_TRUE(observation) << output << ": " << (observation ? "" : observation.error().message);
  return observation ? *observation : CloudObservation{};
}

std::string error_of(std::string_view output, bool truncated = false) {
  auto observation = parse_observation(output, truncated, 80);
  EXPECT_FALSE(observation) << output;
  return observation ? "" : observation.error().message;
}

TEST(CommandContract, ReadsTheStateAddressAndMessage) {
  const CloudObservation running = parsed(R"({"state": "running", "address": "203.0.113.7:9000"})");
  EXPECT_EQ(running.kind, Kind::kRunning);
  EXPECT_EQ(running.upstream, "203.0.113.7:9000");
  EXPECT_EQ(running.status, "running");

  const CloudObservation starting = parsed("  {\"state\":\"pending\",\"message\":\"booting\"}\n");
  EXPECT_EQ(starting.kind, Kind::kStarting);
  EXPECT_EQ(starting.status, "pending (booting)");
  EXPECT_TRUE(starting.upstream.empty());
  EXPECT_TRUE(starting.detail.empty());
}

TEST(CommandContract, MapsEveryDocumentedWordCaseInsensitively) {
  EXPECT_EQ(parsed(R"({"state":"STOPPED"})").kind, Kind::kStopped);
  EXPECT_EQ(parsed(R"({"state":"TERMINATED"})").kind, Kind::kStopped);
  EXPECT_EQ(parsed(R"({"state":"deallocated"})").kind, Kind::kStopped);
  EXPECT_EQ(parsed(R"({"state":"shut off"})").kind, Kind::kStopped);
  EXPECT_EQ(parsed(R"({"state":"Suspended"})").kind, Kind::kStopped);
  EXPECT_EQ(parsed(R"({"state":"STAGING"})").kind, Kind::kStarting);
  EXPECT_EQ(parsed(R"({"state":"stopping"})").kind, Kind::kStopping);
  EXPECT_EQ(parsed(R"({"state":"deallocating"})").kind, Kind::kStopping);
  EXPECT_EQ(parsed(R"({"state":"in shutdown"})").kind, Kind::kStopping);
  for (const StateWord& word : kStates) {
    EXPECT_EQ(parsed(R"({"state":")" + std::string(word.word) + "\"}").kind, word.kind) << word.word;
  }
}

TEST(CommandContract, AnErrorStateCarriesTheMessageAsTheReason) {
  const CloudObservation error = parsed(R"({"state":"error","message":"InsufficientInstanceCapacity"})");
  EXPECT_EQ(error.kind, Kind::kError);
  EXPECT_EQ(error.detail, "InsufficientInstanceCapacity");
  EXPECT_EQ(parsed(R"({"state":"error"})").detail, "the cloud reports the VM in error");
}

TEST(CommandContract, CompletesAnAddressWithoutPort) {
  EXPECT_EQ(parsed(R"({"state":"running","address":"10.0.0.5"})", 8443).upstream, "10.0.0.5:8443");
  EXPECT_EQ(parsed(R"({"state":"running","address":"gpu.internal"})", 80).upstream, "gpu.internal:80");
  EXPECT_EQ(parsed(R"({"state":"running","address":"2001:db8::7"})", 80).upstream, "[2001:db8::7]:80");
  EXPECT_EQ(parsed(R"({"state":"running","address":"[2001:db8::7]:81"})", 80).upstream, "[2001:db8::7]:81");
  EXPECT_EQ(parsed(R"({"state":"running","address":"[2001:db8::7]"})", 80).upstream, "[2001:db8::7]:80");
  EXPECT_EQ(parsed(R"({"state":"stopped","address":null})").upstream, "");
  EXPECT_EQ(parsed(R"({"state":"stopped","address":""})").upstream, "");
}

TEST(CommandContract, RefusesAddressesThatAreNotHostOrHostPort) {
  EXPECT_NE(error_of(R"({"state":"running","address":"10.0.0.5:99999"})").find("not \"host\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"state":"running","address":"http://10.0.0.5/"})").find("not \"host\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"state":"running","address":"a b"})").find("not \"host\""), std::string::npos);
  EXPECT_NE(error_of(R"({"state":"running","address":7})").find("not a string"), std::string::npos);
}

TEST(CommandContract, GarbageIsAnErrorThatQuotesWhatWasPrinted) {
  EXPECT_EQ(error_of("Traceback (most recent call last):\n  File x"),
            "observe must print one JSON object such as {\"state\": \"running\"}, but printed \"Traceback "
            "(most recent call last):\"");
  EXPECT_NE(error_of("").find("printed nothing"), std::string::npos);
  EXPECT_NE(error_of("[1,2]").find("one JSON object"), std::string::npos);
  // Several objects are not one.
  EXPECT_NE(error_of(R"({"state":"running"}{"state":"stopped"})").find("one JSON object"), std::string::npos);
  EXPECT_NE(error_of("{\"state\":\"running\"}\n{\"state\":\"stopped\"}").find("one JSON object"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"status":"RUNNING"})").find("no \"state\" string"), std::string::npos);
  EXPECT_NE(error_of(R"({"state":3})").find("no \"state\" string"), std::string::npos);
  EXPECT_NE(error_of(R"({"state":"running","message":["x"]})").find("\"message\" that is not a string"),
            std::string::npos);
}

TEST(CommandContract, AnUnknownStateIsAnErrorNamingIt) {
  const std::string message = error_of(R"({"state":"rebooting"})");
  EXPECT_NE(message.find("unknown state \"rebooting\""), std::string::npos) << message;
  EXPECT_NE(message.find("expected stopped, starting, running, stopping or error"), std::string::npos);
}

TEST(CommandContract, QuotesAreBoundedAndCannotForgeLines) {
  const std::string long_line(5000, 'x');
  const std::string message = error_of(long_line);
  EXPECT_LT(message.size(), 400u);
  EXPECT_NE(message.find("..."), std::string::npos);
  EXPECT_EQ(quote("first\nsecond"), "first");
  EXPECT_EQ(quote("a\x1b[31mred"), "a\\x1b[31mred");
  EXPECT_EQ(quote("  padded  "), "padded");
  EXPECT_EQ(quote("abcdef", 3), "abc...");
  const std::string state_message = error_of("{\"state\":\"\\u001b[2Jrun\"}");
  EXPECT_EQ(state_message.find('\x1b'), std::string::npos) << state_message;
}

TEST(CommandContract, OutputPastTheLimitIsAnError) {
  EXPECT_NE(error_of(R"({"state":"running"})", /*truncated=*/true).find("more than the output limit"),
            std::string::npos);
}

TEST(CommandContract, ExitCodesAnswerTheReconciler) {
  EXPECT_EQ(action_outcome(Ending::kExited, 0), ActionOutcome::kAccepted);
  EXPECT_EQ(action_outcome(Ending::kExited, kBusyExitStatus), ActionOutcome::kBusy);
  EXPECT_EQ(action_outcome(Ending::kExited, 1), ActionOutcome::kRefused);
  EXPECT_EQ(action_outcome(Ending::kExited, 255), ActionOutcome::kRefused);
  // Whether a command that hung did anything is unknown, as with a request that timed out.
  EXPECT_EQ(action_outcome(Ending::kTimedOut, 0), ActionOutcome::kBusy);
  EXPECT_EQ(action_outcome(Ending::kSignalled, 0), ActionOutcome::kRefused);
  EXPECT_EQ(action_outcome(Ending::kSpawnFailed, 0), ActionOutcome::kRefused);
}

TEST(CommandContract, TheEnvironmentHoldsOnlyWhatIsNamed) {
  BackendConfig backend;
  backend.name = "gpu";
  backend.command.environment = {"AWS_REGION=eu-central-1", "PATH=/opt/aws/bin:/usr/bin", "EMPTY="};
  backend.command.pass_environment = {"AWS_SECRET_ACCESS_KEY", "NOT_SET"};
  const std::map<std::string, std::string> daemon = {{"PATH", "/usr/bin"},
                                                     {"HOME", "/var/lib/unshelver"},
                                                     {"UNSHELVER_CONTROL_TOKEN", "control-token-value"},
                                                     {"OS_PASSWORD", "nova-password"},
                                                     {"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"}};
  const ChildEnvironment environment = child_environment(backend, daemon);
  EXPECT_EQ(environment.entries,
            (std::vector<std::string>{"AWS_REGION=eu-central-1", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI",
                                      "EMPTY=", "HOME=/var/lib/unshelver", "PATH=/opt/aws/bin:/usr/bin",
                                      "UNSHELVER_BACKEND=gpu"}));
  EXPECT_EQ(environment.secrets, std::vector<std::string>{"wJalrXUtnFEMI"});
  EXPECT_EQ(environment.missing, std::vector<std::string>{"NOT_SET"});
  EXPECT_EQ(environment.path, "/opt/aws/bin:/usr/bin");
}

TEST(CommandContract, AStandardPathWhenTheDaemonHasNone) {
  BackendConfig backend;
  const ChildEnvironment environment = child_environment(backend, {});
  EXPECT_EQ(environment.path, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
}

}  // namespace
}  // namespace unshelver::core::command
