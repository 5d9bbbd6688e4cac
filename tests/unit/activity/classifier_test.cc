#include "activity/classifier.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace unshelver::core {
namespace {

// Real lines from Caddy 2.6.2 (shared/research/caddy-facts.md §4a).
constexpr std::string_view kGpuLine =
    R"({"level":"info","ts":1795361756.2653134,"logger":"http.log.access.log1","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"54090","proto":"HTTP/1.1","method":"GET","host":"chat.localhost:18080","uri":"/sample/gpu-ok","headers":{"User-Agent":["sample-client"],"Accept":["*/*"]}},"user_id":"","duration":0.001407096,"size":19,"status":200,"resp_headers":{"Server":["Caddy","BaseHTTP/0.6 Python/3.11.7"],"Date":["Sun, 22 Nov 2026 15:35:56 GMT"],"Content-Type":["text/plain"],"Content-Length":["19"],"X-Backend":["gpu"],"X-Served-By":["gpu"]}})";
constexpr std::string_view kFallback503Line =
    R"({"level":"info","ts":1795361756.3180037,"logger":"http.log.access.log1","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"54106","proto":"HTTP/1.1","method":"GET","host":"chat.localhost:18080","uri":"/sample/gpu-503-fallback","headers":{"User-Agent":["sample-client"],"Accept":["*/*"]}},"user_id":"","duration":0.012960147,"size":34,"status":200,"resp_headers":{"Date":["Sun, 22 Nov 2026 15:35:56 GMT"],"Content-Type":["text/plain"],"Content-Length":["34"],"X-Backend":["launcher"],"X-Served-By":["launcher-fallback"],"Server":["Caddy","BaseHTTP/0.6 Python/3.11.7"]}})";
constexpr std::string_view kFallbackDownLine =
    R"({"level":"info","ts":1795361756.690929,"logger":"http.log.access.log1","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"54110","proto":"HTTP/1.1","method":"GET","host":"chat.localhost:18080","uri":"/sample/gpu-down-fallback","headers":{"User-Agent":["sample-client"],"Accept":["*/*"]}},"user_id":"","duration":0.000668131,"size":35,"status":200,"resp_headers":{"X-Served-By":["launcher-fallback"],"Date":["Sun, 22 Nov 2026 15:35:56 GMT"],"Content-Type":["text/plain"],"Server":["Caddy","BaseHTTP/0.6 Python/3.11.7"],"Content-Length":["35"],"X-Backend":["launcher"]}})";
constexpr std::string_view kStaticPost503Line =
    R"({"level":"error","ts":1795361756.73002,"logger":"http.log.access.log1","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"54118","proto":"HTTP/1.1","method":"POST","host":"chat.localhost:18080","uri":"/sample/gpu-down-post","headers":{"User-Agent":["sample-client"],"Accept":["*/*"],"Content-Type":["application/json"],"Content-Length":["13"]}},"user_id":"","duration":0.000743643,"size":23,"status":503,"resp_headers":{"X-Served-By":["fallback-static"],"Content-Type":["text/plain; charset=utf-8"],"Server":["Caddy"]}})";
constexpr std::string_view kFallbackModeLine =
    R"({"level":"info","ts":1795361756.8519921,"logger":"http.log.access.log1","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"54136","proto":"HTTP/1.1","method":"GET","host":"chat.localhost:18080","uri":"/sample/fallback-mode","headers":{"User-Agent":["sample-client"],"Accept":["*/*"]}},"user_id":"","duration":0.002551504,"size":31,"status":200,"resp_headers":{"Server":["Caddy","BaseHTTP/0.6 Python/3.11.7"],"Date":["Sun, 22 Nov 2026 15:35:56 GMT"],"Content-Type":["text/plain"],"Content-Length":["31"],"X-Backend":["launcher"],"X-Served-By":["launcher"]}})";
constexpr std::string_view kLauncherHostLine =
    R"({"level":"info","ts":1795361756.7701023,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"54128","proto":"HTTP/1.1","method":"GET","host":"launcher.localhost:18080","uri":"/sample/launcher-host","headers":{"User-Agent":["sample-client"],"Accept":["*/*"]}},"user_id":"","duration":0.00382601,"size":31,"status":200,"resp_headers":{"X-Backend":["launcher"],"Date":["Sun, 22 Nov 2026 15:35:56 GMT"],"Content-Type":["text/plain"],"Server":["Caddy","BaseHTTP/0.6 Python/3.11.7"],"Content-Length":["31"]}})";

// A Caddy-shaped line; every part can be replaced by raw JSON text.
struct LineSpec {
  std::string ts = "1700000000.5";
  std::string duration = "0.25";  // empty: no "duration" key
  std::string method = R"("GET")";
  std::string host = R"("chat.localhost:18080")";
  std::string uri = R"("/v1/chat?stream=1")";
  std::string request_headers = R"({"User-Agent":["curl/8.0"],"Accept":["*/*"]})";
  std::string resp_headers = R"({"Server":["Caddy"],"X-Served-By":["gpu"]})";

  std::string text() const {
    std::string line =
        R"({"level":"info","ts":)" + ts +
        R"(,"logger":"http.log.access.log1","msg":"handled request","request":{"remote_ip":"10.0.0.7","remote_port":"40000","proto":"HTTP/1.1","method":)" +
        method + R"(,"host":)" + host + R"(,"uri":)" + uri + R"(,"headers":)" + request_headers +
        R"(},"user_id":"")";
    if (!duration.empty()) line += R"(,"duration":)" + duration;
    line += R"(,"size":19,"status":200,"resp_headers":)" + resp_headers + "}";
    return line;
  }
};

std::vector<ActivityTarget> default_targets() {
  return {{"chat", "chat.localhost", "gpu"}, {"draw", "Draw.Example.org", "sd"}, {"v6", "[::1]", "v6-label"}};
}

IgnoreRules no_rules() {
  IgnoreRules rules;
  rules.user_agents.clear();
  return rules;
}

class ActivityClassifierTest : public ::testing::Test {
 protected:
  explicit ActivityClassifierTest(IgnoreRules rules = IgnoreRules{})
      : classifier_(default_targets(), rules) {}

  // Classifies through classify() and checks that the reference parser agrees: exactly, or, for
  // a line the pre-scan settled as another host's, in attributing it to no target.
  LineResult classify(std::string_view line) {
    LineResult result = classifier_.classify(line);
    LineResult reference = classifier_.classify_reference(line);
    if (result.outcome == LineOutcome::kOtherHost) {
      EXPECT_TRUE(classifier_.other_host(line)) << line;
      EXPECT_EQ(result.backend, -1) << line;
      EXPECT_EQ(reference.backend, -1) << line;
      EXPECT_NE(reference.outcome, LineOutcome::kActivity) << line;
      EXPECT_NE(reference.outcome, LineOutcome::kIgnored) << line;
      return result;
    }
    EXPECT_FALSE(classifier_.other_host(line)) << line;
    EXPECT_EQ(result.outcome, reference.outcome) << line;
    EXPECT_EQ(result.backend, reference.backend) << line;
    EXPECT_EQ(result.reason, reference.reason) << line;
    EXPECT_EQ(result.start_seconds, reference.start_seconds) << line;
    EXPECT_EQ(result.end_seconds, reference.end_seconds) << line;
    return result;
  }

  LineOutcome outcome(const LineSpec& spec) { return classify(spec.text()).outcome; }

  ActivityClassifier classifier_;
};

TEST_F(ActivityClassifierTest, RealGpuLineIsActivity) {
  std::uint64_t fast_before = classifier_.counters().fast_path;
  LineResult result = classify(kGpuLine);
  EXPECT_EQ(result.outcome, LineOutcome::kActivity);
  EXPECT_EQ(result.backend, 0);
  EXPECT_DOUBLE_EQ(result.end_seconds, 1795361756.2653134);
  EXPECT_DOUBLE_EQ(result.start_seconds, 1795361756.2653134 - 0.001407096);
  EXPECT_TRUE(result.reason.empty());
  // Real lines must not need the slow parser; otherwise ingestion speed collapses.
  EXPECT_EQ(classifier_.counters().fast_path, fast_before + 1);
}

TEST_F(ActivityClassifierTest, RealFallbackAndLauncherLinesAreOtherTraffic) {
  for (std::string_view line : {kFallback503Line, kFallbackDownLine, kStaticPost503Line, kFallbackModeLine}) {
    LineResult result = classify(line);
    EXPECT_EQ(result.outcome, LineOutcome::kOtherTraffic) << line;
    EXPECT_EQ(result.backend, -1) << line;
  }
  EXPECT_EQ(classifier_.counters().fast_path, 4u);
  // The launcher's host is no backend's: the pre-scan settles it.
  LineResult launcher = classify(kLauncherHostLine);
  EXPECT_EQ(launcher.outcome, LineOutcome::kOtherHost);
  EXPECT_EQ(classifier_.counters().prescan, 1u);
  EXPECT_EQ(classifier_.counters().fast_path, 4u);
}

TEST_F(ActivityClassifierTest, PreScanSettlesOtherHostsWithoutValidating) {
  // A line of another host is "other_host" whatever follows its host: even cut short, or with
  // a field of the wrong type, where the validating parse would name a malformed kind.
  LineSpec spec;
  spec.host = R"("www.example.org")";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherHost);
  std::string cut = spec.text();
  cut.resize(cut.find("www.example.org") + 30);
  EXPECT_EQ(classify(cut).outcome, LineOutcome::kOtherHost);
  spec.resp_headers = R"({"X-Served-By":"gpu"})";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherHost);
  // Any spelling of a target's host, with or without its port, is ours: the full parse decides.
  for (const char* host :
       {R"("chat.localhost")", R"("CHAT.localhost:18080")", R"("draw.example.ORG")", R"("[::1]:8080")"}) {
    spec.host = host;
    spec.resp_headers = R"({"X-Served-By":["gpu"]})";
    EXPECT_FALSE(classifier_.other_host(spec.text())) << host;
    EXPECT_NE(outcome(spec), LineOutcome::kOtherHost) << host;
  }
}

TEST_F(ActivityClassifierTest, PreScanLooksAtEveryHostKey) {
  // Only the bytes `"host":` count: a capitalised Host header naming a target, a target's host
  // in the URI or user agent, or a string "host" that is no key do not stop the pre-scan.
  LineSpec spec;
  spec.host = R"("www.example.org")";
  spec.request_headers = R"({"Host":["chat.localhost"],"User-Agent":["chat.localhost host","host"]})";
  spec.uri = R"("/chat.localhost/host?host=chat.localhost")";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherHost);
  // A host key anywhere else that names a target leaves the line to the parsers, which find
  // request.host another's; several keys that all name other hosts settle it.
  std::string nested = spec.text();
  nested.insert(1, R"("extra":{"host":"chat.localhost","request":{"host":"chat.localhost"}},)");
  EXPECT_FALSE(classifier_.other_host(nested));
  EXPECT_EQ(classify(nested).outcome, LineOutcome::kOtherTraffic);
  std::string others = spec.text();
  others.insert(1, R"("extra":{"host":"a.example","tls":{"host":7}},)");
  EXPECT_TRUE(classifier_.other_host(others));
  EXPECT_EQ(classify(others).outcome, LineOutcome::kOtherHost);
  // Keys before the host inside the request, of every kind of value, are skipped exactly.
  std::string odd = LineSpec{}.text();
  odd.replace(odd.find(R"("host":"chat.localhost:18080")"),
              std::string_view(R"("host":"chat.localhost:18080")").size(),
              R"("tls":{"a":[1,{"b":"]"}],"c":null},"n":-1.5,"host":"other.example")");
  EXPECT_TRUE(classifier_.other_host(odd));
  EXPECT_EQ(classify(odd).outcome, LineOutcome::kOtherHost);
}

TEST_F(ActivityClassifierTest, PreScanIsUnsureOfRepeatedKeysEscapesAndOddForms) {
  // The last duplicate wins in the reference: a second "host" or "request" naming a target
  // anywhere leaves the line to the full parse, which here finds a target's line.
  std::string second_host = LineSpec{}.text();
  second_host.replace(second_host.find(R"("host":"chat.localhost:18080")"),
                      std::string_view(R"("host":"chat.localhost:18080")").size(),
                      R"("host":"www.example.org","host":"chat.localhost")");
  EXPECT_FALSE(classifier_.other_host(second_host));
  EXPECT_EQ(classify(second_host).outcome, LineOutcome::kActivity);
  LineSpec other;
  other.host = R"("www.example.org")";
  std::string second_request = other.text();
  second_request.insert(second_request.size() - 1, R"(,"request":{"host":"chat.localhost"})");
  EXPECT_FALSE(classifier_.other_host(second_request));
  EXPECT_EQ(classify(second_request).outcome, LineOutcome::kActivity);
  // An escape anywhere (it could spell "host"), whitespace around a host key, or no host key
  // with a string value.
  std::string escaped = other.text();
  escaped.insert(escaped.size() - 1, R"(,"requ\u0065st":{"hos\u0074":"chat.localhost"})");
  EXPECT_FALSE(classifier_.other_host(escaped));
  EXPECT_EQ(classify(escaped).outcome, LineOutcome::kActivity);
  for (std::string_view spaced_key : {R"("host" :)", R"("host": )"}) {
    std::string spaced = other.text();
    spaced.replace(spaced.find(R"("host":)"), 7, spaced_key);
    EXPECT_FALSE(classifier_.other_host(spaced)) << spaced;
    EXPECT_EQ(classify(spaced).outcome, LineOutcome::kOtherTraffic) << spaced;
  }
  // Whitespace elsewhere does not hide a host key.
  std::string spaced = other.text();
  spaced.insert(1, " ");
  EXPECT_TRUE(classifier_.other_host(spaced));
  EXPECT_EQ(classify(spaced).outcome, LineOutcome::kOtherHost);
  std::string no_host = other.text();
  no_host.replace(no_host.find(R"("host":)"), 7, R"("hostname":)");
  EXPECT_FALSE(classifier_.other_host(no_host));
  EXPECT_EQ(classify(no_host).outcome, LineOutcome::kMissingField);
  other.host = R"(["www.example.org"])";
  EXPECT_FALSE(classifier_.other_host(other.text()));
  EXPECT_EQ(outcome(other), LineOutcome::kWrongType);
}

// Escapes other than \u, control characters and non-ASCII bytes cannot spell the key "host", so
// lines of other hosts that hold them are settled too (without the reference's DOM parse); a \u
// anywhere, whitespace of any kind around a host key, or a backslash in a host's value leave the
// line to the parsers.
TEST_F(ActivityClassifierTest, PreScanSettlesOtherHostsWithEscapesOtherThanUnicode) {
  LineSpec other;
  other.host = R"("www.example.org")";
  std::vector<std::string> settled;
  LineSpec quoted_agent = other;
  quoted_agent.request_headers = R"({"User-Agent":["Mozilla/5.0 \"quoted\" agent \\"]})";
  settled.push_back(quoted_agent.text());
  LineSpec utf8 = other;
  utf8.uri = "\"/caf\xc3\xa9/men\xc3\xbc\"";
  settled.push_back(utf8.text());
  std::string tab_elsewhere = other.text();
  tab_elsewhere.insert(1, "\t");
  settled.push_back(tab_elsewhere);
  // The bytes `"host":` inside a string, after an escaped quote, are looked at too.
  std::string inside = other.text();
  inside.insert(1, R"("note":"\"host\":\"chat.localhost\" \"host":"a.example",)");
  settled.push_back(inside);
  for (const std::string& line : settled) {
    EXPECT_TRUE(classifier_.other_host(line)) << line;
    EXPECT_EQ(classify(line).outcome, LineOutcome::kOtherHost) << line;
  }

  std::vector<std::string> unsure;
  std::string unicode = quoted_agent.text();
  unicode.insert(1, R"("note":"\u0041",)");
  unsure.push_back(unicode);
  std::string escaped_key = quoted_agent.text();
  escaped_key.insert(escaped_key.size() - 1, R"(,"request":{"hos\u0074":"chat.localhost"})");
  unsure.push_back(escaped_key);
  for (std::string_view spaced_key : {"\"host\"\t:", "\"host\":\n", "\"host\"\r:", "\"host\": "}) {
    std::string spaced = quoted_agent.text();
    spaced.replace(spaced.find(R"("host":)"), 7, spaced_key);
    unsure.push_back(spaced);
  }
  std::string escaped_value = quoted_agent.text();
  escaped_value.replace(escaped_value.find("www.example.org"), 15, R"(www.example.org\/x)");
  unsure.push_back(escaped_value);
  // A quoted key "host (with its quote) in front, whose value names a target: unsure as well.
  std::string fake_key = other.text();
  fake_key.insert(1, R"("\"host":"chat.localhost",)");
  unsure.push_back(fake_key);
  for (const std::string& line : unsure) {
    EXPECT_FALSE(classifier_.other_host(line)) << line;
    EXPECT_NE(classify(line).outcome, LineOutcome::kOtherHost) << line;
  }
  // A target's own line with a tab before its host key's colon is the reference's to decide.
  std::string ours = LineSpec{}.text();
  ours.insert(1, R"("note":"x\"host\":\"www.example.org",)");
  ours.replace(ours.find(R"("host":"chat)"), 7, "\"host\"\t:");
  EXPECT_FALSE(classifier_.other_host(ours));
  EXPECT_EQ(classify(ours).outcome, LineOutcome::kActivity);
}

// The pre-scan runs before the walk and needs no structure (issue 20: other hosts' lines are not
// walked at all), so lines the walk would give up on before their host are settled as well:
// classify() and other_host() always agree.
TEST_F(ActivityClassifierTest, PreScanSettlesLinesTheWalkWouldGiveUpOn) {
  auto with_host = [](std::string host) {
    LineSpec spec;
    spec.host = std::move(host);
    return spec;
  };
  std::vector<std::string> lines;
  LineSpec ts_string = with_host(R"("www.example.org")");
  ts_string.ts = R"("yesterday")";
  lines.push_back(ts_string.text());
  std::string repeated_ts = with_host(R"("www.example.org")").text();
  repeated_ts.insert(1, R"("ts":1,)");
  lines.push_back(repeated_ts);
  std::string odd_headers_first = with_host(R"("www.example.org")").text();
  odd_headers_first.replace(odd_headers_first.find(R"("remote_ip")"), 1, R"("headers":{"A":"b"},")");
  lines.push_back(odd_headers_first);
  std::string odd_resp_headers_first = with_host(R"("www.example.org")").text();
  odd_resp_headers_first.insert(1, R"("resp_headers":7,)");
  lines.push_back(odd_resp_headers_first);
  for (const std::string& line : lines) {
    const std::uint64_t prescan_before = classifier_.counters().prescan;
    EXPECT_EQ(classify(line).outcome, LineOutcome::kOtherHost) << line;
    EXPECT_EQ(classifier_.counters().prescan, prescan_before + 1) << line;
  }
}

// A line of our hosts (any case, with a port) that the walk cannot take, before or after its
// host, gets the validating parse: escapes, non-ASCII, duplicate keys, wrong types.
TEST_F(ActivityClassifierTest, OurLinesTheWalkCannotTakeGetTheFullParse) {
  for (const char* host : {R"("chat.localhost")", R"("CHAT.Localhost:443")", R"("draw.example.org")"}) {
    LineSpec spec;
    spec.host = host;
    if (std::string_view(host).find("draw") != std::string_view::npos)
      spec.resp_headers = R"({"X-Served-By":["sd"]})";
    const std::uint64_t fast_before = classifier_.counters().fast_path;
    EXPECT_EQ(outcome(spec), LineOutcome::kActivity) << host;
    EXPECT_EQ(classifier_.counters().fast_path, fast_before + 1) << host;

    LineSpec escaped = spec;
    escaped.uri = R"("/café")";
    LineSpec non_ascii = spec;
    non_ascii.uri = "\"/caf\xc3\xa9\"";
    LineSpec ts_string = spec;
    ts_string.ts = R"("1700000000.5")";
    std::string repeated_uri = spec.text();
    repeated_uri.insert(repeated_uri.find(R"("uri")"), R"("uri":"/healthz",)");
    std::string repeated_ts_after = spec.text();
    repeated_ts_after.insert(repeated_ts_after.size() - 1, R"(,"ts":1)");
    const std::uint64_t fast_now = classifier_.counters().fast_path;
    const std::uint64_t prescan_now = classifier_.counters().prescan;
    EXPECT_EQ(outcome(escaped), LineOutcome::kActivity) << host;
    EXPECT_EQ(outcome(non_ascii), LineOutcome::kActivity) << host;
    EXPECT_EQ(outcome(ts_string), LineOutcome::kWrongType) << host;
    EXPECT_EQ(classify(repeated_uri).outcome, LineOutcome::kActivity) << host;
    EXPECT_EQ(classify(repeated_ts_after).outcome, LineOutcome::kActivity) << host;
    EXPECT_EQ(classify(repeated_ts_after).end_seconds, 1.0) << host;
    EXPECT_EQ(classifier_.counters().fast_path, fast_now) << host;
    EXPECT_EQ(classifier_.counters().prescan, prescan_now) << host;
  }
}

TEST_F(ActivityClassifierTest, HostIgnoresPortAndCase) {
  LineSpec spec;
  spec.host = R"("chat.localhost")";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.host = R"("CHAT.LocalHost:443")";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.host = R"("chat.localhost.evil:80")";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherHost);
  spec.host = R"("xchat.localhost")";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherHost);
  spec.host = R"("")";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherHost);
}

// Hosts compare a word at a time (issue 20); against a plain oracle, for every printable byte
// in the first word and in the tail: only 'T' and 't' stand for the 't' of "chat.localhost".
// UTF-8 letters are not folded.
TEST_F(ActivityClassifierTest, HostComparisonFoldsOnlyAsciiCapitals) {
  for (std::size_t at : {std::size_t{3}, std::size_t{13}}) {
    for (int c = 0x20; c < 0x7f; ++c) {
      if (c == '"' || c == '\\') continue;
      std::string host = "chat.localhost";
      host[at] = static_cast<char>(c);
      LineSpec spec;
      spec.host = "\"" + host + "\"";
      const bool same = c == 't' || c == 'T';
      EXPECT_EQ(outcome(spec), same ? LineOutcome::kActivity : LineOutcome::kOtherHost) << host;
    }
  }
  LineSpec spec;
  spec.host = "\"cha\xc3\x94.localhost\"";  // the pre-scan compares the same bytes: another host
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherHost);
}

TEST_F(ActivityClassifierTest, TargetHostCaseIsIrrelevantToo) {
  LineSpec spec;
  spec.host = R"("draw.example.ORG:8443")";
  spec.resp_headers = R"({"X-Served-By":["sd"]})";
  LineResult result = classify(spec.text());
  EXPECT_EQ(result.outcome, LineOutcome::kActivity);
  EXPECT_EQ(result.backend, 1);
}

TEST_F(ActivityClassifierTest, Ipv6Hosts) {
  LineSpec spec;
  spec.resp_headers = R"({"X-Served-By":["v6-label"]})";
  for (const char* host : {R"("[::1]:8080")", R"("[::1]")"}) {
    spec.host = host;
    LineResult result = classify(spec.text());
    EXPECT_EQ(result.outcome, LineOutcome::kActivity) << host;
    EXPECT_EQ(result.backend, 2) << host;
  }
  spec.host = R"("[::2]:8080")";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherHost);
}

TEST_F(ActivityClassifierTest, LabelMustMatchExactlyButMayBeAmongSeveral) {
  LineSpec spec;
  spec.resp_headers = R"({"X-Served-By":["cache","gpu"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.resp_headers = R"({"X-Served-By":["GPU"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherTraffic);
  spec.resp_headers = R"({"X-Served-By":["gpu2","gp"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherTraffic);
  spec.resp_headers = R"({"X-Served-By":[]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherTraffic);
  spec.resp_headers = R"({})";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherTraffic);
  // The right label for another backend's host is not this backend's activity.
  spec.resp_headers = R"({"X-Served-By":["sd"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherTraffic);
}

TEST_F(ActivityClassifierTest, HeaderNamesCompareCaseInsensitively) {
  LineSpec spec;
  for (const char* headers : {R"({"x-served-by":["gpu"]})", R"({"X-SERVED-BY":["gpu"]})",
                              R"({"X-Served-By":["other"],"x-served-by":["gpu"]})"}) {
    spec.resp_headers = headers;
    EXPECT_EQ(outcome(spec), LineOutcome::kActivity) << headers;
  }
  spec.resp_headers = R"({"X-Served-By-Other":["gpu"],"Served-By":["gpu"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherTraffic);
}

TEST_F(ActivityClassifierTest, DurationAbsentMeansStartEqualsEnd) {
  LineSpec spec;
  spec.duration = "";
  LineResult result = classify(spec.text());
  EXPECT_EQ(result.outcome, LineOutcome::kActivity);
  EXPECT_EQ(result.start_seconds, 1700000000.5);
  EXPECT_EQ(result.end_seconds, 1700000000.5);
  spec.duration = "4";
  spec.ts = "1700000010";
  result = classify(spec.text());
  EXPECT_EQ(result.start_seconds, 1700000006.0);
  EXPECT_EQ(result.end_seconds, 1700000010.0);
}

// User agents are searched sixteen bytes at a time (issue 20): a monitor's name at every offset
// across two blocks and the padded tail, in mixed case, is found; cut short at the end, or with
// one letter changed, it is not. "Better Uptime" holds a space, which the search folds too.
TEST_F(ActivityClassifierTest, MonitorNamesAreFoundAtEveryOffsetOfTheAgent) {
  LineSpec spec;
  for (std::string_view name : {std::string_view("uPTIMErobot"), std::string_view("BETTER uptime")}) {
    for (std::size_t offset = 0; offset <= 40; ++offset) {
      const std::string before(offset, 'x');
      spec.request_headers = R"({"User-Agent":[")" + before + std::string(name) + R"(/2"]})";
      EXPECT_EQ(outcome(spec), LineOutcome::kIgnored) << offset << " " << name;
      spec.request_headers =
          R"({"User-Agent":[")" + before + std::string(name.substr(0, name.size() - 1)) + R"("]})";
      EXPECT_EQ(outcome(spec), LineOutcome::kActivity) << offset << " " << name;
      std::string changed(name);
      changed[changed.size() / 2] = '_';
      spec.request_headers = R"({"User-Agent":[")" + before + changed + R"("]})";
      EXPECT_EQ(outcome(spec), LineOutcome::kActivity) << offset << " " << changed;
    }
  }
}

// Names that do not start with two ASCII letters are searched by their first letter alone (the
// default names by their first two): both at every offset around the 16-byte blocks.
TEST(ActivityClassifier, MonitorNamesWithoutTwoLeadingLettersAreFoundToo) {
  IgnoreRules rules;
  rules.user_agents = {"k6", "Uptime-Kuma"};
  ActivityClassifier classifier(default_targets(), rules);
  LineSpec spec;
  for (std::size_t offset = 0; offset <= 40; ++offset) {
    const std::string before(offset, 'k');
    for (const auto& [agent, ignored] : {std::pair{"K6/0.45", true}, std::pair{"UPTIME-KUMA", true},
                                         std::pair{"K", false}, std::pair{"Uptime-Kum", false}}) {
      spec.request_headers = R"({"User-Agent":[")" + before + agent + R"("]})";
      const LineResult result = classifier.classify(spec.text());
      EXPECT_EQ(result.outcome, ignored ? LineOutcome::kIgnored : LineOutcome::kActivity) << offset << agent;
      EXPECT_EQ(result.outcome, classifier.classify_reference(spec.text()).outcome) << offset << agent;
    }
  }
}

TEST_F(ActivityClassifierTest, DefaultRulesIgnoreUptimeMonitorsCaseInsensitively) {
  LineSpec spec;
  spec.request_headers =
      R"j({"User-Agent":["Mozilla/5.0+(compatible; uptimerobot/2.0; http://www.uptimerobot.com/)"]})j";
  LineResult result = classify(spec.text());
  EXPECT_EQ(result.outcome, LineOutcome::kIgnored);
  EXPECT_EQ(result.reason, "user_agent");
  EXPECT_EQ(result.backend, 0);
  // Only the first User-Agent value counts, and the header name may be in any case.
  spec.request_headers = R"({"User-Agent":["firefox","kube-probe/1.29"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.request_headers = R"({"user-agent":["KUBE-PROBE/1.29"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kIgnored);
  // A monitor on another host is simply another host's line.
  spec.host = R"("launcher.localhost")";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherHost);
}

class ActivityClassifierRulesTest : public ActivityClassifierTest {
 protected:
  static IgnoreRules rules() {
    IgnoreRules rules = no_rules();
    rules.user_agents = {"Pingdom"};
    rules.user_agent_patterns = {"^health-[0-9]+$", "bot\\b"};
    rules.paths = {"/healthz", "/metrics/*", "/exact"};
    rules.methods = {"OPTIONS", "HEAD"};
    return rules;
  }
  ActivityClassifierRulesTest() : ActivityClassifierTest(rules()) {}
};

TEST_F(ActivityClassifierRulesTest, UserAgentPatternsAreCaseInsensitiveSearches) {
  LineSpec spec;
  spec.request_headers = R"({"User-Agent":["HEALTH-42"]})";
  EXPECT_EQ(classify(spec.text()).reason, "user_agent");
  spec.request_headers = R"({"User-Agent":["health-42x"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.request_headers = R"j({"User-Agent":["SomeBot (+https://example.com)"]})j";
  EXPECT_EQ(outcome(spec), LineOutcome::kIgnored);
  spec.request_headers = R"({"User-Agent":["robotic arm"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.request_headers = R"({"User-Agent":["pingdom.com_bot_version_1.4"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kIgnored);
  spec.request_headers = R"({"Accept":["*/*"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
}

TEST_F(ActivityClassifierRulesTest, PathsExactOrPrefixWithoutQuery) {
  LineSpec spec;
  spec.uri = R"("/healthz")";
  EXPECT_EQ(classify(spec.text()).reason, "path");
  spec.uri = R"("/healthz?full=1")";
  EXPECT_EQ(outcome(spec), LineOutcome::kIgnored);
  spec.uri = R"("/healthzz")";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.uri = R"("/metrics/")";
  EXPECT_EQ(outcome(spec), LineOutcome::kIgnored);
  spec.uri = R"("/metrics/gpu/load")";
  EXPECT_EQ(outcome(spec), LineOutcome::kIgnored);
  spec.uri = R"("/metrics")";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.uri = R"("/exact/more")";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
}

TEST_F(ActivityClassifierRulesTest, MethodsMatchExactly) {
  LineSpec spec;
  spec.method = R"("OPTIONS")";
  EXPECT_EQ(classify(spec.text()).reason, "method");
  spec.method = R"("HEAD")";
  EXPECT_EQ(outcome(spec), LineOutcome::kIgnored);
  spec.method = R"("POST")";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.method = R"("options")";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
}

TEST_F(ActivityClassifierRulesTest, IgnoredLinesAreCountedPerBackend) {
  LineSpec spec;
  spec.method = R"("OPTIONS")";
  classify(spec.text());
  spec.method = R"("GET")";
  classify(spec.text());
  spec.host = R"("draw.example.org")";
  spec.resp_headers = R"({"X-Served-By":["sd"]})";
  spec.uri = R"("/healthz")";
  classify(spec.text());
  const ClassifierCounters& counters = classifier_.counters();
  EXPECT_EQ(counters.ignored_by_backend, (std::vector<std::uint64_t>{1, 1, 0}));
  EXPECT_EQ(counters.activity_by_backend, (std::vector<std::uint64_t>{1, 0, 0}));
  EXPECT_EQ(counters.by_outcome.at("ignored"), 2u);
}

TEST_F(ActivityClassifierTest, MalformedJson) {
  std::string truncated(kGpuLine.substr(0, kGpuLine.size() / 2));
  std::string non_utf8 = LineSpec{}.text();
  non_utf8.replace(non_utf8.find("curl/8.0"), 4, "cu\xff\xfe");
  std::string nul_byte = LineSpec{}.text();
  nul_byte[nul_byte.find("curl")] = '\0';
  for (std::string_view line :
       {std::string_view(""), std::string_view("not json"), std::string_view(truncated),
        std::string_view(non_utf8), std::string_view(nul_byte), std::string_view(R"({"ts":1,})"),
        std::string_view(R"({"ts":01})"), std::string_view(R"({"ts":1} {})")}) {
    LineResult result = classify(line);
    EXPECT_EQ(result.outcome, LineOutcome::kMalformedJson) << line;
    EXPECT_EQ(result.reason, "not_json") << line;
  }
  for (std::string_view line : {"[1,2]", "\"text\"", "42", "null"}) {
    EXPECT_EQ(classify(line).outcome, LineOutcome::kMalformedJson) << line;
    EXPECT_EQ(classify(line).reason, "not_object") << line;
  }
}

TEST_F(ActivityClassifierTest, EveryControlCharacterInAStringIsMalformed) {
  // Found by the fuzz target: the SIMD check once let 0x1f through. The byte sits at different
  // offsets so that it lands in different 16/32/64-byte blocks and in the padded tail.
  LineSpec spec;
  spec.resp_headers = R"({"Server":["Caddy"],"X-Served-By":["gpu"],"Via":["padding"]})";
  std::string line = spec.text();
  for (std::size_t offset : {line.find("curl"), line.find("Caddy"), line.find("padding") + 2}) {
    for (int byte = 0; byte < 0x20; ++byte) {
      std::string bad = line;
      bad[offset] = static_cast<char>(byte);
      EXPECT_EQ(classify(bad).outcome, LineOutcome::kMalformedJson) << "byte " << byte << " at " << offset;
    }
    std::string del = line;
    del[offset] = '\x7f';  // DEL is allowed in JSON strings
    EXPECT_EQ(classify(del).outcome, LineOutcome::kActivity) << offset;
  }
}

TEST_F(ActivityClassifierTest, EveryScanVariantAgreesWithTheReference) {
  std::vector<std::string> variants = ActivityClassifier::scan_variants();
  ASSERT_FALSE(variants.empty());
  EXPECT_EQ(variants.back(), "portable");
  EXPECT_FALSE(classifier_.use_scan_variant("no-such-variant"));

  // Lines whose lengths and special bytes fall on every side of the 16/32/64-byte block edges.
  std::vector<std::string> lines = {std::string(kGpuLine), std::string(kFallback503Line),
                                    std::string(kLauncherHostLine)};
  for (std::size_t pad = 0; pad < 140; pad += 3) {
    LineSpec spec;
    spec.uri = "\"/" + std::string(pad, 'p') + "\"";
    std::string line = spec.text();
    lines.push_back(line);
    for (char special : {'\x1f', '\\', '\x80', '\x7f', '"'}) {
      std::string changed = line;
      changed[line.find("/p") + 1 + pad / 2] = special;
      lines.push_back(changed);
    }
    lines.push_back(R"({"ts":1,"request":{"host":"chat.localhost"},"resp_headers":{"X-Served-By":[")" +
                    std::string(pad, 'g') + R"(","gpu"]}})");
  }
  for (const std::string& variant : variants) {
    ASSERT_TRUE(classifier_.use_scan_variant(variant)) << variant;
    std::uint64_t fast_before = classifier_.counters().fast_path;
    for (const std::string& line : lines) {
      LineResult result = classifier_.classify(line);
      LineResult reference = classifier_.classify_reference(line);
      if (result.outcome == LineOutcome::kOtherHost) {
        // The pre-scan, which uses the same quote index: it must be sure for the right reason.
        EXPECT_TRUE(classifier_.other_host(line)) << variant << ": " << line;
        EXPECT_EQ(reference.backend, -1) << variant << ": " << line;
        continue;
      }
      EXPECT_EQ(result.outcome, reference.outcome) << variant << ": " << line;
      EXPECT_EQ(result.backend, reference.backend) << variant << ": " << line;
      EXPECT_EQ(result.reason, reference.reason) << variant << ": " << line;
    }
    // The plain lines (about a third) must take the fast path in every variant.
    EXPECT_GT(classifier_.counters().fast_path - fast_before, lines.size() / 4) << variant;
  }
}

TEST_F(ActivityClassifierTest, PreScanNeverSettlesATargetsLineUnderMutation) {
  // The fuzz target's property, on a deterministic sample of mutations (insertions of the
  // tokens that matter to the pre-scan, deletions, byte changes) of lines of ours and of others.
  const std::vector<std::string> tokens = {R"("host")",
                                           R"("request")",
                                           R"(,"host":"chat.localhost")",
                                           R"(,"request":{"host":"chat.localhost"})",
                                           R"("Host":["chat.localhost"],)",
                                           "\\",
                                           "\\u0074",
                                           " ",
                                           "{",
                                           "}",
                                           "[",
                                           "]",
                                           "\"",
                                           ",",
                                           ":",
                                           "1",
                                           R"("www.example.org")",
                                           R"("chat.localhost")"};
  LineSpec other;
  other.host = R"("www.example.org")";
  const std::vector<std::string> seeds = {
      LineSpec{}.text(), other.text(), std::string(kLauncherHostLine),
      R"({"ts":1,"request":{"host":"x"},"resp_headers":{"X-Served-By":["gpu"]}})"};
  std::uint64_t state = 17;
  auto next = [&state](std::size_t below) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>((state >> 33) % below);
  };
  int settled = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string line = seeds[next(seeds.size())];
    for (int edits = 1 + static_cast<int>(next(3)); edits > 0; --edits) {
      const std::size_t at = next(line.size() + 1);
      switch (next(3)) {
        case 0: line.insert(at, tokens[next(tokens.size())]); break;
        case 1: line.erase(at, next(8)); break;
        default:
          if (at < line.size()) line[at] = tokens[next(tokens.size())][0];
      }
    }
    LineResult reference = classifier_.classify_reference(line);
    if (classifier_.other_host(line)) {
      ++settled;
      ASSERT_EQ(reference.backend, -1) << line;
      ASSERT_EQ(classifier_.classify(line).outcome, LineOutcome::kOtherHost) << line;
    } else {
      ASSERT_EQ(classifier_.classify(line).outcome, reference.outcome) << line;
    }
  }
  // The sample must exercise both sides.
  EXPECT_GT(settled, 1000);
  EXPECT_LT(settled, 19000);
}

// The quote index works in 64-byte words (16 and 32 bytes inside); the pre-scan looks at a quote
// and the byte after it, possibly in the next word; the walk reads quote positions listed word by
// word. Each piece below is placed at every offset from 7 to 140 (a top-level key before it grows
// byte by byte), in every scan variant: host keys of ours and of another host, an escaped quote,
// an escaped backslash before an escaped quote, a control character, non-ASCII, a stray quote.
TEST_F(ActivityClassifierTest, EveryPieceAgreesAtEveryBlockEdge) {
  struct Piece {
    std::string_view before;
    std::string_view piece;
    std::string_view after;
    LineOutcome expected;
  };
  constexpr std::string_view kRequest = R"("ts":1,"request":{)";
  constexpr std::string_view kUri = R"("ts":1,"request":{"host":"CHAT.localhost:8080","uri":"/a)";
  constexpr std::string_view kResp = R"(},"resp_headers":{"X-Served-By":["gpu"]}})";
  constexpr std::string_view kUriEnd = R"(b"},"resp_headers":{"X-Served-By":["gpu"]}})";
  const Piece pieces[] = {
      {kRequest, R"("host":"chat.localhost")", kResp, LineOutcome::kActivity},
      {kRequest, R"("host":"www.example.org")", kResp, LineOutcome::kOtherHost},
      {kUri, R"(\")", kUriEnd, LineOutcome::kActivity},
      {kUri, R"(\\\")", kUriEnd, LineOutcome::kActivity},
      {kUri, "\x01", kUriEnd, LineOutcome::kMalformedJson},
      {kUri, "\xc3\xa9", kUriEnd, LineOutcome::kActivity},
      {kUri, "\"", kUriEnd, LineOutcome::kMalformedJson},
  };
  for (const std::string& variant : ActivityClassifier::scan_variants()) {
    ASSERT_TRUE(classifier_.use_scan_variant(variant));
    for (const Piece& piece : pieces) {
      for (std::size_t pad = 0; pad <= 134; ++pad) {
        const std::string line = R"({"p":")" + std::string(pad, 'h') + R"(",)" + std::string(piece.before) +
                                 std::string(piece.piece) + std::string(piece.after);
        ASSERT_EQ(line.compare(pad + 8 + piece.before.size(), piece.piece.size(), piece.piece), 0) << line;
        EXPECT_EQ(classify(line).outcome, piece.expected) << variant << ": " << line;
      }
    }
  }
}

// A line shorter than a block, one of exactly 64 bytes, one whose words are full of quotes (more
// than the walk lists per word without a loop), and one of the follower's longest (64 KiB).
TEST_F(ActivityClassifierTest, ShortFullAndLongLinesTakeTheFastPath) {
  const std::string shortest = R"({"ts":1,"request":{"host":"chat.localhost"},"resp_headers":{}})";
  ASSERT_LT(shortest.size(), 64u);
  std::string one_block = shortest;
  one_block.insert(one_block.find(','), "." + std::string(64 - shortest.size() - 1, '0'));  // ts 1.000
  ASSERT_EQ(one_block.size(), 64u);
  std::string quotes = R"({"ts":1,"request":{"host":"chat.localhost","headers":{"A":[)";
  for (int i = 0; i < 200; ++i) quotes += i == 0 ? R"("")" : R"(,"")";
  quotes += R"(]}},"resp_headers":{"X-Served-By":["","gpu",""]}})";
  LineSpec spec;
  spec.request_headers = R"({"User-Agent":[")" + std::string(60000, 'a') + R"("]})";
  const std::string longest = spec.text();
  ASSERT_LT(longest.size(), std::size_t{64} * 1024);
  for (const std::string& variant : ActivityClassifier::scan_variants()) {
    ASSERT_TRUE(classifier_.use_scan_variant(variant));
    const std::uint64_t fast_before = classifier_.counters().fast_path;
    EXPECT_EQ(classify(shortest).outcome, LineOutcome::kOtherTraffic) << variant;
    EXPECT_EQ(classify(one_block).outcome, LineOutcome::kOtherTraffic) << variant;
    EXPECT_EQ(classify(quotes).outcome, LineOutcome::kActivity) << variant;
    EXPECT_EQ(classify(longest).outcome, LineOutcome::kActivity) << variant;
    EXPECT_EQ(classifier_.counters().fast_path, fast_before + 4) << variant;
    // Cut anywhere near the end, the long line is malformed, not a fast-path decision.
    for (std::size_t cut : {std::size_t{1}, std::size_t{2}, std::size_t{9}, std::size_t{64}}) {
      EXPECT_NE(classify(longest.substr(0, longest.size() - cut)).outcome, LineOutcome::kActivity) << cut;
    }
  }
}

// The walk finds a string's end from the quote index: in the word where the string begins, in a
// later word after words without a quote, or nowhere (the line ends inside the string, also when
// the line fills its last word exactly, where only the index's end mark stops the search).
TEST_F(ActivityClassifierTest, StringsEndAtTheirClosingQuoteFromEveryWordOffset) {
  for (const std::string& variant : ActivityClassifier::scan_variants()) {
    ASSERT_TRUE(classifier_.use_scan_variant(variant));
    for (std::size_t pad = 0; pad < 64; ++pad) {
      for (std::size_t length : {0, 1, 2, 62, 63, 64, 65, 127, 128, 129, 200}) {
        const std::string line = R"({"p":")" + std::string(pad, 'x') +
                                 R"(","ts":1,"request":{"host":"chat.localhost","uri":"/)" +
                                 std::string(length, 'u') + R"("},"resp_headers":{"X-Served-By":["gpu"]}})";
        const std::uint64_t fast_before = classifier_.counters().fast_path;
        const LineResult result = classify(line);
        EXPECT_EQ(result.outcome, LineOutcome::kActivity) << variant << ": " << line;
        EXPECT_EQ(classifier_.counters().fast_path, fast_before + 1) << variant << ": " << line;
      }
    }
    const std::string open = R"({"ts":1,"request":{"host":"chat.localhost","uri":")";
    for (std::size_t size = open.size(); size <= 200; ++size) {
      const std::string line = open + std::string(size - open.size(), 'u');
      const std::uint64_t fast_before = classifier_.counters().fast_path;
      EXPECT_EQ(classify(line).outcome, LineOutcome::kMalformedJson) << variant << ": " << line;
      EXPECT_EQ(classifier_.counters().fast_path, fast_before) << variant << ": " << line;
    }
  }
}

// The walk reads a copy of the line with a '\0' after it instead of checking bounds at each
// punctuation mark: a line cut after any byte (after a colon, a bracket, a digit, a literal's first
// letters, inside a string) is never a fast-path decision and is decided as the reference does.
TEST_F(ActivityClassifierTest, EveryPrefixOfOurLineIsDecidedByTheReference) {
  LineSpec spec;
  spec.request_headers = R"({"User-Agent":["curl/8.0"],"A":[],"B":["x","y"]})";
  spec.resp_headers = R"({"X-Served-By":["gpu"],"Live":[],"N":["1"]},"done":true,"gone":null)";
  const std::string whole = spec.text();
  for (const std::string& variant : ActivityClassifier::scan_variants()) {
    ASSERT_TRUE(classifier_.use_scan_variant(variant));
    for (std::size_t size = 0; size < whole.size(); ++size) {
      const std::uint64_t fast_before = classifier_.counters().fast_path;
      EXPECT_NE(classify(whole.substr(0, size)).outcome, LineOutcome::kActivity) << variant << ": " << size;
      EXPECT_EQ(classifier_.counters().fast_path, fast_before) << variant << ": " << size;
    }
    const std::uint64_t fast_before = classifier_.counters().fast_path;
    EXPECT_EQ(classify(whole).outcome, LineOutcome::kActivity) << variant;
    EXPECT_EQ(classifier_.counters().fast_path, fast_before + 1) << variant;
  }
}

TEST_F(ActivityClassifierTest, ValidJsonInUnusualFormsStillCounts) {
  // Whitespace, escapes and valid UTF-8 take the full parse but mean the same thing.
  std::string spaced = R"( { "ts" : 1700000000.5 , "request" : { "host" : "chat.localhost" } ,
    "resp_headers" : { "X-Served-By" : [ "gpu" ] } } )";
  EXPECT_EQ(classify(spaced).outcome, LineOutcome::kActivity);
  LineSpec spec;
  spec.host = R"("chat\u002elocalhost:1")";
  spec.resp_headers = R"({"X-Served-By":["g\u0070u"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec = LineSpec{};
  spec.request_headers = R"({"User-Agent":["Grüße \"quoted\""]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.request_headers = R"({"User-Agent":["Grüße UptimeRobot"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kIgnored);
  // A line from a later Caddy with more fields and nested objects.
  spec = LineSpec{};
  spec.resp_headers =
      R"({"X-Served-By":["gpu"]},"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"chat"},"bytes_read":0,"extra":[null,true,false,-0.5,[],{}])";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
}

TEST_F(ActivityClassifierTest, DuplicateKeysLastOneWins) {
  std::string line = LineSpec{}.text();
  line.insert(1, R"("ts":"early",)");
  EXPECT_EQ(classify(line).outcome, LineOutcome::kActivity);
  LineSpec spec;
  spec.resp_headers = R"({"X-Served-By":["gpu"],"X-Served-By":["launcher-fallback"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kOtherTraffic);
  spec.resp_headers = R"({"X-Served-By":"gpu","X-Served-By":["gpu"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
}

TEST_F(ActivityClassifierTest, MissingFields) {
  struct Case {
    std::string line;
    std::string_view reason;
  };
  std::vector<Case> cases = {
      {R"({"request":{"host":"chat.localhost"},"resp_headers":{}})", "ts"},
      {R"({"ts":1,"resp_headers":{}})", "request"},
      {R"({"ts":1,"request":{"uri":"/"},"resp_headers":{}})", "request.host"},
      {R"({"ts":1,"request":{"host":"chat.localhost"}})", "resp_headers"},
      {R"({})", "ts"},
  };
  for (const Case& c : cases) {
    LineResult result = classify(c.line);
    EXPECT_EQ(result.outcome, LineOutcome::kMissingField) << c.line;
    EXPECT_EQ(result.reason, c.reason) << c.line;
  }
}

TEST_F(ActivityClassifierTest, WrongTypes) {
  struct Case {
    LineSpec spec;
    std::string_view reason;
  };
  std::vector<Case> cases(12);
  cases[0].spec.ts = R"("1700000000")", cases[0].reason = "ts";
  cases[1].spec.ts = "null", cases[1].reason = "ts";
  cases[2].spec.duration = R"("0.5")", cases[2].reason = "duration";
  cases[3].spec.host = "42", cases[3].reason = "request.host";
  cases[4].spec.host = R"(["chat.localhost"])", cases[4].reason = "request.host";
  cases[5].spec.uri = "{}", cases[5].reason = "request.uri";
  cases[6].spec.method = "true", cases[6].reason = "request.method";
  cases[7].spec.request_headers = R"({"User-Agent":"curl"})", cases[7].reason = "request.headers";
  cases[8].spec.request_headers = R"([])", cases[8].reason = "request.headers";
  cases[9].spec.resp_headers = R"({"X-Served-By":"gpu"})", cases[9].reason = "resp_headers";
  cases[10].spec.resp_headers = R"({"Server":["Caddy",1],"X-Served-By":["gpu"]})",
  cases[10].reason = "resp_headers";
  cases[11].spec.resp_headers = R"(["gpu"])", cases[11].reason = "resp_headers";
  for (const Case& c : cases) {
    LineResult result = classify(c.spec.text());
    EXPECT_EQ(result.outcome, LineOutcome::kWrongType) << c.spec.text();
    EXPECT_EQ(result.reason, c.reason) << c.spec.text();
  }
  EXPECT_EQ(classify(R"({"ts":1,"request":[],"resp_headers":{}})").reason, "request");
}

TEST_F(ActivityClassifierTest, HugeAndOddNumbers) {
  LineSpec spec;
  spec.ts = "123456789012345678901234567890";
  LineResult result = classify(spec.text());
  EXPECT_EQ(result.outcome, LineOutcome::kActivity);
  EXPECT_EQ(result.end_seconds, 123456789012345678901234567890.0);
  spec.ts = "1.7e308";
  EXPECT_EQ(classify(spec.text()).end_seconds, 1.7e308);
  spec.ts = "1E+2";
  EXPECT_EQ(classify(spec.text()).end_seconds, 100.0);
  spec.ts = "18446744073709551615";
  EXPECT_EQ(classify(spec.text()).end_seconds, 18446744073709551615.0);
  spec.ts = "-5";
  spec.duration = "-0.5";
  result = classify(spec.text());
  EXPECT_EQ(result.start_seconds, -4.5);
  // A number that overflows a double is rejected by the JSON parser.
  spec.ts = "1e400";
  EXPECT_EQ(classify(spec.text()).outcome, LineOutcome::kMalformedJson);
  spec.ts = std::string(400, '9');
  EXPECT_EQ(classify(spec.text()).outcome, LineOutcome::kMalformedJson);
  for (const char* bad : {"1.", ".5", "-", "+1", "0x10", "1e", "NaN", "Infinity"}) {
    spec.ts = bad;
    EXPECT_EQ(classify(spec.text()).outcome, LineOutcome::kMalformedJson) << bad;
  }
}

// Digit runs are skipped eight bytes at a time (issue 20): every run length from 1 to 24, in
// the integer and the fraction, ended by every printable byte, the line near its end or not.
// The fast path converts the numbers it reports with from_chars: at every length and decimal point,
// for numbers up to 18 digits (Caddy's timestamps have 17), it must give the reference's double.
// (An exact-division fast path for up to 15 digits was measured and did not pay: issue 20.)
TEST_F(ActivityClassifierTest, FixedFormatNumbersConvertExactlyAtEveryLength) {
  std::uint64_t state = 0x2545f4914f6cdd1dULL;
  const auto next_digit = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<char>('0' + state % 10);
  };
  LineSpec spec;
  for (int digits = 1; digits <= 18; ++digits) {
    for (int integer_digits = 1; integer_digits <= digits; ++integer_digits) {
      for (int round = 0; round < 6; ++round) {
        std::string number;
        for (int i = 0; i < digits; ++i) {
          if (i == integer_digits) number += '.';
          // A leading zero must stand alone in JSON.
          number += (i == 0 && integer_digits > 1) ? static_cast<char>('1' + state % 9) : next_digit();
        }
        spec.ts = number;
        spec.duration = (round % 2 == 0) ? "-" + number : number;
        const LineResult result = classify(spec.text());
        EXPECT_EQ(result.outcome, LineOutcome::kActivity) << number;
        EXPECT_EQ(result.end_seconds, std::stod(number)) << number;
      }
    }
  }
  spec.ts = "-0.0";
  spec.duration = "";
  const LineResult negative_zero = classify(spec.text());
  EXPECT_EQ(negative_zero.outcome, LineOutcome::kActivity);
  EXPECT_TRUE(std::signbit(negative_zero.end_seconds));
}

TEST_F(ActivityClassifierTest, DigitRunsOfEveryLengthEndWhereTheyEnd) {
  LineSpec spec;
  for (std::size_t length = 1; length <= 24; ++length) {
    const std::string digits = "1" + std::string(length - 1, '7');
    for (int c = 0x20; c < 0x7f; ++c) {
      if (c == '"' || c == '\\') continue;
      const std::string after(1, static_cast<char>(c));
      spec.ts = digits + after;
      classify(spec.text());
      spec.ts = "5." + digits + after;
      classify(spec.text());
    }
    // Valid: the walk decides it, with the whole number.
    for (const std::string& ts : {digits, "5." + digits, "-" + digits + "." + digits}) {
      spec.ts = ts;
      const std::uint64_t fast_before = classifier_.counters().fast_path;
      EXPECT_EQ(classify(spec.text()).end_seconds, std::stod(ts)) << ts;
      EXPECT_EQ(classifier_.counters().fast_path, fast_before + 1) << ts;
    }
    // A number that ends the line, as in a torn line.
    classify(R"({"ts":)" + digits);
    classify(R"({"request":{"host":"chat.localhost"},"resp_headers":{},"ts":)" + digits + "}");
  }
}

TEST_F(ActivityClassifierTest, DeepNestingAndLongLinesNeverCrash) {
  std::string deep = R"({"ts":1,"x":)" + std::string(100000, '[') + std::string(100000, ']') +
                     R"(,"request":{"host":"chat.localhost"},"resp_headers":{"X-Served-By":["gpu"]}})";
  EXPECT_EQ(classify(deep).outcome, LineOutcome::kActivity);
  EXPECT_EQ(classify(std::string(100000, '{')).outcome, LineOutcome::kMalformedJson);
}

TEST_F(ActivityClassifierRulesTest, PatternsSeeTheFirstFourKibOfAHugeUserAgent) {
  // libstdc++'s std::regex recurses per character; a 200 KB subject would exhaust the stack.
  LineSpec spec;
  spec.request_headers = R"({"User-Agent":[")" + std::string(200000, 'a') + R"( bot"]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kActivity);
  spec.request_headers = R"({"User-Agent":["a bot )" + std::string(200000, 'a') + R"("]})";
  EXPECT_EQ(outcome(spec), LineOutcome::kIgnored);
}

TEST_F(ActivityClassifierTest, CountersAddUp) {
  const ClassifierCounters& counters = classifier_.counters();
  EXPECT_EQ(counters.by_outcome.size(), 7u);
  for (const char* key :
       {"activity", "ignored", "other", "malformed_json", "missing_field", "wrong_type", "other_host"}) {
    ASSERT_EQ(counters.by_outcome.count(key), 1u) << key;
    EXPECT_EQ(counters.by_outcome.at(key), 0u) << key;
  }
  EXPECT_EQ(counters.activity_by_backend.size(), 3u);
  EXPECT_EQ(counters.ignored_by_backend.size(), 3u);

  classify(kGpuLine);
  classify(kGpuLine);
  classify(kLauncherHostLine);
  classify("{");
  classify(R"({"ts":1})");
  classify(R"({"ts":true})");
  LineSpec monitor;
  monitor.request_headers = R"({"User-Agent":["Pingdom.com_bot"]})";
  classify(monitor.text());

  EXPECT_EQ(counters.lines, 7u);
  EXPECT_EQ(counters.by_outcome.at("activity"), 2u);
  EXPECT_EQ(counters.by_outcome.at("other"), 0u);
  EXPECT_EQ(counters.by_outcome.at("other_host"), 1u);
  EXPECT_EQ(counters.by_outcome.at("malformed_json"), 1u);
  EXPECT_EQ(counters.by_outcome.at("missing_field"), 1u);
  EXPECT_EQ(counters.by_outcome.at("wrong_type"), 1u);
  EXPECT_EQ(counters.by_outcome.at("ignored"), 1u);
  EXPECT_EQ(counters.activity_by_backend, (std::vector<std::uint64_t>{2, 0, 0}));
  EXPECT_EQ(counters.ignored_by_backend, (std::vector<std::uint64_t>{1, 0, 0}));
  // The reference parser neither counts nor changes anything.
  classifier_.classify_reference(kGpuLine);
  classifier_.other_host(kLauncherHostLine);
  EXPECT_EQ(counters.lines, 7u);
}

TEST_F(ActivityClassifierTest, MovedClassifierKeepsCounting) {
  classify(kGpuLine);
  ActivityClassifier moved = std::move(classifier_);
  moved.classify(kGpuLine);
  moved.classify("x");
  EXPECT_EQ(moved.counters().lines, 3u);
  EXPECT_EQ(moved.counters().by_outcome.at("activity"), 2u);
  EXPECT_EQ(moved.counters().by_outcome.at("malformed_json"), 1u);
  EXPECT_EQ(moved.targets().size(), 3u);
  ActivityClassifier other({}, IgnoreRules{});
  other = std::move(moved);
  other.classify(kGpuLine);
  EXPECT_EQ(other.counters().by_outcome.at("activity"), 3u);
  EXPECT_EQ(other.counters().activity_by_backend[0], 3u);
}

TEST(ActivityClassifier, NoTargetsMeansNoActivity) {
  ActivityClassifier classifier({}, IgnoreRules{});
  EXPECT_EQ(classifier.classify(kGpuLine).outcome, LineOutcome::kOtherHost);
  EXPECT_TRUE(classifier.counters().activity_by_backend.empty());
}

TEST(ActivityClassifier, PreScanKnowsEveryHostOfALargeFleet) {
  // Beyond a few targets the pre-scan looks hosts up in a hash set: every spelling of every one
  // of them must still be found, and only other hosts settled.
  std::vector<ActivityTarget> targets;
  for (int i = 0; i < 50; ++i) {
    targets.push_back(
        {"b" + std::to_string(i), "B" + std::to_string(i) + ".Example.org", "l" + std::to_string(i)});
  }
  ActivityClassifier classifier(targets, no_rules());
  for (int i = 0; i < 50; ++i) {
    LineSpec spec;
    spec.host = "\"b" + std::to_string(i) + ".EXAMPLE.org:8443\"";
    spec.resp_headers = R"({"X-Served-By":["l)" + std::to_string(i) + R"("]})";
    EXPECT_FALSE(classifier.other_host(spec.text())) << i;
    LineResult result = classifier.classify(spec.text());
    EXPECT_EQ(result.outcome, LineOutcome::kActivity) << i;
    EXPECT_EQ(result.backend, i);
  }
  LineSpec other;
  other.host = R"("b50.example.org")";
  EXPECT_TRUE(classifier.other_host(other.text()));
  other.host = "\"" + std::string(300, 'b') + "\"";
  EXPECT_TRUE(classifier.other_host(other.text()));
}

TEST(ActivityClassifier, OutcomeNames) {
  EXPECT_EQ(to_string(LineOutcome::kActivity), "activity");
  EXPECT_EQ(to_string(LineOutcome::kIgnored), "ignored");
  EXPECT_EQ(to_string(LineOutcome::kOtherTraffic), "other");
  EXPECT_EQ(to_string(LineOutcome::kMalformedJson), "malformed_json");
  EXPECT_EQ(to_string(LineOutcome::kMissingField), "missing_field");
  EXPECT_EQ(to_string(LineOutcome::kWrongType), "wrong_type");
  EXPECT_EQ(to_string(LineOutcome::kOtherHost), "other_host");
}

TEST(ActivityClassifier, LiveRequestsMeetTheSameIgnoreRules) {
  IgnoreRules rules;
  rules.user_agents = {"Uptime-Kuma"};
  rules.user_agent_patterns = {"^curl/"};
  rules.paths = {"/health", "/metrics*"};
  rules.methods = {"OPTIONS"};
  ActivityClassifier classifier({{"gpu", "chat.example.org", "gpu"}}, rules);
  EXPECT_EQ(classifier.ignore_reason("GET", "/", "Uptime-Kuma/1.23"), "user_agent");
  EXPECT_EQ(classifier.ignore_reason("GET", "/", "curl/7.88.1"), "user_agent");
  EXPECT_EQ(classifier.ignore_reason("GET", "/health?x=1", "Mozilla/5.0"), "path");
  EXPECT_EQ(classifier.ignore_reason("GET", "/metrics/node", "Mozilla/5.0"), "path");
  EXPECT_EQ(classifier.ignore_reason("OPTIONS", "/v1/chat", "Mozilla/5.0"), "method");
  EXPECT_EQ(classifier.ignore_reason("POST", "/v1/chat", "python-httpx/0.27"), "");
  EXPECT_EQ(classifier.ignore_reason("POST", "/v1/chat", ""), "");
}

}  // namespace
}  // namespace unshelver::core
