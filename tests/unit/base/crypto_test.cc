#include "base/crypto.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

namespace unshelver::core {
namespace {

std::string sha256_hex(std::string_view data) {
  return hex(to_bytes(sha256(data)));
}

std::string hmac_hex(std::string_view key, std::string_view message) {
  return hex(to_bytes(hmac_sha256(key, message)));
}

// Deterministic pseudo-random bytes for round-trip tests (not for anything secret).
std::string pseudo_random_bytes(std::mt19937& generator, std::size_t count) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string out(count, '\0');
  for (char& c : out) c = static_cast<char>(byte(generator));
  return out;
}

// FIPS 180-4 examples (NIST CSRC "Cryptographic Standards and Guidelines: Examples with
// Intermediate Values", SHA256.pdf and SHA2_Additional.pdf).
TEST(CryptoSha256, EmptyMessage) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(CryptoSha256, OneBlockMessageAbc) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CryptoSha256, TwoBlockMessage448Bits) {
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(CryptoSha256, Message896Bits) {
  EXPECT_EQ(
      sha256_hex(
          "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmn"
          "opqrstnopqrstu"),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(CryptoSha256, OneMillionA) {
  EXPECT_EQ(sha256_hex(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// The padding boundaries: 55 bytes is the longest message whose length fits into its last block,
// 56 needs an extra block, and 64/120 bytes end exactly on or just before a block boundary.
TEST(CryptoSha256, PaddingBoundaries) {
  EXPECT_EQ(sha256_hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha256_hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha256_hex(std::string(57, 'a')),
            "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6");
  EXPECT_EQ(sha256_hex(std::string(63, 'a')),
            "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  EXPECT_EQ(sha256_hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  EXPECT_EQ(sha256_hex(std::string(65, 'a')),
            "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0");
  EXPECT_EQ(sha256_hex(std::string(119, 'a')),
            "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
  EXPECT_EQ(sha256_hex(std::string(120, 'a')),
            "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c");
}

TEST(CryptoSha256, BinaryInputIncludingZeroBytes) {
  const std::string with_zero("a\0b", 3);
  EXPECT_NE(sha256(with_zero), sha256("ab"));
  EXPECT_EQ(to_bytes(sha256(with_zero)).size(), 32u);
}

// RFC 4231 §4.2-4.8.
TEST(CryptoHmac, Rfc4231Case1) {
  EXPECT_EQ(hmac_hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(CryptoHmac, Rfc4231Case2KeyShorterThanOutput) {
  EXPECT_EQ(hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoHmac, Rfc4231Case3) {
  EXPECT_EQ(hmac_hex(std::string(20, '\xaa'), std::string(50, '\xdd')),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

TEST(CryptoHmac, Rfc4231Case4) {
  std::string key;
  for (int i = 1; i <= 25; ++i) key.push_back(static_cast<char>(i));
  EXPECT_EQ(hmac_hex(key, std::string(50, '\xcd')),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(CryptoHmac, Rfc4231Case5TruncatedTo128Bits) {
  EXPECT_EQ(hmac_hex(std::string(20, '\x0c'), "Test With Truncation").substr(0, 32),
            "a3b6167473100ee06e0c796c2955552b");
}

TEST(CryptoHmac, Rfc4231Case6KeyLargerThanBlock) {
  EXPECT_EQ(hmac_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(CryptoHmac, Rfc4231Case7KeyAndDataLargerThanBlock) {
  EXPECT_EQ(
      hmac_hex(std::string(131, '\xaa'),
               "This is a test using a larger than block-size key and a larger than block-size data. The key "
               "needs to be hashed before being used by the HMAC algorithm."),
      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

// RFC 2104 §2: a key longer than the block is replaced by its hash, so both give the same MAC; a
// key of exactly one block is used as it is.
TEST(CryptoHmac, LongKeyIsHashedFirst) {
  const std::string long_key(65, 'k');
  EXPECT_EQ(hmac_sha256(long_key, "message"), hmac_sha256(to_bytes(sha256(long_key)), "message"));
  const std::string block_key(64, 'k');
  EXPECT_NE(hmac_sha256(block_key, "message"), hmac_sha256(to_bytes(sha256(block_key)), "message"));
}

TEST(CryptoHex, LowerCaseTwoDigitsPerByte) {
  EXPECT_EQ(hex(""), "");
  EXPECT_EQ(hex(std::string("\x00\x0f\xa5\xff", 4)), "000fa5ff");
}

// RFC 4648 §10 test vectors (identical in base64 and base64url, without the padding).
TEST(CryptoBase64Url, Rfc4648Vectors) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
}

// RFC 4648 §10 test vectors for standard base64, padding included.
TEST(CryptoBase64, Rfc4648VectorsWithPadding) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("\xfb\xef\xbe"), "++++");
  EXPECT_EQ(base64_encode("\xff\xff\xff"), "////");
}

TEST(CryptoBase64, DecodesTheRfc4648VectorsWithPadding) {
  EXPECT_EQ(base64_decode(""), std::string());
  EXPECT_EQ(base64_decode("Zg=="), std::string("f"));
  EXPECT_EQ(base64_decode("Zm8="), std::string("fo"));
  EXPECT_EQ(base64_decode("Zm9v"), std::string("foo"));
  EXPECT_EQ(base64_decode("Zm9vYg=="), std::string("foob"));
  EXPECT_EQ(base64_decode("Zm9vYmE="), std::string("fooba"));
  EXPECT_EQ(base64_decode("Zm9vYmFy"), std::string("foobar"));
  EXPECT_EQ(base64_decode("++++"), std::string("\xfb\xef\xbe"));
  EXPECT_EQ(base64_decode("////"), std::string("\xff\xff\xff"));
}

TEST(CryptoBase64, RefusesWhatNoEncoderWrites) {
  EXPECT_EQ(base64_decode("Zg"), std::nullopt);    // padding missing
  EXPECT_EQ(base64_decode("Zg="), std::nullopt);   // not a multiple of four
  EXPECT_EQ(base64_decode("Z==="), std::nullopt);  // three '='
  EXPECT_EQ(base64_decode("===="), std::nullopt);
  EXPECT_EQ(base64_decode("Zg==Zg=="), std::nullopt);  // '=' inside
  EXPECT_EQ(base64_decode("Zh=="), std::nullopt);      // trailing bits not zero
  EXPECT_EQ(base64_decode("Zm9="), std::nullopt);
  EXPECT_EQ(base64_decode("----"), std::nullopt);  // base64url's alphabet
  EXPECT_EQ(base64_decode("__8="), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9v\n"), std::nullopt);
  EXPECT_EQ(base64_decode("Zm 9"), std::nullopt);
}

TEST(CryptoBase64, RoundTripsRandomBytesOfEveryLengthUpTo64) {
  std::mt19937 generator(4649);
  for (std::size_t length = 0; length <= 64; ++length) {
    for (int trial = 0; trial < 8; ++trial) {
      const std::string bytes = pseudo_random_bytes(generator, length);
      EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes) << length;
    }
  }
}

TEST(CryptoBase64Url, UsesTheUrlAlphabet) {
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_encode("\xfb\xef\xbe"), "----");
  EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff"));
}

TEST(CryptoBase64Url, RoundTripsRandomBytesOfEveryLengthUpTo64) {
  std::mt19937 generator(4648);
  for (std::size_t length = 0; length <= 64; ++length) {
    for (int trial = 0; trial < 8; ++trial) {
      const std::string bytes = pseudo_random_bytes(generator, length);
      const std::string text = base64url_encode(bytes);
      EXPECT_EQ(text.size(), (length * 4 + 2) / 3) << length;
      EXPECT_EQ(text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                std::string::npos);
      const std::optional<std::string> decoded = base64url_decode(text);
      ASSERT_TRUE(decoded.has_value()) << length;
      EXPECT_EQ(*decoded, bytes) << length;
    }
  }
}

TEST(CryptoBase64Url, RejectsPadding) {
  EXPECT_FALSE(base64url_decode("Zg==").has_value());
  EXPECT_FALSE(base64url_decode("Zm8=").has_value());
  EXPECT_FALSE(base64url_decode("=").has_value());
}

TEST(CryptoBase64Url, RejectsCharactersOutsideTheAlphabet) {
  // Every text here has a possible length, so only the character can be the reason.
  EXPECT_FALSE(base64url_decode("Zm9+").has_value());  // standard base64, not base64url
  EXPECT_FALSE(base64url_decode("Zm9/").has_value());
  EXPECT_FALSE(base64url_decode("Zm 9").has_value());
  EXPECT_FALSE(base64url_decode("Zm9\n").has_value());
  EXPECT_FALSE(base64url_decode("Zm.v").has_value());
  EXPECT_FALSE(base64url_decode(std::string("Zm\0v", 4)).has_value());
  EXPECT_FALSE(base64url_decode("Zm\xc3\xa9").has_value());
}

TEST(CryptoBase64Url, RejectsImpossibleLengths) {
  EXPECT_FALSE(base64url_decode("Z").has_value());
  EXPECT_FALSE(base64url_decode("Zm9vY").has_value());
  EXPECT_FALSE(base64url_decode("Zm9vYmFyZ").has_value());
  EXPECT_EQ(base64url_decode(""), std::string());
}

// "Zh" decodes to the same byte as "Zg" if the unused low bits are ignored; only "Zg" is canonical.
TEST(CryptoBase64Url, RejectsNonZeroTrailingBits) {
  EXPECT_FALSE(base64url_decode("Zh").has_value());
  EXPECT_FALSE(base64url_decode("Zm9").has_value());
  EXPECT_EQ(base64url_decode("Zm8"), std::string("fo"));
}

TEST(CryptoConstantTimeEqual, TruthTable) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));  // last byte differs
  EXPECT_FALSE(constant_time_equal("xbc", "abc"));  // first byte differs
  EXPECT_FALSE(constant_time_equal("abc", "ab"));   // different lengths
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_FALSE(constant_time_equal(std::string("a\0", 2), "a"));
  EXPECT_TRUE(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(constant_time_equal(std::string("\x80", 1), std::string("\x00", 1)));  // high bit only
}

TEST(CryptoSecretMatches, TruthTable) {
  EXPECT_TRUE(secret_matches("s3cret-token", "s3cret-token"));
  EXPECT_FALSE(secret_matches("s3cret-token", "s3cret-tokeN"));
  EXPECT_FALSE(secret_matches("s3cret-toke", "s3cret-token"));    // a prefix
  EXPECT_FALSE(secret_matches("s3cret-token!", "s3cret-token"));  // longer
  EXPECT_FALSE(secret_matches("", "s3cret-token"));
  // An unset secret never matches, not even an empty answer.
  EXPECT_FALSE(secret_matches("", ""));
  EXPECT_FALSE(secret_matches("anything", ""));
}

}  // namespace
}  // namespace unshelver::core
