// Small text helpers shared by the core, the loop code and the web layer. ASCII only: header names,
// host names and config keys are ASCII, and the process never changes its C locale.
#pragma once

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace unshelver::core {

// "Chat.Example.ORG" -> "chat.example.org".
std::string to_lower(std::string_view text);

// Without leading and trailing `blanks`.
std::string_view trim(std::string_view text, std::string_view blanks = " \t\r\n");

// The host of a Host header or an authority: "chat.localhost:18080" -> "chat.localhost",
// "[::1]:8080" -> "::1"; a bare IPv6 address ("::1") stays as it is.
std::string_view host_without_port(std::string_view host);

// Percent-encodes everything but RFC 3986's unreserved characters, for a query value or a path
// segment: "gpu box/1" -> "gpu%20box%2F1".
std::string percent_encode(std::string_view text);

// The value of `name` in a query string ("after=12&backend=gpu"), percent-decoded and with '+'
// read as a space (application/x-www-form-urlencoded); std::nullopt when absent. With repeated
// names, the first one.
std::optional<std::string> query_parameter(std::string_view query, std::string_view name);

// `text` with every occurrence of `from` (not empty) replaced by `to`, left to right; what `to`
// brings in is not searched again.
std::string replace_all(std::string text, std::string_view from, std::string_view to);

// The value of cookie `name` in a Cookie header ("a=1; unshelver_session=v1.x"), as sent (RFC 6265
// §5.4: "; "-separated name=value pairs; a value may be wrapped in double quotes, which are
// removed); std::nullopt when absent. With repeated names, the first one.
std::optional<std::string> cookie_value(std::string_view cookie_header, std::string_view name);

// The text of an errno value ("No such file or directory"); by default of errno as it is at the
// call. Thread-safe, unlike std::strerror, which may use a static buffer: this is called from
// uv_queue_work threads too.
std::string errno_text(int error = errno);

// `text` made safe for one line of a log or a terminal: every control character becomes visible
// instead of acting, so that text from outside (a cloud's fault message, a client's path) can
// neither start a forged line nor send escape sequences to the terminal. A newline, carriage
// return and tab are written as "\n", "\r" and "\t", other C0 controls and DEL as "\x1b", the
// C1 controls (U+0080 to U+009F, which some terminals obey like ESC sequences) and the line and
// paragraph separators U+2028 and U+2029 as "\u0085", and a byte that is not part of valid UTF-8
// as "\xff". Everything else, backslashes included, is kept as it is: the aim is that nothing
// acts, not that the original can be recovered.
std::string escape_control_characters(std::string_view text);

// A duration in its two largest units: "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h" ("2 h", not
// "2 h 0 min"); negative durations read "0 s". Unshelver.duration in templates/common.js writes
// the same, so that a page reads the same with and without its script.
std::string human_duration(std::chrono::seconds duration);

}  // namespace unshelver::core
