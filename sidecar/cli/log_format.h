// The log line formats of every command that logs (run, demo, dns).
//
// Text, the default: a UTC timestamp, the level, the logger's name (a backend's, "caddy", or
// "unshelver") and the message with its control characters escaped (core::escape_control_characters).
// Escaping here, in the formatter every sink uses, covers every log line at once: a cloud's fault
// message, a client's path or a Caddy error cannot start a forged line or send escape sequences to
// a terminal, whichever call logged it.
//
// JSON (log_format: json, --log-format json): one object a line for journald and log shippers,
//   {"time":"2026-12-07T09:28:14.123Z","level":"warn","backend":"gpu","event":"wake","message":"wake: ..."}
// time is RFC 3339 in UTC with milliseconds; backend is the backend's logger, or the "[name] " that
// starts a message of the main logger (and is then left out of message); event is the "topic: "
// that starts a message ("SIGHUP", "openstack", "caddy"), when it does; logger is "caddy" for the
// Caddy router's lines. Control characters are escaped as JSON requires (RFC 8259 section 7) and
// invalid UTF-8 becomes U+FFFD, so that every line parses.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace unshelver::app {

// "text" or "json" (--log-format); nullopt for anything else.
std::optional<core::LogFormat> parse_log_format(std::string_view text);

// A formatter for that line, for a sink or a logger.
std::unique_ptr<spdlog::formatter> make_log_formatter(core::LogFormat format = core::LogFormat::kText);

// Gives every registered logger (and, through their shared sinks, every clone made later) that
// formatter.
void use_log_format(core::LogFormat format = core::LogFormat::kText);

// Pure: the JSON line of one log message, without its newline (the formatter above adds it).
// `milliseconds_since_epoch` is the message's time.
std::string json_log_line(std::int64_t milliseconds_since_epoch, std::string_view level,
                          std::string_view logger, std::string_view message);

}  // namespace unshelver::app
