#include "web/access.h"

#include <spdlog/spdlog.h>

#include "base/crypto.h"
#include "base/text.h"
#include "uv/files.h"
#include "uv/random.h"

namespace unshelver::web {

namespace {
constexpr std::size_t kNonceBytes = 16;
constexpr std::size_t kVisitorIdBytes = 16;
// sessions.json holds at most kMaxRevokedSessions entries of about 40 bytes; far less than this.
constexpr std::size_t kMaxRevocationFileBytes = std::size_t{1} << 20;
// A visitor cookie outlives any page it was set with; a day is plenty for an open tab.
constexpr std::chrono::seconds kVisitorCookieAge{24 * 3600};
// Form purposes: a token made for one form is refused by every other.
constexpr std::string_view kControlPurpose = "control";

bool is_loopback(const std::string& address) {
  return address == "::1" || address.rfind("127.", 0) == 0 || address.rfind("::ffff:127.", 0) == 0;
}

std::string digest_hex(std::string_view text) {
  return core::hex(core::to_bytes(core::sha256(text)));
}
}  // namespace

AccessControl::AccessControl(const core::Config& config, std::string_view signing_key,
                             std::string revocations_file)
    : control_token_(config.app.control_token),
      token_digest_(control_token_.empty() ? "" : digest_hex("unshelver/control-token|" + control_token_)),
      signer_(signing_key),
      session_lifetime_(config.security.session_lifetime),
      login_limiter_(
          core::RateLimit{static_cast<double>(config.security.login_burst), config.security.login_refill}),
      wake_limiter_(
          core::RateLimit{static_cast<double>(config.security.wake_burst), config.security.wake_refill}),
      wake_cooldown_(config.security.wake_cooldown),
      proxy_trust_(config.proxy.trusted_proxies, !config.proxy.socket.empty()),
      revocations_file_(std::move(revocations_file)) {
  load_revocations();
}

void AccessControl::load_revocations() {
  if (revocations_file_.empty()) return;
  auto text = io::read_file_if_exists(revocations_file_, kMaxRevocationFileBytes);
  if (text.ok() && !*text) return;
  std::optional<core::SessionRevocations> loaded;
  if (text.ok()) loaded = core::SessionRevocations::parse(**text);
  if (loaded) {
    revocations_ = std::move(*loaded);
    return;
  }
  // What it revoked is unknown: end every session rather than revive a logged-out one.
  spdlog::warn(
      "{}; every control session ends",
      text.ok() ? revocations_file_ + " is not a valid session revocation file" : text.error().message);
  revocations_ = core::SessionRevocations::after_loss(revocations_);
  save_revocations();
}

void AccessControl::save_revocations() const {
  if (revocations_file_.empty()) return;
  // Synchronous: a logout is rare and the file small (at most kMaxRevokedSessions entries).
  if (Status written = io::write_file_atomically(revocations_file_, revocations_.serialize(), 0600);
      !written) {
    spdlog::error("cannot remember a logout across restarts: {}", written.error().message);
  }
}

std::string AccessControl::binding() const {
  if (token_digest_.empty()) return "";
  // Generation 0 binds as before, so that sessions issued by an older version stay valid.
  return revocations_.generation() == 0 ? token_digest_
                                        : token_digest_ + "|" + std::to_string(revocations_.generation());
}

bool AccessControl::from_proxy(const io::HttpRequest& request) const {
  return request.via_proxy_socket || proxy_trust_.trusts(request.remote_address);
}

std::string AccessControl::client_address(const io::HttpRequest& request) const {
  if (from_proxy(request)) {
    if (const std::string* forwarded = request.header("X-Forwarded-For"); forwarded != nullptr) {
      const std::size_t comma = forwarded->rfind(',');
      std::string_view last =
          core::trim(comma == std::string::npos ? std::string_view(*forwarded)
                                                : std::string_view(*forwarded).substr(comma + 1));
      if (!last.empty()) return std::string(last);
    }
  }
  return request.remote_address;
}

bool AccessControl::is_local(const io::HttpRequest& request) {
  return !request.via_proxy_socket && is_loopback(request.remote_address) &&
         request.header("X-Forwarded-For") == nullptr && request.header("Forwarded") == nullptr;
}

bool AccessControl::is_https(const io::HttpRequest& request) const {
  if (!from_proxy(request)) return false;
  const std::string* proto = request.header("X-Forwarded-Proto");
  return proto != nullptr && core::to_lower(core::trim(*proto)) == "https";
}

std::optional<std::string> AccessControl::form_field(const io::HttpRequest& request, std::string_view name) {
  if (request.method != "POST") return std::nullopt;
  const std::string* type = request.header("Content-Type");
  if (type == nullptr || core::to_lower(*type).rfind("application/x-www-form-urlencoded", 0) != 0) {
    return std::nullopt;
  }
  return core::query_parameter(request.body, name);
}

std::string AccessControl::cookie(std::string_view name, std::string_view value, std::chrono::seconds max_age,
                                  const io::HttpRequest& request) const {
  // RFC 6265bis: HttpOnly keeps it from scripts, SameSite=Strict from every cross-site request,
  // Secure from plain http once the site is served over https.
  std::string text = std::string(name) + "=" + std::string(value) +
                     "; Path=/; Max-Age=" + std::to_string(max_age.count()) + "; HttpOnly; SameSite=Strict";
  if (is_https(request)) text += "; Secure";
  return text;
}

std::optional<core::Signer::Session> AccessControl::valid_session(const io::HttpRequest& request,
                                                                  WallTime now) {
  const std::string* header = request.header("Cookie");
  if (header == nullptr) return std::nullopt;
  auto value = core::cookie_value(*header, kSessionCookie);
  if (!value) return std::nullopt;
  auto session = signer_.verify_session(*value, binding(), now);
  if (!session || revocations_.revoked(session->nonce)) return std::nullopt;
  return session;
}

AccessControl::TokenCheck AccessControl::check_token(const io::HttpRequest& request, std::string_view token,
                                                     SteadyTime steady_now) {
  // The right token is accepted even from a client over its limit: the limit is keyed by address,
  // which the admin shares with every local process (and, behind a proxy, with its other users),
  // so refusing it would let anybody lock the admin out by failing on purpose.
  if (core::secret_matches(token, control_token_)) return TokenCheck{true, false, {}};
  const std::string key = client_address(request);
  if (auto limited = login_limiter_.peek(key, steady_now); !limited.allowed) {
    ++stats_.login_rate_limited;
    return TokenCheck{false, true, limited.retry_after};
  }
  ++stats_.login_failures;
  login_limiter_.take(key, steady_now);
  return TokenCheck{false, false, {}};
}

AccessControl::Caller AccessControl::identify(const io::HttpRequest& request, WallTime now,
                                              SteadyTime steady_now) {
  Caller caller;
  if (!control_enabled()) return caller;
  if (const std::string* authorization = request.header("Authorization"); authorization != nullptr) {
    std::string_view value = core::trim(*authorization);
    constexpr std::string_view kScheme = "bearer ";
    const bool bearer =
        value.size() > kScheme.size() && core::to_lower(value.substr(0, kScheme.size())) == kScheme;
    // Another scheme is checked as an empty token: a failed attempt like any other.
    const TokenCheck check = check_token(
        request, bearer ? core::trim(value.substr(kScheme.size())) : std::string_view(), steady_now);
    if (check.ok) {
      caller.via = Via::kBearer;
    } else {
      caller.bad_bearer = true;
      caller.bearer_rate_limited = check.rate_limited;
      caller.retry_after = check.retry_after;
    }
    return caller;
  }
  if (auto session = valid_session(request, now)) {
    caller.via = Via::kSession;
    caller.session_nonce = session->nonce;
    caller.session_expires = session->expires;
  }
  return caller;
}

AccessControl::Login AccessControl::login(const io::HttpRequest& request, std::string_view token,
                                          WallTime now, SteadyTime steady_now) {
  Login login;
  if (!control_enabled()) {
    login.result = LoginResult::kDisabled;
    return login;
  }
  const TokenCheck check = check_token(request, token, steady_now);
  if (check.rate_limited) {
    login.result = LoginResult::kRateLimited;
    login.retry_after = check.retry_after;
    return login;
  }
  if (!check.ok) {
    login.result = LoginResult::kWrongToken;
    return login;
  }
  ++stats_.logins;
  const auto expires = now + session_lifetime_;
  const std::string value = signer_.issue_session(expires, io::random_bytes(kNonceBytes), binding());
  login.result = LoginResult::kOk;
  login.set_cookie = cookie(kSessionCookie, value, session_lifetime_, request);
  return login;
}

std::string AccessControl::logout(const Caller& caller, const io::HttpRequest& request, WallTime now) {
  if (caller.via == Via::kSession) {
    revocations_.revoke(caller.session_nonce, caller.session_expires, now);
    save_revocations();
    ++stats_.sessions_revoked;
  }
  return cookie(kSessionCookie, "", std::chrono::seconds(0), request);
}

std::string AccessControl::session_form_token(const Caller& caller) const {
  return signer_.form_token(kControlPurpose, caller.session_nonce);
}

bool AccessControl::session_form_token_valid(const Caller& caller, const io::HttpRequest& request) const {
  // Bearer requests need none: a browser never adds an Authorization header on its own, so a
  // forged form cannot carry one.
  if (caller.via == Via::kBearer) return true;
  if (caller.via != Via::kSession) return false;
  auto token = form_field(request, kFormTokenField);
  return token && signer_.verify_form_token(*token, kControlPurpose, caller.session_nonce);
}

AccessControl::Visitor AccessControl::visitor(const io::HttpRequest& request) const {
  if (const std::string* header = request.header("Cookie"); header != nullptr) {
    auto id = core::cookie_value(*header, kVisitorCookie);
    // Only values this daemon could have made: a long random base64url string.
    if (id && id->size() >= 16 && id->size() <= 64 && core::base64url_decode(*id)) return Visitor{*id, ""};
  }
  Visitor fresh;
  fresh.id = core::base64url_encode(io::random_bytes(kVisitorIdBytes));
  fresh.set_cookie = cookie(kVisitorCookie, fresh.id, kVisitorCookieAge, request);
  return fresh;
}

std::string AccessControl::visitor_form_token(const Visitor& visitor, std::string_view purpose) const {
  return signer_.form_token(purpose, visitor.id);
}

bool AccessControl::visitor_form_token_valid(const io::HttpRequest& request, std::string_view purpose) const {
  const std::string* header = request.header("Cookie");
  if (header == nullptr) return false;
  auto id = core::cookie_value(*header, kVisitorCookie);
  auto token = form_field(request, kFormTokenField);
  return id && token && signer_.verify_form_token(*token, purpose, *id);
}

std::chrono::milliseconds AccessControl::take_wake_allowance(const io::HttpRequest& request, SteadyTime now) {
  auto decision = wake_limiter_.take(client_address(request), now);
  if (decision.allowed) return std::chrono::milliseconds(0);
  ++stats_.wake_rate_limited;
  return std::max(decision.retry_after, std::chrono::milliseconds(1));
}

std::chrono::milliseconds AccessControl::start_cooldown(SteadyTime now) {
  auto decision = wake_cooldown_.try_start(now);
  if (decision.allowed) return std::chrono::milliseconds(0);
  ++stats_.wake_cooldown_refused;
  return std::max(decision.retry_after, std::chrono::milliseconds(1));
}

}  // namespace unshelver::web
