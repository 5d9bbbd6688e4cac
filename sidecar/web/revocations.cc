#include "web/revocations.h"

#include <nlohmann/json.hpp>

#include "base/crypto.h"

namespace unshelver::core {

namespace {
using nlohmann::json;
// A nonce is 16 random bytes; anything much longer in the file is not ours.
constexpr std::size_t kMaxNonceBytes = 64;
}  // namespace

std::optional<SessionRevocations> SessionRevocations::parse(std::string_view text) {
  const json document = json::parse(text, nullptr, false);
  if (document.is_discarded() || !document.is_object()) return std::nullopt;
  const auto generation = document.find("generation");
  const auto revoked = document.find("revoked");
  if (generation == document.end() || !generation->is_number_unsigned() || revoked == document.end() ||
      !revoked->is_object() || revoked->size() > kMaxRevokedSessions) {
    return std::nullopt;
  }
  SessionRevocations state;
  state.generation_ = generation->get<std::uint64_t>();
  for (const auto& [key, expires] : revoked->items()) {
    std::optional<std::string> nonce = base64url_decode(key);
    if (!nonce || nonce->empty() || nonce->size() > kMaxNonceBytes || !expires.is_number_integer()) {
      return std::nullopt;
    }
    state.revoked_[*nonce] = WallTime{std::chrono::seconds(expires.get<std::int64_t>())};
  }
  return state;
}

std::string SessionRevocations::serialize() const {
  json revoked = json::object();
  for (const auto& [nonce, expires] : revoked_) {
    // Rounded up, so that the revocation lasts at least as long as the session.
    revoked[base64url_encode(nonce)] =
        std::chrono::ceil<std::chrono::seconds>(expires).time_since_epoch().count();
  }
  return json{{"generation", generation_}, {"revoked", revoked}}.dump() + "\n";
}

SessionRevocations SessionRevocations::after_loss(const SessionRevocations& known) {
  SessionRevocations state;
  state.generation_ = known.generation_ + 1;
  return state;
}

void SessionRevocations::revoke(std::string_view nonce, WallTime expires, WallTime now) {
  std::erase_if(revoked_, [now](const auto& entry) { return entry.second <= now; });
  if (expires <= now) return;
  if (revoked_.size() >= kMaxRevokedSessions) {
    ++generation_;
    revoked_.clear();
    return;
  }
  revoked_[std::string(nonce)] = expires;
}

}  // namespace unshelver::core
