// AccessControl: who may do what on Unshelver's HTTP surface, and how often.
//
// Admins authenticate with the control token, either once on the login form, which sets a signed,
// expiring session cookie (HttpOnly, SameSite=Strict, Secure behind https), or on every request
// as `Authorization: Bearer <token>` (scripts and the CLI). The token is compared in constant
// time, never read from a URL (Caddy logs URLs; it redacts the Authorization and Cookie headers),
// and never logged. Failed attempts are rate limited per client, but the right token is always
// accepted: it is compared first, and only wrong ones count against their client and are refused
// once it is over the limit, so that nobody who shares the admin's address (every local process
// shares 127.0.0.1) can lock the admin out. Guessing is stopped by the token's strength (at least
// 16 characters, 32 random ones in production); the limit keeps failures from flooding the audit
// trail. Changing the token ends every session, because sessions are bound to a digest of it.
// Logout is remembered across restarts (web/revocations.h).
//
// Every state-changing form carries an anti-forgery token bound to a cookie the page set: the
// session for /control, a random visitor cookie for the public wake and login forms. Both cookies
// are SameSite=Strict, so a form on another site never comes with one and is refused.
//
// Clients are told apart by address. Behind Caddy the visitor's address is the last
// X-Forwarded-For entry, the one Caddy itself appended, believed only when the peer is the proxy
// (web/proxy_trust.h); from any other peer the client is the peer itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "config/config.h"
#include "uv/http_types.h"
#include "web/proxy_trust.h"
#include "web/rate_limiter.h"
#include "web/revocations.h"
#include "web/signer.h"

namespace unshelver::web {

inline constexpr std::string_view kSessionCookie = "unshelver_session";
inline constexpr std::string_view kVisitorCookie = "unshelver_visitor";
inline constexpr std::string_view kFormTokenField = "form_token";

class AccessControl {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using SteadyTime = std::chrono::steady_clock::time_point;

  // `signing_key` signs sessions and form tokens: app.secret_key, or a random key when none is
  // configured (sessions then end when the daemon restarts). `revocations_file` keeps the
  // sessions that logout ended (sessions.json in the state directory); empty: in memory only.
  AccessControl(const core::Config& config, std::string_view signing_key, std::string revocations_file = "");

  // A control token is configured; without one, nobody is an admin.
  bool control_enabled() const { return !control_token_.empty(); }

  enum class Via { kNone, kBearer, kSession };
  struct Caller {
    Via via = Via::kNone;
    std::string session_nonce;         // for Via::kSession: what its form tokens are bound to
    WallTime session_expires;          // for Via::kSession
    bool bad_bearer = false;           // an Authorization header was sent but did not match
    bool bearer_rate_limited = false;  // ... and was not even checked: too many failures
    std::chrono::milliseconds retry_after{0};
    bool admin() const { return via != Via::kNone; }
  };
  // Who sends this request. A wrong bearer token counts as a failed attempt of its client.
  Caller identify(const io::HttpRequest& request, WallTime now, SteadyTime steady_now);

  enum class LoginResult { kOk, kWrongToken, kRateLimited, kDisabled };
  struct Login {
    LoginResult result = LoginResult::kWrongToken;
    std::string set_cookie;                    // for kOk: the session cookie
    std::chrono::milliseconds retry_after{0};  // for kRateLimited
  };
  Login login(const io::HttpRequest& request, std::string_view token, WallTime now, SteadyTime steady_now);
  // Ends the caller's session (also server-side, so a copied cookie stops working too) and
  // returns the Set-Cookie value that deletes it in the browser.
  std::string logout(const Caller& caller, const io::HttpRequest& request, WallTime now);

  // Anti-forgery tokens. For a session: bound to its nonce. For the public forms: bound to the
  // visitor cookie, which visitor_cookie() creates when the request has none.
  std::string session_form_token(const Caller& caller) const;
  bool session_form_token_valid(const Caller& caller, const io::HttpRequest& request) const;
  struct Visitor {
    std::string id;          // the visitor cookie's value
    std::string set_cookie;  // non-empty when the response must set it
  };
  Visitor visitor(const io::HttpRequest& request) const;
  std::string visitor_form_token(const Visitor& visitor, std::string_view purpose) const;
  bool visitor_form_token_valid(const io::HttpRequest& request, std::string_view purpose) const;

  // The public wake's limits: per client, and the global cool-down between wakes that start a
  // sleeping backend. Each returns how long to wait, or 0 when the request may go on.
  std::chrono::milliseconds take_wake_allowance(const io::HttpRequest& request, SteadyTime now);
  std::chrono::milliseconds start_cooldown(SteadyTime now);

  // The client's address (see the header comment).
  std::string client_address(const io::HttpRequest& request) const;
  // The peer is the proxy Unshelver is configured behind, whose X-Forwarded-* headers count.
  bool from_proxy(const io::HttpRequest& request) const;
  // A client on this machine that did not come through a proxy (Caddy adds X-Forwarded-For to
  // every request it proxies, so a visitor never passes; nor does the proxy socket).
  static bool is_local(const io::HttpRequest& request);
  // Served to the visitor over https: the proxy terminated TLS and said so in X-Forwarded-Proto.
  bool is_https(const io::HttpRequest& request) const;
  // The form field or query parameter `name` of a POST with an urlencoded body.
  static std::optional<std::string> form_field(const io::HttpRequest& request, std::string_view name);

  struct Stats {
    std::uint64_t logins = 0;
    std::uint64_t login_failures = 0;      // wrong tokens, on the form or as bearer
    std::uint64_t login_rate_limited = 0;  // wrong tokens refused past the limit (429)
    std::uint64_t wake_rate_limited = 0;
    std::uint64_t wake_cooldown_refused = 0;
    std::uint64_t sessions_revoked = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  std::string cookie(std::string_view name, std::string_view value, std::chrono::seconds max_age,
                     const io::HttpRequest& request) const;
  // The control token check shared by the login form and bearer tokens: a constant-time
  // comparison, then for a wrong token the per-client limit; a wrong token counts against its
  // client unless that client is over its limit already.
  struct TokenCheck {
    bool ok = false;
    bool rate_limited = false;                 // wrong, and its client over the limit
    std::chrono::milliseconds retry_after{0};  // for rate_limited
  };
  TokenCheck check_token(const io::HttpRequest& request, std::string_view token, SteadyTime steady_now);
  std::optional<core::Signer::Session> valid_session(const io::HttpRequest& request, WallTime now);
  // Reads revocations_file_ at start; writes it after a logout.
  void load_revocations();
  void save_revocations() const;
  // What sessions are bound to: the control token's digest and the revocation generation.
  std::string binding() const;

  std::string control_token_;
  std::string token_digest_;  // a digest of the control token, part of the binding
  core::Signer signer_;
  std::chrono::minutes session_lifetime_;
  core::RateLimiter login_limiter_;
  core::RateLimiter wake_limiter_;
  core::Cooldown wake_cooldown_;
  core::ProxyTrust proxy_trust_;
  std::string revocations_file_;
  core::SessionRevocations revocations_;
  Stats stats_;
};

}  // namespace unshelver::web
