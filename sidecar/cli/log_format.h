// The one log line format of every command that logs (run, demo, dns): a UTC timestamp, the
// level, the logger's name (a backend's, "caddy", or "unshelver") and the message with its
// control characters escaped (core::escape_control_characters). Escaping here, in the formatter
// every sink uses, covers every log line at once: a cloud's fault message, a client's path or a
// Caddy error cannot start a forged line or send escape sequences to a terminal, whichever call
// logged it.
#pragma once

#include <spdlog/formatter.h>

#include <memory>

namespace unshelver::app {

// A formatter for that line, for a sink or a logger.
std::unique_ptr<spdlog::formatter> make_log_formatter();

// Gives every registered logger (and, through their shared sinks, every clone made later) that
// formatter.
void use_log_format();

}  // namespace unshelver::app
