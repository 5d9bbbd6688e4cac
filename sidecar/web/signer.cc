#include "web/signer.h"

#include <cstdint>
#include <utility>

#include "base/crypto.h"

namespace unshelver::core {

namespace {

constexpr std::string_view kVersion = "v1";

// A cookie issued by us is about 80 characters long (10 digits, 22 for a 16-byte nonce, 43 for
// the MAC, 3 dots). Anything much longer is refused before any parsing or hashing, so that a
// client cannot make us hash large inputs.
constexpr std::size_t kMaxCookieBytes = 256;

// The base64url length of a SHA-256 MAC without padding: ceil(32 * 4 / 3).
constexpr std::size_t kMacTextBytes = 43;

using Clock = std::chrono::system_clock;

// The latest whole second that Clock::time_point can represent (about the year 2262 with
// nanosecond ticks); a later expiry could not be converted without overflow.
std::int64_t max_expiry_seconds() {
  return std::chrono::floor<std::chrono::seconds>(Clock::time_point::max()).time_since_epoch().count();
}

// Parses canonical decimal digits (no sign, no leading zero) no greater than max_expiry_seconds().
std::optional<std::int64_t> parse_expiry(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  const std::int64_t limit = max_expiry_seconds();
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const int digit = c - '0';
    if (value > (limit - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::string session_message(std::string_view expires_text, std::string_view nonce_text,
                            std::string_view binding) {
  std::string message;
  message.reserve(kVersion.size() + expires_text.size() + nonce_text.size() + binding.size() + 3);
  message.append(kVersion).append("|").append(expires_text).append("|").append(nonce_text).append("|");
  message.append(binding);
  return message;
}

}  // namespace

Signer::Signer(std::string_view key)
    : session_key_(to_bytes(hmac_sha256(key, "unshelver/session"))),
      form_key_(to_bytes(hmac_sha256(key, "unshelver/form"))),
      usable_(!key.empty()) {}

std::string Signer::issue_session(Clock::time_point expires, std::string_view nonce,
                                  std::string_view binding) const {
  // A time before 1970 is written as 0, which has passed long ago: the cookie stays well-formed
  // and is simply expired.
  std::int64_t seconds = std::chrono::floor<std::chrono::seconds>(expires).time_since_epoch().count();
  if (seconds < 0) seconds = 0;
  const std::string expires_text = std::to_string(seconds);
  const std::string nonce_text = base64url_encode(nonce);
  const std::string mac = base64url_encode(
      to_bytes(hmac_sha256(session_key_, session_message(expires_text, nonce_text, binding))));

  std::string cookie;
  cookie.reserve(kVersion.size() + expires_text.size() + nonce_text.size() + mac.size() + 3);
  cookie.append(kVersion).append(".").append(expires_text).append(".").append(nonce_text).append(".");
  cookie.append(mac);
  return cookie;
}

std::optional<Signer::Session> Signer::verify_session(std::string_view cookie_value, std::string_view binding,
                                                      Clock::time_point now) const {
  if (!usable_ || cookie_value.size() > kMaxCookieBytes) return std::nullopt;

  // Exactly four parts separated by dots; none of the parts can contain a dot itself.
  std::string_view parts[4];
  std::string_view rest = cookie_value;
  for (int i = 0; i < 3; ++i) {
    const std::size_t dot = rest.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    parts[i] = rest.substr(0, dot);
    rest.remove_prefix(dot + 1);
  }
  if (rest.find('.') != std::string_view::npos) return std::nullopt;
  parts[3] = rest;
  const std::string_view version = parts[0];
  const std::string_view expires_text = parts[1];
  const std::string_view nonce_text = parts[2];
  const std::string_view mac_text = parts[3];

  if (version != kVersion) return std::nullopt;
  const std::optional<std::int64_t> expires_seconds = parse_expiry(expires_text);
  if (!expires_seconds) return std::nullopt;
  std::optional<std::string> nonce = base64url_decode(nonce_text);
  if (!nonce || nonce->empty()) return std::nullopt;
  if (mac_text.size() != kMacTextBytes) return std::nullopt;
  const std::optional<std::string> mac = base64url_decode(mac_text);
  if (!mac) return std::nullopt;

  const std::string expected =
      to_bytes(hmac_sha256(session_key_, session_message(expires_text, nonce_text, binding)));
  if (!constant_time_equal(*mac, expected)) return std::nullopt;

  // The expiry is checked only after the MAC: before that, it is just a number a client typed.
  const Clock::time_point expires{std::chrono::seconds(*expires_seconds)};
  if (expires <= now) return std::nullopt;
  return Session{std::move(*nonce), expires};
}

std::string Signer::form_token(std::string_view purpose, std::string_view context) const {
  std::string message;
  message.reserve(purpose.size() + context.size() + 1);
  message.append(purpose).append("|").append(context);
  return base64url_encode(to_bytes(hmac_sha256(form_key_, message)));
}

bool Signer::verify_form_token(std::string_view token, std::string_view purpose,
                               std::string_view context) const {
  if (!usable_ || token.empty() || context.empty()) return false;
  // The expected token always has 43 characters, so comparing the texts (rather than decoded
  // bytes) leaks nothing secret, and base64url_encode is canonical, so a token that differs only
  // in its unused trailing bits does not match.
  return constant_time_equal(token, form_token(purpose, context));
}

}  // namespace unshelver::core
