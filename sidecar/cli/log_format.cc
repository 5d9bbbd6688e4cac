#include "cli/log_format.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "base/text.h"

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

}  // namespace

std::unique_ptr<spdlog::formatter> make_log_formatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  // UTC timestamps, like the event log; %n is the backend's name in its lines.
  formatter->add_flag<EscapedMessage>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ [%n] %*");
  return formatter;
}

void use_log_format() {
  spdlog::set_formatter(make_log_formatter());
}

}  // namespace unshelver::app
