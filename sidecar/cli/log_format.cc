#include "cli/log_format.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "base/text.h"
#include "base/time_format.h"

namespace unshelver::app {

namespace {

// The message, escaped: "%*" in the pattern below takes the place of spdlog's "%v".
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm& /*time*/,
              spdlog::memory_buf_t& destination) override {
    const std::string escaped =
        core::escape_control_characters(std::string_view(message.payload.data(), message.payload.size()));
    destination.append(escaped.data(), escaped.data() + escaped.size());
  }

  std::unique_ptr<spdlog::custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& destination) override {
    const auto milliseconds =
        std::chrono::duration_cast<std::chrono::milliseconds>(message.time.time_since_epoch()).count();
    const spdlog::string_view_t level = spdlog::level::to_string_view(message.level);
    const std::string line =
        json_log_line(milliseconds, std::string_view(level.data(), level.size()),
                      std::string_view(message.logger_name.data(), message.logger_name.size()),
                      std::string_view(message.payload.data(), message.payload.size()));
    destination.append(line.data(), line.data() + line.size());
    destination.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

// The main logger's name, and the Caddy router's: every other logger is a backend's (driver.cc).
constexpr std::string_view kMainLogger = "unshelver";
constexpr std::string_view kCaddyLogger = "caddy";
// A backend name or topic longer than this is no prefix but part of the message.
constexpr std::size_t kMostPrefixBytes = 64;

// "[name] rest" → name, and the message after it.
std::optional<std::string_view> take_backend_prefix(std::string_view& message) {
  if (message.empty() || message.front() != '[') return std::nullopt;
  const std::size_t close = message.find("] ");
  if (close == std::string_view::npos || close < 2 || close > kMostPrefixBytes) return std::nullopt;
  const std::string_view name = message.substr(1, close - 1);
  if (name.find_first_of(" []") != std::string_view::npos) return std::nullopt;
  message.remove_prefix(close + 2);
  return name;
}

// "topic: rest" → topic, for a topic of one word (letters, digits, '_', '-', '.').
std::optional<std::string_view> topic_of(std::string_view message) {
  const std::size_t colon = message.find(": ");
  if (colon == std::string_view::npos || colon == 0 || colon > kMostPrefixBytes) return std::nullopt;
  const std::string_view topic = message.substr(0, colon);
  for (const char c : topic) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-' || c == '.';
    if (!word) return std::nullopt;
  }
  return topic;
}

}  // namespace

std::optional<core::LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return core::LogFormat::kText;
  if (text == "json") return core::LogFormat::kJson;
  return std::nullopt;
}

std::string json_log_line(std::int64_t milliseconds_since_epoch, std::string_view level,
                          std::string_view logger, std::string_view message) {
  nlohmann::ordered_json line;
  // format_rfc3339 writes microseconds ("...:14.123456Z"); three digits are enough for logs.
  std::string time = core::format_rfc3339(
      std::chrono::system_clock::time_point(std::chrono::milliseconds(milliseconds_since_epoch)));
  if (time.size() > 4) time = time.substr(0, time.size() - 4) + "Z";
  line["time"] = time;
  line["level"] = std::string(level);
  std::optional<std::string_view> backend = take_backend_prefix(message);
  if (!backend && logger != kMainLogger && logger != kCaddyLogger && !logger.empty()) backend = logger;
  if (logger == kCaddyLogger) line["logger"] = std::string(logger);
  if (backend) line["backend"] = std::string(*backend);
  if (std::optional<std::string_view> topic = topic_of(message)) line["event"] = std::string(*topic);
  line["message"] = std::string(message);
  // error_handler_t::replace: invalid UTF-8 becomes U+FFFD instead of an exception (the loop
  // never throws); dump() escapes every control character (RFC 8259 section 7).
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::unique_ptr<spdlog::formatter> make_log_formatter(core::LogFormat format) {
  if (format == core::LogFormat::kJson) return std::make_unique<JsonFormatter>();
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  // UTC timestamps, like the event log; %n is the backend's name in its lines.
  formatter->add_flag<EscapedMessage>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ [%n] %*");
  return formatter;
}

void use_log_format(core::LogFormat format) {
  spdlog::set_formatter(make_log_formatter(format));
}

}  // namespace unshelver::app
