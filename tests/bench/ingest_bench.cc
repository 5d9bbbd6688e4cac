// ingest_bench: the C++ half of tests/bench/ingest_bench.sh (a benchmark, not a test).
//
//   ingest_bench generate FILE MEGABYTES   writes realistic Caddy 2.6 access-log lines
//   ingest_bench classify FILE             classifies every line of FILE, prints bytes/s
//
// The generated lines mix the shapes of caddy-facts §4a: a GPU backend and a second backend with
// their labels, fallback answers, the launcher, unrelated sites, browsers and uptime monitors,
// statuses with their levels, response headers in random order, redacted credentials. A few
// lines hold escapes or UTF-8 (these take the classifier's full parse) and a few are broken.
// `classify` reads like the log follower does: large reads, lines split at '\n', a carry-over
// for the partial last line.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "activity/classifier.h"

namespace {

using unshelver::core::ActivityClassifier;
using unshelver::core::ActivityTarget;
using unshelver::core::IgnoreRules;

// splitmix64: fast, and the same file for the same seed.
struct Random {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  template <typename T, std::size_t N>
  const T& pick(const T (&items)[N]) {
    return items[below(N)];
  }
};

constexpr const char* kUserAgents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148",
    "curl/7.88.1",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "OpenAI/Python 1.23.6",
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Uptime-Kuma/1.23.11",
    "kube-probe/1.29",
};
constexpr const char* kMethods[] = {"GET", "GET", "GET", "GET", "POST", "POST", "OPTIONS", "HEAD"};
constexpr const char* kPaths[] = {
    "/",
    "/v1/chat/completions",
    "/v1/models",
    "/api/generate",
    "/static/app.3f9a1c.js",
    "/static/style.css",
    "/favicon.ico",
    "/healthz",
    "/login?next=%2Fchat",
    "/c/8d1e6b0a-2f4c-4a5e-9b7d-1c2e3f4a5b6c?model=llama3&t=17",
};
constexpr const char* kContentTypes[] = {"text/html; charset=utf-8", "application/json",
                                         "text/event-stream",        "text/plain",
                                         "application/javascript",   "image/x-icon"};

struct Site {
  const char* host;
  const char* labels[3];  // X-Served-By values this site answers with (nullptr: none)
};
constexpr Site kSites[] = {
    {"chat.example.org", {"gpu", "gpu", "launcher-fallback"}},
    {"chat.example.org:8443", {"gpu", "fallback-static", "launcher"}},
    {"draw.example.org", {"sd", "sd", "launcher-fallback"}},
    {"launcher.example.org", {nullptr, nullptr, nullptr}},
    {"www.example.org", {nullptr, nullptr, nullptr}},
    {"blog.example.org", {nullptr, nullptr, nullptr}},
    {"git.example.org", {nullptr, nullptr, nullptr}},
};

void append_header(std::string& out, bool& first, const char* name,
                   std::initializer_list<std::string_view> values) {
  out += first ? "\"" : ",\"";
  first = false;
  out += name;
  out += "\":[";
  bool first_value = true;
  for (std::string_view value : values) {
    out += first_value ? "\"" : ",\"";
    first_value = false;
    out += value;
    out += '"';
  }
  out += ']';
}

void append_line(std::string& out, Random& random, std::uint64_t index) {
  const Site& site = random.pick(kSites);
  const char* method = random.pick(kMethods);
  std::string_view agent = random.pick(kUserAgents);
  std::string_view path = random.pick(kPaths);
  std::uint64_t roll = random.below(1000);
  const char* label = site.labels[random.below(3)];
  int status = roll < 900 ? 200 : roll < 950 ? 304 : roll < 980 ? 404 : roll < 990 ? 502 : 503;
  double ts =
      1795361756.0 + static_cast<double>(index) * 0.0037 + static_cast<double>(random.below(1000)) * 1e-7;
  double duration = static_cast<double>(random.below(5'000'000)) * 1e-9 + (roll < 20 ? 4.0 : 0.0);
  char numbers[160];

  out += status >= 400 ? R"({"level":"error","ts":)" : R"({"level":"info","ts":)";
  std::snprintf(numbers, sizeof numbers, "%.7f", ts);
  out += numbers;
  out += R"(,"logger":"http.log.access.log1","msg":"handled request","request":{"remote_ip":"203.0.113.)";
  out += std::to_string(random.below(255));
  out += R"(","remote_port":")";
  out += std::to_string(1024 + random.below(60000));
  out += R"(","proto":")";
  out += random.below(3) == 0 ? "HTTP/2.0" : "HTTP/1.1";
  out += R"(","method":")";
  out += method;
  out += R"(","host":")";
  out += site.host;
  out += R"(","uri":")";
  if (roll == 999) {
    out += "/caf\xc3\xa9/men\xc3\xbc";  // raw UTF-8: the full parse
  } else {
    out += path;
  }
  out += R"(","headers":{)";
  bool first = true;
  if (roll == 998) {
    append_header(out, first, "User-Agent",
                  {R"(Mozilla/5.0 \"quoted\" agent)"});  // an escape: the full parse
  } else {
    append_header(out, first, "User-Agent", {agent});
  }
  append_header(
      out, first, "Accept",
      {random.below(2) ? "*/*" : "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"});
  if (random.below(2)) append_header(out, first, "Accept-Encoding", {"gzip, deflate, br"});
  if (random.below(2)) append_header(out, first, "Accept-Language", {"en-US,en;q=0.9,de;q=0.8"});
  if (random.below(4) == 0) append_header(out, first, "Cookie", {});
  if (std::string_view(method) == "POST") {
    append_header(out, first, "Authorization", {});
    append_header(out, first, "Content-Type", {"application/json"});
    append_header(out, first, "Content-Length", {std::to_string(random.below(9000))});
  }
  out += R"(}},"user_id":"","duration":)";
  std::snprintf(numbers, sizeof numbers, "%.9f", duration);
  out += numbers;
  out += R"(,"size":)";
  out += std::to_string(random.below(40000));
  out += R"(,"status":)";
  out += std::to_string(status);
  out += R"(,"resp_headers":{)";

  // Go writes maps in random order: rotate the header list.
  std::string content_length = std::to_string(random.below(40000));
  std::string_view content_type = random.pick(kContentTypes);
  std::size_t count = label != nullptr ? 6 : 5;
  std::size_t rotate = random.below(count);
  first = true;
  for (std::size_t i = 0; i < count; ++i) {
    switch ((i + rotate) % count) {
      case 0: append_header(out, first, "Server", {"Caddy", "uvicorn"}); break;
      case 1: append_header(out, first, "Date", {"Sun, 22 Nov 2026 15:35:56 GMT"}); break;
      case 2: append_header(out, first, "Content-Type", {content_type}); break;
      case 3: append_header(out, first, "Content-Length", {content_length}); break;
      case 4: append_header(out, first, "Vary", {"Accept-Encoding"}); break;
      case 5: append_header(out, first, "X-Served-By", {label}); break;
    }
  }
  out += "}}";
  if (roll == 997) out.resize(out.size() - 37);  // a torn line, as after a crash mid-write
  out += '\n';
}

int generate(const char* path, std::uint64_t megabytes) {
  FILE* file = std::fopen(path, "wb");
  if (file == nullptr) {
    std::perror(path);
    return 1;
  }
  const std::uint64_t target = megabytes * 1024 * 1024;
  Random random{42};
  std::string buffer;
  buffer.reserve(17 << 20);
  std::uint64_t written = 0;
  std::uint64_t index = 0;
  while (written < target) {
    buffer.clear();
    while (buffer.size() < (16u << 20)) append_line(buffer, random, index++);
    if (std::fwrite(buffer.data(), 1, buffer.size(), file) != buffer.size()) {
      std::perror(path);
      std::fclose(file);
      return 1;
    }
    written += buffer.size();
  }
  if (std::fclose(file) != 0) {
    std::perror(path);
    return 1;
  }
  std::printf("generated %llu lines, %llu bytes\n", static_cast<unsigned long long>(index),
              static_cast<unsigned long long>(written));
  return 0;
}

int classify(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::perror(path);
    return 1;
  }
  IgnoreRules rules;  // the default monitor list
  rules.paths = {"/healthz"};
  rules.methods = {"OPTIONS"};
  ActivityClassifier classifier({{"chat", "chat.example.org", "gpu"}, {"draw", "draw.example.org", "sd"}},
                                rules);

  constexpr std::size_t kReadSize = 256 << 10;  // small enough to stay in L2 while it is classified
  std::vector<char> buffer(2 * kReadSize);
  std::size_t carry = 0;
  std::uint64_t bytes = 0;
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (buffer.size() - carry < kReadSize) buffer.resize(carry + kReadSize);
    ssize_t got = ::read(fd, buffer.data() + carry, kReadSize);
    if (got < 0) {
      std::perror(path);
      ::close(fd);
      return 1;
    }
    if (got == 0) break;
    bytes += static_cast<std::uint64_t>(got);
    const char* begin = buffer.data();
    const char* end = begin + carry + static_cast<std::size_t>(got);
    const char* line = begin;
    while (const void* found = std::memchr(line, '\n', static_cast<std::size_t>(end - line))) {
      const char* newline = static_cast<const char*>(found);
      classifier.classify(std::string_view(line, static_cast<std::size_t>(newline - line)));
      line = newline + 1;
    }
    carry = static_cast<std::size_t>(end - line);
    std::memmove(buffer.data(), line, carry);
  }
  if (carry > 0) classifier.classify(std::string_view(buffer.data(), carry));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);

  const auto& counters = classifier.counters();
  std::printf("classifier: %llu bytes, %llu lines in %.3f s: %.0f MB/s\n",
              static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(counters.lines),
              seconds, static_cast<double>(bytes) / seconds / 1e6);
  const double lines = static_cast<double>(counters.lines ? counters.lines : 1);
  std::printf("  pre-scan (other hosts): %llu lines (%.2f%%)\n",
              static_cast<unsigned long long>(counters.prescan),
              100.0 * static_cast<double>(counters.prescan) / lines);
  std::printf("  fast walk: %llu lines (%.2f%%)\n", static_cast<unsigned long long>(counters.fast_path),
              100.0 * static_cast<double>(counters.fast_path) / lines);
  for (const auto& [name, count] : counters.by_outcome) {
    std::printf("  %-15s %llu\n", name.c_str(), static_cast<unsigned long long>(count));
  }
  std::printf("  activity by backend: chat %llu, draw %llu\n",
              static_cast<unsigned long long>(counters.activity_by_backend[0]),
              static_cast<unsigned long long>(counters.activity_by_backend[1]));
  std::printf("bytes_per_second=%.0f\n", static_cast<double>(bytes) / seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string_view(argv[1]) == "generate") {
    return generate(argv[2], std::strtoull(argv[3], nullptr, 10));
  }
  if (argc == 3 && std::string_view(argv[1]) == "classify") return classify(argv[2]);
  std::fprintf(stderr, "usage: ingest_bench generate FILE MEGABYTES | ingest_bench classify FILE\n");
  return 2;
}
