#include "web/signer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "base/crypto.h"

namespace unshelver::core {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using Clock = std::chrono::system_clock;

constexpr std::string_view kKey = "k9Vq2pXw7LmZr4TnB8cJd1FgH6sYe3Ua";
constexpr std::string_view kNonce = "\x01\x02nonce|with.dot";  // 16 raw bytes, some of them separators
constexpr std::string_view kBinding = "digest-of-the-control-token";
const Clock::time_point kSignedAt{seconds(1'800'000'000)};
const Clock::time_point kExpires = kSignedAt + hours(12);

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? "." : "") + parts[i];
  return out;
}

TEST(AuthSession, RoundTrip) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(kExpires, kNonce, kBinding);
  const std::vector<std::string> parts = split(cookie, '.');
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0], "v1");
  EXPECT_EQ(parts[1], "1800043200");
  EXPECT_EQ(parts[2], base64url_encode(kNonce));
  EXPECT_EQ(parts[3].size(), 43u);

  const std::optional<Signer::Session> session = signer.verify_session(cookie, kBinding, kSignedAt);
  ASSERT_TRUE(session.has_value());
  EXPECT_EQ(session->nonce, kNonce);
  EXPECT_EQ(session->expires, kExpires);
}

TEST(AuthSession, TheMacCoversTheDocumentedMessage) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(kExpires, kNonce, kBinding);
  const std::string session_key = to_bytes(hmac_sha256(kKey, "unshelver/session"));
  const std::string message = "v1|1800043200|" + base64url_encode(kNonce) + "|" + std::string(kBinding);
  EXPECT_EQ(split(cookie, '.')[3], base64url_encode(to_bytes(hmac_sha256(session_key, message))));
}

TEST(AuthSession, ExpiryBoundary) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(kExpires, kNonce, kBinding);
  EXPECT_TRUE(signer.verify_session(cookie, kBinding, kExpires - nanoseconds(1)).has_value());
  EXPECT_FALSE(signer.verify_session(cookie, kBinding, kExpires).has_value());
  EXPECT_FALSE(signer.verify_session(cookie, kBinding, kExpires + seconds(1)).has_value());
}

TEST(AuthSession, ExpiryIsRoundedDownToAWholeSecond) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(kExpires + milliseconds(999), kNonce, kBinding);
  const std::optional<Signer::Session> session = signer.verify_session(cookie, kBinding, kSignedAt);
  ASSERT_TRUE(session.has_value());
  EXPECT_EQ(session->expires, kExpires);
  EXPECT_FALSE(signer.verify_session(cookie, kBinding, kExpires).has_value());
}

TEST(AuthSession, ExpiryBefore1970IsWrittenAsZeroAndHasPassed) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(Clock::time_point{} - hours(1), kNonce, kBinding);
  EXPECT_EQ(split(cookie, '.')[1], "0");
  EXPECT_FALSE(signer.verify_session(cookie, kBinding, kSignedAt).has_value());
}

TEST(AuthSession, TamperedVersionIsRejected) {
  const Signer signer(kKey);
  std::vector<std::string> parts = split(signer.issue_session(kExpires, kNonce, kBinding), '.');
  for (const char* version : {"v2", "V1", "v", "v10", ""}) {
    parts[0] = version;
    EXPECT_FALSE(signer.verify_session(join(parts), kBinding, kSignedAt).has_value()) << version;
  }
}

TEST(AuthSession, TamperedExpiryIsRejected) {
  const Signer signer(kKey);
  const std::vector<std::string> original = split(signer.issue_session(kExpires, kNonce, kBinding), '.');
  for (const std::string& expires :
       {std::string("1800043201"), std::string("2800043200"), std::string("01800043200"),
        std::string("+1800043200"), std::string("-1"), std::string("1800043200 "), std::string(""),
        std::string("18000432OO"), std::string("99999999999999999999999")}) {
    std::vector<std::string> parts = original;
    parts[1] = expires;
    EXPECT_FALSE(signer.verify_session(join(parts), kBinding, kSignedAt).has_value()) << expires;
  }
}

TEST(AuthSession, TamperedNonceIsRejected) {
  const Signer signer(kKey);
  const std::vector<std::string> original = split(signer.issue_session(kExpires, kNonce, kBinding), '.');
  for (const std::string& nonce : {base64url_encode("another nonce!!!"), std::string(""), original[2] + "A",
                                   original[2].substr(1), original[2] + "=="}) {
    std::vector<std::string> parts = original;
    parts[2] = nonce;
    EXPECT_FALSE(signer.verify_session(join(parts), kBinding, kSignedAt).has_value()) << nonce;
  }
}

TEST(AuthSession, TamperedMacIsRejected) {
  const Signer signer(kKey);
  const std::vector<std::string> original = split(signer.issue_session(kExpires, kNonce, kBinding), '.');
  const std::string other_mac = split(signer.issue_session(kExpires, "another nonce!!!", kBinding), '.')[3];
  for (const std::string& mac : {other_mac, std::string(""), original[3].substr(1), original[3] + "A",
                                 original[3] + "=", std::string(43, 'A')}) {
    std::vector<std::string> parts = original;
    parts[3] = mac;
    EXPECT_FALSE(signer.verify_session(join(parts), kBinding, kSignedAt).has_value()) << mac;
  }
}

// Every single-character change anywhere in the cookie is caught, including the last character of
// the MAC, whose low bits are unused: base64url_decode refuses a second spelling of the same bytes.
TEST(AuthSession, EverySingleCharacterChangeIsRejected) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(kExpires, kNonce, kBinding);
  for (std::size_t i = 0; i < cookie.size(); ++i) {
    for (char replacement : std::string_view("Aaz09-_.+/= ")) {
      if (replacement == cookie[i]) continue;
      std::string tampered = cookie;
      tampered[i] = replacement;
      EXPECT_FALSE(signer.verify_session(tampered, kBinding, kSignedAt).has_value()) << tampered;
    }
  }
}

TEST(AuthSession, ExtraOrMissingDotsAreRejected) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(kExpires, kNonce, kBinding);
  const std::vector<std::string> parts = split(cookie, '.');
  for (const std::string& bad :
       {cookie + ".", "." + cookie, cookie + ".extra",
        parts[0] + "." + parts[1] + ".." + parts[2] + "." + parts[3],
        parts[0] + "." + parts[1] + "." + parts[3], parts[0] + parts[1] + "." + parts[2] + "." + parts[3]}) {
    EXPECT_FALSE(signer.verify_session(bad, kBinding, kSignedAt).has_value()) << bad;
  }
}

TEST(AuthSession, EmptyAndDegenerateInputsAreRejected) {
  const Signer signer(kKey);
  for (std::string_view bad : {"", ".", "...", "v1...", "v1.1800043200..", "v1", "garbage"}) {
    EXPECT_FALSE(signer.verify_session(bad, kBinding, kSignedAt).has_value()) << bad;
  }
}

TEST(AuthSession, HugeInputIsRejected) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(kExpires, kNonce, kBinding);
  EXPECT_FALSE(signer.verify_session(cookie + std::string(100'000, 'A'), kBinding, kSignedAt).has_value());
  EXPECT_FALSE(signer.verify_session(std::string(100'000, '.'), kBinding, kSignedAt).has_value());
  // A cookie with a 100 kB nonce, correctly signed, is refused for its size alone.
  const std::string huge = signer.issue_session(kExpires, std::string(75'000, 'n'), kBinding);
  EXPECT_GE(huge.size(), 100'000u);
  EXPECT_FALSE(signer.verify_session(huge, kBinding, kSignedAt).has_value());
}

TEST(AuthSession, NonBase64CharactersAreRejected) {
  const Signer signer(kKey);
  const std::vector<std::string> original = split(signer.issue_session(kExpires, kNonce, kBinding), '.');
  for (std::size_t part : {2u, 3u}) {
    for (char bad : std::string_view("+/=!\n\x80")) {
      std::vector<std::string> parts = original;
      parts[part][0] = bad;
      EXPECT_FALSE(signer.verify_session(join(parts), kBinding, kSignedAt).has_value()) << part << " " << bad;
    }
  }
}

TEST(AuthSession, AnotherKeyIsRejected) {
  const std::string cookie = Signer(kKey).issue_session(kExpires, kNonce, kBinding);
  EXPECT_FALSE(
      Signer("another-key-entirely-0123456789").verify_session(cookie, kBinding, kSignedAt).has_value());
  EXPECT_TRUE(Signer(kKey).verify_session(cookie, kBinding, kSignedAt).has_value());
}

TEST(AuthSession, AnotherBindingIsRejected) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(kExpires, kNonce, kBinding);
  EXPECT_FALSE(signer.verify_session(cookie, "digest-of-a-new-control-token", kSignedAt).has_value());
  EXPECT_FALSE(signer.verify_session(cookie, "", kSignedAt).has_value());

  const std::string unbound = signer.issue_session(kExpires, kNonce, "");
  EXPECT_TRUE(signer.verify_session(unbound, "", kSignedAt).has_value());
  EXPECT_FALSE(signer.verify_session(unbound, kBinding, kSignedAt).has_value());
}

TEST(AuthSession, AnEmptyKeyVerifiesNothing) {
  const Signer signer("");
  EXPECT_FALSE(signer.verify_session(signer.issue_session(kExpires, kNonce, kBinding), kBinding, kSignedAt)
                   .has_value());
  EXPECT_FALSE(signer.verify_form_token(signer.form_token("wake", "visitor"), "wake", "visitor"));
}

TEST(AuthFormToken, BoundToPurposeAndContext) {
  const Signer signer(kKey);
  const std::string token = signer.form_token("wake", "visitor-cookie-value");
  EXPECT_EQ(token.size(), 43u);
  EXPECT_TRUE(signer.verify_form_token(token, "wake", "visitor-cookie-value"));
  EXPECT_FALSE(signer.verify_form_token(token, "shelve", "visitor-cookie-value"));
  EXPECT_FALSE(signer.verify_form_token(token, "wake", "another-visitor"));
  EXPECT_FALSE(signer.verify_form_token(token, "wake", "visitor-cookie-valu"));
  EXPECT_FALSE(
      Signer("another-key-entirely-0123456789").verify_form_token(token, "wake", "visitor-cookie-value"));
  EXPECT_EQ(token, signer.form_token("wake", "visitor-cookie-value"));  // deterministic
}

TEST(AuthFormToken, TheTokenIsTheDocumentedMac) {
  const Signer signer(kKey);
  const std::string form_key = to_bytes(hmac_sha256(kKey, "unshelver/form"));
  EXPECT_EQ(signer.form_token("control", "nonce"),
            base64url_encode(to_bytes(hmac_sha256(form_key, "control|nonce"))));
}

TEST(AuthFormToken, EmptyTokenOrContextIsRejected) {
  const Signer signer(kKey);
  EXPECT_FALSE(signer.verify_form_token("", "wake", "visitor"));
  EXPECT_FALSE(signer.verify_form_token(signer.form_token("wake", ""), "wake", ""));
}

TEST(AuthFormToken, TamperedTokenIsRejected) {
  const Signer signer(kKey);
  const std::string token = signer.form_token("wake", "visitor");
  for (std::size_t i = 0; i < token.size(); ++i) {
    std::string tampered = token;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(signer.verify_form_token(tampered, "wake", "visitor")) << i;
  }
  EXPECT_FALSE(signer.verify_form_token(token + "A", "wake", "visitor"));
  EXPECT_FALSE(signer.verify_form_token(token.substr(1), "wake", "visitor"));
  EXPECT_FALSE(signer.verify_form_token(token + "=", "wake", "visitor"));
}

// The form message "v1" + "|" + "<expires>|<nonce>|<binding>" is byte for byte the session
// message, so with a single key the form token would be the session MAC. The separate sub-keys
// make each useless as the other.
TEST(AuthCrossUse, ASessionMacIsNotAFormToken) {
  const Signer signer(kKey);
  const std::string cookie = signer.issue_session(kExpires, kNonce, kBinding);
  const std::vector<std::string> parts = split(cookie, '.');
  const std::string context = parts[1] + "|" + parts[2] + "|" + std::string(kBinding);
  EXPECT_FALSE(signer.verify_form_token(parts[3], "v1", context));
  EXPECT_FALSE(signer.verify_form_token(cookie, "v1", context));
  EXPECT_FALSE(signer.verify_form_token(cookie, "control", kNonce));
}

TEST(AuthCrossUse, AFormTokenIsNotASessionMac) {
  const Signer signer(kKey);
  const std::string nonce_text = base64url_encode(kNonce);
  const std::string forged_mac =
      signer.form_token("v1", "1800043200|" + nonce_text + "|" + std::string(kBinding));
  const std::string forged = "v1.1800043200." + nonce_text + "." + forged_mac;
  EXPECT_FALSE(signer.verify_session(forged, kBinding, kSignedAt).has_value());
  EXPECT_FALSE(signer.verify_session(signer.form_token("control", kNonce), kBinding, kSignedAt).has_value());
}

}  // namespace
}  // namespace unshelver::core
