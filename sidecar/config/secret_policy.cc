#include "config/secret_policy.h"

#include <array>
#include <cmath>
#include <vector>

#include "base/text.h"

namespace unshelver::core {

namespace {

// Values shipped in our example configuration, refused as they are.
constexpr std::array<std::string_view, 3> kExampleValues = {
    "replace-with-a-long-random-token",
    "replace-with-another-long-random-value",
    "replace-with-the-openstack-password",
};

// Parts of placeholders, found anywhere in the value, in any case.
constexpr std::array<std::string_view, 6> kPlaceholderParts = {
    "replace-with", "changeme", "change-me", "example", "your-token", "xxxxxxxx",
};

// Words that people type when asked for a secret, refused as the whole value, in any case.
constexpr std::array<std::string_view, 4> kPlaceholderWords = {"secret", "password", "token", "admin"};

// The number of distinct characters that rule 4 requires.
constexpr std::size_t kMinDistinct = 8;

bool is_example(std::string_view value) {
  for (std::string_view example : kExampleValues) {
    if (value == example) return true;
  }
  const std::string lowered = to_lower(value);
  for (std::string_view part : kPlaceholderParts) {
    if (lowered.find(part) != std::string::npos) return true;
  }
  for (std::string_view word : kPlaceholderWords) {
    if (lowered == word) return true;
  }
  return false;
}

std::size_t distinct_characters(std::string_view value) {
  std::array<bool, 256> seen{};
  std::size_t count = 0;
  for (char c : value) {
    bool& slot = seen[static_cast<unsigned char>(c)];
    if (!slot) {
      slot = true;
      ++count;
    }
  }
  return count;
}

// Whether `value` is one unit written at least twice (the last copy may be cut short), as in
// "abcdefghabcdefghabcd". The shortest period comes from the failure function of Knuth, Morris and
// Pratt: border[i] is the length of the longest proper prefix of value[0..i] that is also its
// suffix, and the value repeats with period n - border[n - 1].
bool is_repeated_pattern(std::string_view value) {
  const std::size_t n = value.size();
  if (n < 2) return false;
  std::vector<std::size_t> border(n, 0);
  for (std::size_t i = 1; i < n; ++i) {
    std::size_t k = border[i - 1];
    while (k > 0 && value[i] != value[k]) k = border[k - 1];
    if (value[i] == value[k]) ++k;
    border[i] = k;
  }
  const std::size_t period = n - border[n - 1];
  return period * 2 <= n;
}

// length x log2(alphabet), with the alphabet made of the character classes that occur.
double estimated_bits(std::string_view value) {
  bool has_lower = false, has_upper = false, has_digit = false, has_other = false;
  for (char c : value) {
    if (c >= 'a' && c <= 'z') {
      has_lower = true;
    } else if (c >= 'A' && c <= 'Z') {
      has_upper = true;
    } else if (c >= '0' && c <= '9') {
      has_digit = true;
    } else {
      has_other = true;
    }
  }
  const int alphabet =
      (has_lower ? 26 : 0) + (has_upper ? 26 : 0) + (has_digit ? 10 : 0) + (has_other ? 33 : 0);
  if (alphabet == 0) return 0;
  return static_cast<double>(value.size()) * std::log2(static_cast<double>(alphabet));
}

}  // namespace

std::string secret_weakness(std::string_view value, std::size_t min_length) {
  if (value.empty()) return "is not set";
  if (is_example(value)) return "is the example value";
  if (value.size() < min_length) {
    return "is " + std::to_string(value.size()) + " characters long; at least " + std::to_string(min_length) +
           " are required";
  }
  if (distinct_characters(value) < kMinDistinct) return "is not random (too few distinct characters)";
  if (is_repeated_pattern(value)) return "is not random (a repeated pattern)";
  const double bits = estimated_bits(value);
  if (bits < kMinSecretBits) {
    return "is too weak (about " + std::to_string(static_cast<long long>(std::floor(bits))) + " bits; " +
           std::to_string(static_cast<long long>(kMinSecretBits)) + " are required)";
  }
  return "";
}

bool is_placeholder_secret(std::string_view value) {
  return is_example(value);
}

std::string secrets_file_exposure(unsigned mode) {
  const bool group = (mode & 0060U) != 0;
  const bool others = (mode & 0006U) != 0;
  if (!group && !others) return "";
  const bool writable = (mode & 0022U) != 0;
  const bool readable = (mode & 0044U) != 0;
  const std::string access = readable && writable ? "readable and writable"
                             : readable           ? "readable"
                                                  : "writable";
  const std::string who = group && others ? "its group and others" : group ? "its group" : "others";
  std::string octal;  // four digits, like "0644"
  for (int shift = 9; shift >= 0; shift -= 3) octal += static_cast<char>('0' + ((mode >> shift) & 7U));
  return "is " + access + " by " + who + " (mode " + octal + "); `chmod 600` it";
}

}  // namespace unshelver::core
