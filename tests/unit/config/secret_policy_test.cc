#include "config/secret_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/crypto.h"

namespace unshelver::core {
namespace {

constexpr std::size_t kMin = 32;

// What `openssl rand -hex 16` and `openssl rand -base64 32 | tr '+/' '-_' | tr -d =` print.
constexpr std::string_view kHex32 = "3f9a0c7e5b21d84f6a0e9c3b7d152e8a";
const std::string kBase64Url43 = base64url_encode(to_bytes(sha256("a seed for a test secret")));

TEST(SecretPolicy, RandomHexAndBase64UrlPass) {
  EXPECT_EQ(secret_weakness(kHex32, kMin), "");
  ASSERT_EQ(kBase64Url43.size(), 43u);
  EXPECT_EQ(secret_weakness(kBase64Url43, kMin), "");
  EXPECT_EQ(secret_weakness(kBase64Url43, 43), "");
}

TEST(SecretPolicy, EmptyIsNotSet) {
  EXPECT_EQ(secret_weakness("", kMin), "is not set");
  EXPECT_EQ(secret_weakness("", 0), "is not set");
}

TEST(SecretPolicy, ExampleValuesFromOurConfigurationAreRefused) {
  for (std::string_view value : {"replace-with-a-long-random-token", "replace-with-another-long-random-value",
                                 "replace-with-the-openstack-password"}) {
    EXPECT_EQ(secret_weakness(value, kMin), "is the example value") << value;
    EXPECT_EQ(secret_weakness(value, 0), "is the example value") << value;
  }
}

TEST(SecretPolicy, PlaceholderPartsAreRefusedInAnyCase) {
  for (std::string_view value :
       {"Replace-With-Something-Random-9f8e7d6c5b4a", "k3Y-ChangeMe-0a9b8c7d6e5f4g3h2i1j",
        "CHANGE-ME-Zq8Xw7Vu6Ts5Rq4Po3", "an-Example-secret-Zq8Xw7Vu6Ts5Rq4Po3Nm2",
        "Your-Token-Here-Zq8Xw7Vu6Ts5Rq4Po3Nm2", "XXXXXXXX-Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1Ji0",
        "Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1Ji0xxxxxxxxx"}) {
    EXPECT_EQ(secret_weakness(value, kMin), "is the example value") << value;
  }
}

TEST(SecretPolicy, PlaceholderWordsAreRefusedAsTheWholeValue) {
  for (std::string_view value : {"secret", "password", "token", "admin", "Password", "TOKEN"}) {
    EXPECT_EQ(secret_weakness(value, 0), "is the example value") << value;
  }
  // As part of a longer value they are not placeholders (the other rules judge those).
  EXPECT_EQ(secret_weakness("admin-Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1Ji0", kMin), "");
}

TEST(SecretPolicy, TooShort) {
  EXPECT_EQ(secret_weakness("Zq8Xw7Vu6Ts5", kMin), "is 12 characters long; at least 32 are required");
  EXPECT_EQ(secret_weakness(kHex32.substr(0, 31), kMin), "is 31 characters long; at least 32 are required");
  EXPECT_EQ(secret_weakness(kBase64Url43, 44), "is 43 characters long; at least 44 are required");
}

TEST(SecretPolicy, TooFewDistinctCharacters) {
  const std::string reason = "is not random (too few distinct characters)";
  EXPECT_EQ(secret_weakness(std::string(40, 'q'), kMin), reason);
  EXPECT_EQ(secret_weakness("0101010101010101010101010101010101010101", kMin), reason);
  EXPECT_EQ(secret_weakness("aaaaaaaaaaBBBBBBBBBB1111111111$$$$$$$$$$%%%%%%%%%%--------", kMin), reason);
  // Seven distinct characters are not enough even in a long, irregular value.
  EXPECT_EQ(secret_weakness("abcdefgabgfedcbacegbdfagcebfdacgfbedabcgdefagbfc", kMin), reason);
}

TEST(SecretPolicy, RepeatedPattern) {
  const std::string reason = "is not random (a repeated pattern)";
  EXPECT_EQ(secret_weakness("abcdefghabcdefghabcdefghabcdefgh", kMin), reason);
  EXPECT_EQ(secret_weakness("Kq8#mZ2!LpKq8#mZ2!LpKq8#mZ2!LpKq8#mZ", kMin), reason);  // last copy cut short
  // A long random unit written twice has half the strength its length suggests.
  EXPECT_EQ(secret_weakness(std::string(kHex32) + std::string(kHex32), kMin), reason);
}

TEST(SecretPolicy, TooWeakForItsAlphabet) {
  // 32 digits: 32 x log2(10) = 106.3 bits.
  EXPECT_EQ(secret_weakness("83920175648203918475620193847561", kMin),
            "is too weak (about 106 bits; 128 are required)");
  // 27 lower-case letters: 27 x log2(26) = 126.9 bits; 28 give 131.6.
  EXPECT_EQ(secret_weakness("qwhdkzmvbxnptlrsyjfgcaueoiq", 16),
            "is too weak (about 126 bits; 128 are required)");
  EXPECT_EQ(secret_weakness("qwhdkzmvbxnptlrsyjfgcaueoiqk", 16), "");
  // Upper-case, digits and other characters widen the alphabet: 20 x log2(95) = 131.4 bits.
  EXPECT_EQ(secret_weakness("aZ3$kL9@pQ7!xW2#mN5%", 16), "");
}

TEST(SecretPolicy, TheReasonNeverContainsTheValue) {
  const std::vector<std::string> values = {
      "replace-with-a-long-random-token",
      "Zq8-changeme-Xw7Vu6Ts5Rq4Po3Nm2Lk1Ji0",
      "Zq8Xw7Vu6Ts5",
      std::string(40, 'q'),
      "abcdefghabcdefghabcdefghabcdefgh",
      "83920175648203918475620193847561",
      "qwhdkzmvbxnptlrsyjfgcaueoiq",
  };
  for (const std::string& value : values) {
    const std::string reason = secret_weakness(value, kMin);
    EXPECT_NE(reason, "") << value;
    EXPECT_EQ(reason.find(value), std::string::npos) << reason;
    // Not even a recognisable part of it.
    EXPECT_EQ(reason.find(value.substr(0, 6)), std::string::npos) << reason;
  }
}

TEST(SecretPolicy, SecretsFileExposure) {
  EXPECT_EQ(secrets_file_exposure(0600), "");
  EXPECT_EQ(secrets_file_exposure(0400), "");
  EXPECT_EQ(secrets_file_exposure(0700), "");
  EXPECT_EQ(secrets_file_exposure(0644), "is readable by its group and others (mode 0644); `chmod 600` it");
  EXPECT_EQ(secrets_file_exposure(0640), "is readable by its group (mode 0640); `chmod 600` it");
  EXPECT_EQ(secrets_file_exposure(0604), "is readable by others (mode 0604); `chmod 600` it");
  EXPECT_EQ(secrets_file_exposure(0620), "is writable by its group (mode 0620); `chmod 600` it");
  EXPECT_EQ(secrets_file_exposure(0666),
            "is readable and writable by its group and others (mode 0666); `chmod 600` it");
}

}  // namespace
}  // namespace unshelver::core
