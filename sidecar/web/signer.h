// Signed, expiring session cookies and anti-forgery (form) tokens. Pure: the caller supplies the
// wall-clock time and the random nonce, so nothing here reads a clock or a random source.
//
// Flow: after the admin proves the control token, the web layer issues a session cookie
//
//   v1.<expires, Unix seconds>.<nonce, base64url>.<mac, base64url>
//   mac = HMAC-SHA256(session key, "v1|" + expires + "|" + nonce + "|" + binding)
//
// where `expires` and `nonce` are exactly the texts that appear in the cookie (the nonce in its
// base64url form). The binding is not in the cookie: the verifier supplies it again (for example
// a digest of the current control token), so that changing the control token ends every session.
// Because the texts of expires (digits) and nonce (base64url) cannot contain '|', the MAC input
// splits in exactly one way.
//
// Each form rendered for the admin or a visitor carries form_token(purpose, context); a POST is
// accepted only with the token that matches the cookie it arrived with, so another site cannot
// forge the request (it can make the browser send the cookie, but it cannot read the token).
//
// The two kinds of token are signed with different keys, derived from app.secret_key with
// HMAC(secret_key, "unshelver/session") and HMAC(secret_key, "unshelver/form"): even if a form
// message were chosen to equal a session message, its token would not be a valid session MAC, and
// the other way round. MACs are compared in constant time (base/crypto.h).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace unshelver::core {

class Signer {
 public:
  // `key` is app.secret_key (any length of at least 1; the config checks its strength with
  // secret_weakness()). An empty key is a programming error: such a Signer still issues tokens,
  // but verifies none, so that a missing secret can never make forged tokens valid.
  explicit Signer(std::string_view key);

  // The cookie value for a session that ends at `expires` (rounded down to a whole second).
  // `nonce` is raw random bytes (16) from the caller; it identifies the session and is what the
  // session's form tokens are bound to. `binding` ties the session to outside state (see above).
  std::string issue_session(std::chrono::system_clock::time_point expires, std::string_view nonce,
                            std::string_view binding) const;

  struct Session {
    std::string nonce;  // the raw bytes given to issue_session
    std::chrono::system_clock::time_point expires;
  };

  // The session in `cookie_value`, or nullopt for anything malformed (wrong version, extra or
  // missing parts, non-canonical numbers or base64url, oversized input), a wrong MAC, a different
  // `binding`, or a session that has ended (expires <= now).
  std::optional<Session> verify_session(std::string_view cookie_value, std::string_view binding,
                                        std::chrono::system_clock::time_point now) const;

  // An anti-forgery token: base64url(HMAC(form key, purpose + "|" + context)). `purpose` names the
  // form (a constant of the code, e.g. "wake" or "control"); `context` is what the token is bound
  // to: the session nonce for the /control forms, the visitor cookie's value for the public wake
  // form. A token is therefore useless without the cookie it belongs to.
  std::string form_token(std::string_view purpose, std::string_view context) const;

  // Whether `token` is form_token(purpose, context), compared in constant time. False when token
  // or context is empty: an empty context means the request carried no cookie, and a token bound
  // to "no cookie" would protect nothing.
  bool verify_form_token(std::string_view token, std::string_view purpose, std::string_view context) const;

 private:
  std::string session_key_;  // HMAC(key, "unshelver/session"), 32 bytes
  std::string form_key_;     // HMAC(key, "unshelver/form"), 32 bytes
  bool usable_;              // false for an empty key
};

}  // namespace unshelver::core
