// The sessions that logout ended, kept across restarts. Pure: the web layer reads and writes the
// file (sessions.json in the state directory) and passes the time in.
//
// A session cookie stays valid by its signature until it expires, so ending one early needs
// server-side memory: its nonce is remembered until the cookie would have expired anyway. That
// memory must survive a restart, or a logged-out cookie works again afterwards (the signing key
// is the same app.secret_key).
//
// The list is bounded: at most kMaxRevokedSessions nonces. When a logout would exceed it, the
// generation advances instead and the list is emptied. Sessions are bound to the generation (it
// is part of the binding their MAC covers), so that ends every session issued before, including
// the revoked ones, and nothing is forgotten. Below the bound, a logout ends only its own session
// and every other admin stays logged in.
//
// File: {"generation": N, "revoked": {"<nonce, base64url>": <expiry, Unix seconds>, ...}}
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace unshelver::core {

inline constexpr std::size_t kMaxRevokedSessions = 1000;

class SessionRevocations {
 public:
  using WallTime = std::chrono::system_clock::time_point;

  // The state in a file's text, or nullopt when it is not a valid revocation file.
  static std::optional<SessionRevocations> parse(std::string_view text);
  std::string serialize() const;

  // A state that ends every session issued before it: for a file that exists but cannot be
  // read, since what it revoked is unknown.
  static SessionRevocations after_loss(const SessionRevocations& known);

  std::uint64_t generation() const { return generation_; }
  bool revoked(std::string_view nonce) const { return revoked_.count(std::string(nonce)) != 0; }
  std::size_t size() const { return revoked_.size(); }

  // Ends the session `nonce` that would expire at `expires`; forgets revocations whose sessions
  // have expired by `now`. Advances the generation instead when the list is full.
  void revoke(std::string_view nonce, WallTime expires, WallTime now);

 private:
  std::uint64_t generation_ = 0;
  std::map<std::string, WallTime> revoked_;  // raw nonce -> the session's expiry
};

}  // namespace unshelver::core
