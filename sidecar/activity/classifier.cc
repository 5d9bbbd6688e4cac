// ActivityClassifier: two parsers that must agree.
//
// The specification is classify_reference(): parse the line with nlohmann::json, check the
// fields in a fixed order (ts, duration, request, request.host, request.uri, request.method,
// request.headers, resp_headers), collect what the line says into LineFacts, and decide().
// It is simple and obviously right, but a DOM parse runs at about 100 MB/s, far below what a busy
// Caddy can write.
//
// So classify() first tries a fast path made for the lines Caddy actually writes: compact JSON,
// printable ASCII, no escapes. One SIMD pass over the line rejects backslashes, control
// characters and non-ASCII bytes and records where every '"' is; with no escapes, a string ends at
// the next quote, so strings (most of a line) are skipped with a bit scan. A strict recursive
// walk then validates the whole grammar and picks out the fields. Whenever the fast path meets
// anything it does not fully handle (escapes, whitespace, exponents, duplicate keys that matter,
// a missing field, a wrong type, bad JSON) it gives up and the reference decides. The fast path
// therefore never decides a line differently from the reference; tests/fuzz/classifier_fuzz.cc
// checks exactly that.
//
// Before either, a pre-scan (other_host_indexed) settles the lines of hosts that are none of
// the targets' (most of a shared Caddy's log) without walking them: it looks at every place where
// the bytes `"host":` occur and, when each of them holds a string that is nobody's host, the line
// is "other_host" without being validated (a product decision: such lines need no more). The
// reference can attribute a line to a target only when its request.host is a target's, and in a
// line without \u escapes that key is those very bytes; so a line where no such place names a
// target is none of ours, whatever its structure, and the fuzz target checks exactly that. It
// costs a few compares per line instead of a walk up to the host (issue 20).
//
// Duplicate keys follow nlohmann (and Python, and Go): the last one wins. Header names compare
// case-insensitively, so several keys can name X-Served-By; a label in any of them counts.
#include "activity/classifier.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <span>
#include <unordered_set>

#include "base/text.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace unshelver::core {

std::string_view to_string(LineOutcome outcome) {
  switch (outcome) {
    case LineOutcome::kActivity: return "activity";
    case LineOutcome::kIgnored: return "ignored";
    case LineOutcome::kOtherTraffic: return "other";
    case LineOutcome::kMalformedJson: return "malformed_json";
    case LineOutcome::kMissingField: return "missing_field";
    case LineOutcome::kWrongType: return "wrong_type";
    case LineOutcome::kOtherHost: return "other_host";
  }
  return "unknown";
}

namespace {

using json = nlohmann::json;

constexpr std::array kAllOutcomes = {LineOutcome::kActivity,     LineOutcome::kIgnored,
                                     LineOutcome::kOtherTraffic, LineOutcome::kMalformedJson,
                                     LineOutcome::kMissingField, LineOutcome::kWrongType,
                                     LineOutcome::kOtherHost};

// classify() counts through an index by outcome, so this array follows the enum's order.
constexpr bool outcomes_in_enum_order() {
  for (std::size_t i = 0; i < kAllOutcomes.size(); ++i) {
    if (static_cast<std::size_t>(kAllOutcomes[i]) != i) return false;
  }
  return true;
}
static_assert(outcomes_in_enum_order());

// libstdc++'s std::regex matches recursively, so a long subject can exhaust the stack. User agents
// are searched in their first 4 KiB only; real ones are a few hundred bytes.
constexpr std::size_t kMaxRegexSubject = 4096;

// Up to this many targets, the pre-scan compares a host with each instead of hashing it.
constexpr std::size_t kFewTargets = 8;

// Nesting deeper than this is left to the reference parser, whose parser does not recurse.
constexpr int kMaxFastDepth = 32;

// Numbers this long could overflow a double; the reference decides them (nlohmann rejects a
// number that overflows with "number overflow").
constexpr std::size_t kMaxFastNumber = 300;

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// Eight bytes at once, their ASCII capitals made small (SWAR): a byte's low seven bits are at
// least 'A' when adding 0x80 - 'A' sets its top bit, and above 'Z' when adding 0x7f - 'Z' does;
// bytes from 0x80 are left alone. No carry crosses a byte: the low seven bits plus at most 0x3f
// stay below 0x100.
std::uint64_t ascii_lower_word(std::uint64_t word) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kTops = 0x80 * kOnes;
  const std::uint64_t low_bits = word & ~kTops;
  const std::uint64_t at_least_a = low_bits + (0x80 - 'A') * kOnes;
  const std::uint64_t above_z = low_bits + (0x7f - 'Z') * kOnes;
  const std::uint64_t capital = at_least_a & ~above_z & ~word & kTops;
  return word | (capital >> 2);  // 0x80 >> 2 is 0x20, the case bit
}

// `lower` is already lower-case. Hosts, header names and user agents are compared here, on
// every line of ours: a word at a time.
[[gnu::always_inline]] inline bool iequals(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::memcpy(&a, text.data() + i, 8);
    std::memcpy(&b, lower.data() + i, 8);
    if (ascii_lower_word(a) != b) return false;
  }
  for (; i < text.size(); ++i) {
    if (ascii_lower(text[i]) != lower[i]) return false;
  }
  return true;
}

constexpr std::string_view kUserAgent = "user-agent";
constexpr std::string_view kServedBy = "x-served-by";

bool to_double(std::string_view text, double& out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

// What a line says, however it was parsed. The views point into the line (fast path) or into the
// parsed document (reference), and live as long as those.
struct LineFacts {
  double ts = 0;
  double duration = 0;
  std::string_view ts_text;        // the fast path's numbers, converted only when needed
  std::string_view duration_text;  // empty: no duration
  std::string_view host;
  std::string_view uri;
  std::string_view method;
  std::span<const std::string_view> user_agents;  // first value of each User-Agent header
  std::span<const std::string_view> labels;       // every value of every X-Served-By header
};

LineResult bad_line(LineOutcome outcome, std::string_view reason) {
  LineResult result;
  result.outcome = outcome;
  result.reason = reason;
  return result;
}

// The fast path's parser: a strict walk over compact JSON whose strings hold no escapes (the
// caller checked the bytes). Without escapes every '"' in the line delimits a string, in order,
// so the walk takes a string's end from the quote index (one bit per '"') instead of scanning
// it: a string begins at a '"' and ends at the next bit set after it. Every function returns false when
// the line is not of that simple kind; the caller then asks the reference parser, so false never means
// "malformed".
//
// Speed: the Cursor is a small value that the compiler keeps in registers. The walk over the
// fields we read (LineWalker) is inlined into one function whose Cursor never escapes; values
// the walk does not read, other than strings and numbers, are skipped by out-of-line recursive
// calls on a copy. Were the cursor a member reached through `this`, every store of a
// std::string_view (whose size is a size_t, like the cursor's fields) could alias it, and the
// compiler would reload it from memory at each step.
#define UNSHELVER_INLINE [[gnu::always_inline]] inline

struct Cursor {
  // The line, followed by a '\0' (the walk runs on a copy in a std::string, whose data()[size()] is
  // '\0'). No byte of a line the walk accepts is below 0x20, and the walk never moves past a
  // '\0', so pos never passes size and text[pos] is always readable: punctuation is checked
  // without a bounds check.
  const char* text;
  std::size_t size;
  std::size_t pos;
  // The quote index of the line: bit i of word w for a '"' at 64 * w + i, then a word with its
  // lowest bit set (see end_mark()), so that the search for a closing quote always stops.
  const std::uint64_t* quotes;

  UNSHELVER_INLINE bool consume(char c) {
    if (text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }

  UNSHELVER_INLINE char peek() const { return text[pos]; }

  // A string begins at a '"' and, with no escapes in the line, ends at the next quote: the next
  // bit set in the index after pos. The walk's other tokens (punctuation, numbers, literals) never
  // hold a '"', so it takes every quote of a valid line through here, in pairs. A string that
  // does not end within the line finds the end mark at or past `size` and is refused.
  UNSHELVER_INLINE bool string(std::string_view& out) {
    if (text[pos] != '"') return false;
    const std::size_t after = pos + 1;
    // Most strings end within the word where they begin (the bits from `after` on).
    std::size_t end = 0;
    if (const std::uint64_t rest = quotes[after / 64] >> (after % 64); rest != 0) {
      end = after + static_cast<std::size_t>(std::countr_zero(rest));
    } else {
      std::size_t word = after / 64;
      std::uint64_t bits = 0;
      while (bits == 0) bits = quotes[++word];
      end = word * 64 + static_cast<std::size_t>(std::countr_zero(bits));
    }
    if (end >= size) return false;
    out = std::string_view(text + after, end - after);
    pos = end + 1;
    return true;
  }

  UNSHELVER_INLINE bool key_and_colon(std::string_view& key) { return string(key) && consume(':'); }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  // Moves past a run of digits, eight bytes at a time while eight remain (timestamps and
  // durations have up to twenty). A byte x ^ '0' is a digit's value exactly when its high nibble
  // is zero and its low nibble plus 6 stays below 0x10; adding to the low nibbles alone keeps
  // every byte's sum within the byte.
  UNSHELVER_INLINE void skip_digits() {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    // The first byte in memory is the lowest of the word only on a little-endian machine.
    if constexpr (std::endian::native == std::endian::little) {
      while (size - pos >= 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, text + pos, 8);
        word ^= '0' * kOnes;
        const std::uint64_t not_digit =
            (word & (0xf0 * kOnes)) | (((word & (0x0f * kOnes)) + 0x06 * kOnes) & (0x10 * kOnes));
        if (not_digit != 0) {
          pos += static_cast<std::size_t>(std::countr_zero(not_digit)) / 8;
          return;
        }
        pos += 8;
      }
    }
    while (is_digit(text[pos])) ++pos;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)? ; exponents and very long numbers go to the reference.
  UNSHELVER_INLINE bool number(std::string_view& out) {
    std::size_t start = pos;
    consume('-');
    if (consume('0')) {
      // A leading zero stands alone.
    } else if (text[pos] >= '1' && text[pos] <= '9') {
      skip_digits();
    } else {
      return false;
    }
    if (consume('.')) {
      if (!is_digit(peek())) return false;
      skip_digits();
    }
    char next = peek();
    if (next == 'e' || next == 'E' || is_digit(next)) return false;
    if (pos - start > kMaxFastNumber) return false;
    out = std::string_view(text + start, pos - start);
    return true;
  }

  bool literal(std::string_view word) {
    if (size - pos < word.size() || std::memcmp(text + pos, word.data(), word.size()) != 0) return false;
    pos += word.size();
    return true;
  }

  // Any JSON value, validated and skipped. Strings and numbers, the common values, are handled
  // inline by skip_value(); this is for the rest.
  bool value(int depth) {
    std::string_view ignored;
    switch (peek()) {
      case '"': return string(ignored);
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number(ignored);
    }
  }

  bool object(int depth) {
    if (depth > kMaxFastDepth || !consume('{')) return false;
    if (consume('}')) return true;
    do {
      std::string_view key;
      if (!key_and_colon(key) || !value(depth)) return false;
    } while (consume(','));
    return consume('}');
  }

  bool array(int depth) {
    if (depth > kMaxFastDepth || !consume('[')) return false;
    if (consume(']')) return true;
    do {
      if (!value(depth)) return false;
    } while (consume(','));
    return consume(']');
  }

  UNSHELVER_INLINE bool skip_value(int depth) {
    std::string_view ignored;
    char c = peek();
    if (c == '"') return string(ignored);
    if (c == '-' || is_digit(c)) return number(ignored);
    Cursor copy = *this;  // the copy escapes into the out-of-line call; *this stays in registers
    if (!copy.value(depth)) return false;
    *this = copy;
    return true;
  }
};

// Two loads of `Word` each, from the start and from the end (overlapping when the length is not
// twice a word's): equality of `length` bytes, for 1 * sizeof(Word) <= length <= 2 * sizeof(Word).
template <typename Word>
UNSHELVER_INLINE bool same_ends(const char* a, const char* b, std::size_t length) {
  Word a_head, b_head, a_tail, b_tail;
  std::memcpy(&a_head, a, sizeof(Word));
  std::memcpy(&b_head, b, sizeof(Word));
  std::memcpy(&a_tail, a + length - sizeof(Word), sizeof(Word));
  std::memcpy(&b_tail, b + length - sizeof(Word), sizeof(Word));
  return ((a_head ^ b_head) | (a_tail ^ b_tail)) == 0;
}

// Compares with a literal of up to 16 characters in a few word loads. GCC at -O2 calls memcmp
// for lengths such as 7 or 12 ("request", "resp_headers"), and a byte loop stays a loop.
template <std::size_t N>
UNSHELVER_INLINE bool is(std::string_view key, const char (&word)[N]) {
  constexpr std::size_t kLength = N - 1;
  static_assert(kLength >= 1 && kLength <= 16);
  if (key.size() != kLength) return false;
  if constexpr (kLength >= 8) {
    return same_ends<std::uint64_t>(key.data(), word, kLength);
  } else if constexpr (kLength >= 4) {
    return same_ends<std::uint32_t>(key.data(), word, kLength);
  } else if constexpr (kLength >= 2) {
    return same_ends<std::uint16_t>(key.data(), word, kLength);
  } else {
    return key[0] == word[0];
  }
}

using Values = std::array<std::string_view, 8>;  // more values than this go to the reference

class LineWalker {
 public:
  // `user_agents` and `labels` receive the values; they outlive the walker, so that nothing is
  // initialised per line.
  LineWalker(std::string_view line, const std::uint64_t* quotes, LineFacts& facts, Values& user_agents,
             Values& labels)
      : cursor_{line.data(), line.size(), 0, quotes},
        facts_(facts),
        user_agents_(user_agents),
        labels_(labels) {}

  UNSHELVER_INLINE bool walk() {
    Cursor& c = cursor_;
    if (!c.consume('{')) return false;
    enum : unsigned { kTs = 1, kDuration = 2, kRequest = 4, kRespHeaders = 8 };
    unsigned seen = 0;
    std::string_view ts_text;
    std::string_view duration_text;
    std::string_view key;
    do {
      if (!c.key_and_colon(key)) return false;
      unsigned bit = 0;
      if (is(key, "ts")) {
        bit = kTs;
        if (!c.number(ts_text)) return false;
      } else if (is(key, "duration")) {
        bit = kDuration;
        if (!c.number(duration_text)) return false;
      } else if (is(key, "request")) {
        bit = kRequest;
        if (!request()) return false;
      } else if (is(key, "resp_headers")) {
        bit = kRespHeaders;
        if (!headers(kServedBy, /*first_only=*/false, labels_, label_count_)) return false;
      } else if (!c.skip_value(1)) {
        return false;
      }
      // A second "ts" would override the first; let the reference sort out duplicates.
      if ((seen & bit) != 0) return false;
      seen |= bit;
    } while (c.consume(','));
    if (!c.consume('}') || c.pos != c.size) return false;
    if ((seen & (kTs | kRequest | kRespHeaders)) != (kTs | kRequest | kRespHeaders)) return false;
    facts_.ts_text = ts_text;
    facts_.duration_text = duration_text;
    facts_.host = host_;
    facts_.uri = uri_;
    facts_.method = method_;
    facts_.user_agents = std::span<const std::string_view>(user_agents_.data(), user_agent_count_);
    facts_.labels = std::span<const std::string_view>(labels_.data(), label_count_);
    return true;
  }

 private:
  UNSHELVER_INLINE bool request() {
    Cursor& c = cursor_;
    if (!c.consume('{')) return false;
    enum : unsigned { kHost = 1, kUri = 2, kMethod = 4, kHeaders = 8 };
    unsigned seen = 0;
    if (!c.consume('}')) {
      std::string_view key;
      do {
        if (!c.key_and_colon(key)) return false;
        unsigned bit = 0;
        if (is(key, "host")) {
          bit = kHost;
          if (!c.string(host_)) return false;
        } else if (is(key, "uri")) {
          bit = kUri;
          if (!c.string(uri_)) return false;
        } else if (is(key, "method")) {
          bit = kMethod;
          if (!c.string(method_)) return false;
        } else if (is(key, "headers")) {
          bit = kHeaders;
          if (!headers(kUserAgent, /*first_only=*/true, user_agents_, user_agent_count_)) return false;
        } else if (!c.skip_value(2)) {
          return false;
        }
        if ((seen & bit) != 0) return false;
        seen |= bit;
      } while (c.consume(','));
      if (!c.consume('}')) return false;
    }
    return (seen & kHost) != 0;
  }

  // A header object: every value an array of strings. Collects the values of the header named
  // `wanted` (any case): all of them, or the first only. More than one key naming it, in any
  // spelling, is left to the reference.
  UNSHELVER_INLINE bool headers(std::string_view wanted, bool first_only, Values& values,
                                std::size_t& count) {
    Cursor& c = cursor_;
    if (!c.consume('{')) return false;
    if (c.consume('}')) return true;
    bool found = false;
    std::string_view name;
    std::string_view element;
    do {
      if (!c.key_and_colon(name) || !c.consume('[')) return false;
      bool collect = name.size() == wanted.size() && iequals(name, wanted);
      if (collect) {
        if (found) return false;
        found = true;
      }
      if (!c.consume(']')) {
        do {
          if (!c.string(element)) return false;
          if (collect && (count == 0 || !first_only)) {
            if (count == values.size()) return false;
            values[count++] = element;
          }
        } while (c.consume(','));
        if (!c.consume(']')) return false;
      }
    } while (c.consume(','));
    return c.consume('}');
  }

  Cursor cursor_;
  LineFacts& facts_;
  std::string_view host_;
  std::string_view uri_;
  std::string_view method_;
  Values& user_agents_;
  std::size_t user_agent_count_ = 0;
  Values& labels_;
  std::size_t label_count_ = 0;
};

#undef UNSHELVER_INLINE

// The quote index: one pass over the line that returns false if it holds a backslash, a control
// character or a non-ASCII byte (the walk handles none of those), and in either case sets one
// bit per '"' in `words` (one word per 64 bytes; `words` must have room for them), and one bit per
// 'h' in `letters` (where a string "host" may begin, for the pre-scan).
using IndexQuotes = bool (*)(std::string_view line, std::uint64_t* words, std::uint64_t* letters);

// Handles the last, partial block through a padded copy, so that no load reads past the line.
template <typename Block>
bool index_blocks(std::string_view line, std::uint64_t* words, std::uint64_t* letters, Block block) {
  const std::size_t full = line.size() / 64;
  bool clean = true;
  for (std::size_t w = 0; w < full; ++w) clean &= block(line.data() + 64 * w, words[w], letters[w]);
  if (full * 64 < line.size()) {
    alignas(64) char tail[64];
    std::memset(tail, 'x', sizeof tail);
    std::memcpy(tail, line.data() + 64 * full, line.size() - 64 * full);
    clean &= block(tail, words[full], letters[full]);
  }
  return clean;
}

bool index_quotes_portable(std::string_view line, std::uint64_t* words, std::uint64_t* letters) {
  return index_blocks(line, words, letters, [](const char* p, std::uint64_t& quotes, std::uint64_t& h_bits) {
    std::uint64_t bits = 0;
    std::uint64_t letter_bits = 0;
    bool clean = true;
    for (int i = 0; i < 64; ++i) {
      auto c = static_cast<unsigned char>(p[i]);
      clean &= c >= 0x20 && c < 0x80 && c != '\\';
      bits |= std::uint64_t{c == '"'} << i;
      letter_bits |= std::uint64_t{c == 'h'} << i;
    }
    quotes = bits;
    h_bits = letter_bits;
    return clean;
  });
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// x86-64 always has SSE2; signed compares below 0x20 catch control characters and, since bytes
// from 0x80 are negative, every non-ASCII byte as well.
bool index_quotes_sse2(std::string_view line, std::uint64_t* words, std::uint64_t* letters) {
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i h = _mm_set1_epi8('h');
  return index_blocks(line, words, letters, [&](const char* p, std::uint64_t& quotes, std::uint64_t& h_bits) {
    std::uint64_t bits = 0;
    std::uint64_t letter_bits = 0;
    __m128i bad = _mm_setzero_si128();
    for (int i = 0; i < 4; ++i) {
      __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + std::ptrdiff_t{16} * i));
      bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmplt_epi8(chunk, space), _mm_cmpeq_epi8(chunk, backslash)));
      auto mask = static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, quote)));
      bits |= std::uint64_t{mask} << (16 * i);
      auto letter_mask = static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, h)));
      letter_bits |= std::uint64_t{letter_mask} << (16 * i);
    }
    quotes = bits;
    h_bits = letter_bits;
    return _mm_movemask_epi8(bad) == 0;
  });
}

// Written out rather than through index_blocks(): a lambda does not inherit target("avx2"), so
// it could not be inlined into the loop.
__attribute__((target("avx2"))) bool index_quotes_avx2(std::string_view line, std::uint64_t* words,
                                                       std::uint64_t* letters) {
  const __m256i quote = _mm256_set1_epi8('"');
  const __m256i h = _mm256_set1_epi8('h');
  const __m256i backslash = _mm256_set1_epi8('\\');
  const __m256i space = _mm256_set1_epi8(0x20);
  __m256i bad = _mm256_setzero_si256();
  auto block = [&](const char* p, std::uint64_t& h_bits) __attribute__((target("avx2"), always_inline)) {
    __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    bad =
        _mm256_or_si256(bad, _mm256_or_si256(_mm256_cmpgt_epi8(space, low), _mm256_cmpgt_epi8(space, high)));
    bad = _mm256_or_si256(
        bad, _mm256_or_si256(_mm256_cmpeq_epi8(low, backslash), _mm256_cmpeq_epi8(high, backslash)));
    auto low_bits = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(low, quote)));
    auto high_bits = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(high, quote)));
    auto low_letters = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(low, h)));
    auto high_letters = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(high, h)));
    h_bits = std::uint64_t{low_letters} | (std::uint64_t{high_letters} << 32);
    return std::uint64_t{low_bits} | (std::uint64_t{high_bits} << 32);
  };
  const std::size_t full = line.size() / 64;
  for (std::size_t w = 0; w < full; ++w) words[w] = block(line.data() + 64 * w, letters[w]);
  if (full * 64 < line.size()) {
    alignas(64) char tail[64];
    std::memset(tail, 'x', sizeof tail);
    std::memcpy(tail, line.data() + 64 * full, line.size() - 64 * full);
    words[full] = block(tail, letters[full]);
  }
  return _mm256_testz_si256(bad, bad) != 0;
}

#endif

struct IndexVariant {
  std::string_view name;
  IndexQuotes function;
};

// The variants this CPU can run, fastest first.
std::vector<IndexVariant> index_variants() {
  std::vector<IndexVariant> variants;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) variants.push_back({"avx2", index_quotes_avx2});
  variants.push_back({"sse2", index_quotes_sse2});
#endif
  variants.push_back({"portable", index_quotes_portable});
  return variants;
}

// The places where a string may begin with 'h' (a quote right before an 'h'), bit i for the
// quote at i - 1 of word w: the previous word's last quote carries in.
std::uint64_t quote_then_h(const std::uint64_t* quotes, const std::uint64_t* letters, std::size_t w) {
  return ((quotes[w] << 1) | (w > 0 ? quotes[w - 1] >> 63 : 0)) & letters[w];
}

// Marks the end of a `size`-byte line's quote index (one word per 64 bytes, room for one more):
// the word after the line's gets a bit at position 64 * (word count), at or past the line's end,
// so that Cursor::string()'s search for a closing quote stops there.
void end_mark(std::uint64_t* words, std::size_t size) {
  words[(size + 63) / 64] = 1;
}

// Lower-case host names, found by a std::string_view without a copy.
struct HostHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view host) const { return std::hash<std::string_view>{}(host); }
};

bool is_string_array(const json& value) {
  return value.is_array() &&
         std::all_of(value.begin(), value.end(), [](const json& e) { return e.is_string(); });
}

bool all_string_arrays(const json& headers) {
  return std::all_of(headers.begin(), headers.end(), [](const json& v) { return is_string_array(v); });
}

}  // namespace

struct ActivityClassifier::Impl {
  struct Target {
    std::string host;  // lower-case, without port or brackets
    std::string label;
  };
  std::vector<Target> targets;
  // The targets' hosts, for the pre-scan, and the longest (a longer host is nobody's).
  std::unordered_set<std::string, HostHash, std::equal_to<>> target_hosts;
  std::size_t longest_target_host = 0;

  std::vector<std::string> user_agents;  // lower-case, non-empty
  std::array<bool, 256> agent_first_letters{};
  // The distinct first characters of user_agents, when all are ASCII letters (else empty): the
  // SIMD search looks for them sixteen bytes at a time.
  std::string agent_first_letter_list;
  // The distinct first two characters of user_agents, when every entry starts with two ASCII
  // letters (else empty): pairs are rarer in a user agent than single letters, so far fewer places
  // are compared in full.
  std::vector<std::array<char, 2>> agent_first_pairs;
  std::vector<std::regex> user_agent_patterns;
  std::vector<std::string> exact_paths;
  std::vector<std::string> path_prefixes;
  std::vector<std::string> methods;

  IndexQuotes index_quotes = index_variants().front().function;

  // Reused on every line, so that the common path does not allocate. Scratch space, also for the
  // const pre-scan.
  mutable std::vector<std::uint64_t> quotes;   // grows to the longest line seen, never shrinks
  mutable std::vector<std::uint64_t> letters;  // the same size: where an 'h' is
  Values user_agent_values;
  Values label_values;
  std::string walk_copy;  // the line the walk reads, '\0'-terminated (see Cursor)

  // Pointers into counters_.by_outcome (map nodes stay put when the map moves).
  std::array<std::uint64_t*, kAllOutcomes.size()> outcome_counts{};

  Impl(const std::vector<ActivityTarget>& configured, const IgnoreRules& rules) {
    for (const auto& target : configured) {
      targets.push_back(Target{to_lower(host_without_port(target.host)), target.label});
      target_hosts.insert(targets.back().host);
      longest_target_host = std::max(longest_target_host, targets.back().host.size());
    }
    for (const auto& agent : rules.user_agents) {
      if (agent.empty()) continue;
      user_agents.push_back(to_lower(agent));
      agent_first_letters[static_cast<unsigned char>(user_agents.back().front())] = true;
    }
    for (int c = 'a'; c <= 'z'; ++c) {
      if (agent_first_letters[static_cast<unsigned char>(c)]) agent_first_letter_list += static_cast<char>(c);
    }
    const auto first_letters =
        static_cast<std::size_t>(std::count(agent_first_letters.begin(), agent_first_letters.end(), true));
    if (first_letters != agent_first_letter_list.size()) agent_first_letter_list.clear();
    const auto is_lower_letter = [](char c) { return c >= 'a' && c <= 'z'; };
    for (const auto& agent : user_agents) {
      if (agent.size() < 2 || !is_lower_letter(agent[0]) || !is_lower_letter(agent[1])) {
        agent_first_pairs.clear();
        break;
      }
      const std::array<char, 2> pair{agent[0], agent[1]};
      if (std::find(agent_first_pairs.begin(), agent_first_pairs.end(), pair) == agent_first_pairs.end()) {
        agent_first_pairs.push_back(pair);
      }
    }
    for (const auto& pattern : rules.user_agent_patterns) {
      // The config parser compiled these already; a bad one throws here, at startup.
      user_agent_patterns.emplace_back(pattern,
                                       std::regex::ECMAScript | std::regex::icase | std::regex::optimize);
    }
    for (const auto& path : rules.paths) {
      if (!path.empty() && path.back() == '*') {
        path_prefixes.push_back(path.substr(0, path.size() - 1));
      } else {
        exact_paths.push_back(path);
      }
    }
    methods = rules.methods;
  }

  // Whether an entry of user_agents starts at agent[i], whose lower-case form is `c`.
  bool agent_named_at(std::string_view agent, std::size_t i, char c) const {
    for (const auto& needle : user_agents) {
      if (needle.front() == c && needle.size() <= agent.size() - i &&
          iequals(agent.substr(i, needle.size()), needle)) {
        return true;
      }
    }
    return false;
  }

  // Whether the agent holds an entry of user_agents, any case. An entry is compared only where
  // its first letter (or first two) appears.
  bool agent_named(std::string_view agent) const {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (!agent_first_pairs.empty() || !agent_first_letter_list.empty()) {
      // Sixteen places at a time (SSE2, which every x86-64 has): a byte with the case bit set
      // equals a lower-case letter exactly when the byte is that letter in either case. With
      // pairs, the byte there and the byte after are compared at once; else the first letters.
      // The last blocks are read from a copy padded with zeros, which match no letter, so that
      // no load (that of the bytes after included) reads past the agent.
      const __m128i case_bit = _mm_set1_epi8(0x20);
      for (std::size_t at = 0; at < agent.size(); at += 16) {
        alignas(16) char padded[32] = {};
        const char* block = agent.data() + at;
        if (agent.size() - at < 17) {
          std::memcpy(padded, block, agent.size() - at);
          block = padded;
        }
        const __m128i here = _mm_or_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)), case_bit);
        __m128i hits = _mm_setzero_si128();
        if (!agent_first_pairs.empty()) {
          const __m128i next =
              _mm_or_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 1)), case_bit);
          for (const auto& pair : agent_first_pairs) {
            hits = _mm_or_si128(hits, _mm_and_si128(_mm_cmpeq_epi8(here, _mm_set1_epi8(pair[0])),
                                                    _mm_cmpeq_epi8(next, _mm_set1_epi8(pair[1]))));
          }
        } else {
          for (char letter : agent_first_letter_list) {
            hits = _mm_or_si128(hits, _mm_cmpeq_epi8(here, _mm_set1_epi8(letter)));
          }
        }
        for (auto mask = static_cast<unsigned>(_mm_movemask_epi8(hits)); mask != 0; mask &= mask - 1) {
          const std::size_t i = at + static_cast<std::size_t>(std::countr_zero(mask));
          if (agent_named_at(agent, i, ascii_lower(agent[i]))) return true;
        }
      }
      return false;
    }
#endif
    for (std::size_t i = 0; i < agent.size(); ++i) {
      char c = ascii_lower(agent[i]);
      if (agent_first_letters[static_cast<unsigned char>(c)] && agent_named_at(agent, i, c)) return true;
    }
    return false;
  }

  bool user_agent_ignored(std::string_view agent) const {
    if (!user_agents.empty() && agent_named(agent)) return true;
    std::string_view subject = agent.substr(0, kMaxRegexSubject);
    for (const auto& pattern : user_agent_patterns) {
      try {
        if (std::regex_search(subject.begin(), subject.end(), pattern)) return true;
      } catch (const std::exception&) {
        // error_complexity or error_stack: treat as no match rather than fail the line.
      }
    }
    return false;
  }

  // Which ignore rule matches, or an empty view.
  std::string_view ignore_reason(const LineFacts& facts) const {
    if (!user_agents.empty() || !user_agent_patterns.empty()) {
      if (facts.user_agents.empty()) {
        // No User-Agent: only a pattern such as "^$" can match the empty string.
        if (!user_agent_patterns.empty() && user_agent_ignored("")) return "user_agent";
      } else {
        for (std::string_view agent : facts.user_agents) {
          if (user_agent_ignored(agent)) return "user_agent";
        }
      }
    }
    std::string_view path = facts.uri.substr(0, facts.uri.find('?'));
    for (const auto& exact : exact_paths) {
      if (path == exact) return "path";
    }
    for (const auto& prefix : path_prefixes) {
      if (path.starts_with(prefix)) return "path";
    }
    for (const auto& method : methods) {
      if (facts.method == method) return "method";
    }
    return {};
  }

  // The first target whose host and label the line carries, or -1.
  int match_backend(const LineFacts& facts) const {
    std::string_view host = host_without_port(facts.host);
    const auto& labels = facts.labels;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const Target& target = targets[i];
      if (iequals(host, target.host) &&
          std::find(labels.begin(), labels.end(), target.label) != labels.end()) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  LineResult decide(const LineFacts& facts, int backend) const {
    LineResult result;
    result.outcome = LineOutcome::kOtherTraffic;
    if (backend < 0) return result;
    result.backend = backend;
    result.end_seconds = facts.ts;
    result.start_seconds = facts.ts - facts.duration;
    result.reason = ignore_reason(facts);
    result.outcome = result.reason.empty() ? LineOutcome::kActivity : LineOutcome::kIgnored;
    return result;
  }

  // Whether `host` (as a line carries it: any case, maybe with a port) is a target's.
  bool target_host(std::string_view host) const {
    host = host_without_port(host);
    if (host.size() > longest_target_host) return false;
    // A few targets are compared directly: cheaper than hashing the host.
    if (targets.size() <= kFewTargets) {
      return std::any_of(targets.begin(), targets.end(),
                         [host](const Target& target) { return iequals(host, target.host); });
    }
    std::array<char, 256> lower{};
    if (host.size() > lower.size()) return target_hosts.contains(to_lower(host));
    for (std::size_t i = 0; i < host.size(); ++i) lower[i] = ascii_lower(host[i]);
    return target_hosts.contains(std::string_view(lower.data(), host.size()));
  }

  // The quote index of `line` into `quotes`; false when the line holds bytes that neither the
  // pre-scan nor the fast walk handles (escapes, control characters, non-ASCII).
  bool index(std::string_view line) const {
    std::size_t words = (line.size() + 63) / 64;
    if (quotes.size() < words + 2) quotes.resize(words + 2);
    if (letters.size() < words + 2) letters.resize(words + 2);
    return index_quotes(line, quotes.data(), letters.data());
  }

  // Whether the pre-scan may look at a line that index() has indexed, `clean` being its answer.
  // Only a \u escape can spell the key "host" other than as the bytes `"host"` (RFC 8259 §7);
  // other escapes, control characters and non-ASCII bytes do not matter to it. Lines with those
  // are rare, so they are searched for "\u" only when the index found them.
  static bool pre_scan_applies(std::string_view line, bool clean) {
    return clean || line.find("\\u") == std::string_view::npos;
  }

  // The pre-scan, on a line index() has indexed and pre_scan_applies() to: true when every
  // `"host":` in the line is followed by a string that is none of the targets' hosts, and there is
  // at least one. The reference attributes a line to a target only when it is valid JSON whose
  // request.host is a target's; without \u escapes, that key is the bytes `"host"`, followed by
  // ':' and the value. So every occurrence of those bytes is looked at (some may lie inside a
  // string, after an escaped quote: looking at them too is only more careful). A value of another
  // type cannot be a target's host (the reference calls it wrong_type at most) and is passed over;
  // whitespace after the key or its colon, or a backslash in the value, leaves the line to the
  // parsers.
  bool other_host_indexed(std::string_view line) const {
    const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    const std::size_t word_count = (line.size() + 63) / 64;
    bool named = false;
    for (std::size_t w = 0; w < word_count; ++w) {
      for (std::uint64_t candidates = quote_then_h(quotes.data(), letters.data(), w); candidates != 0;
           candidates &= candidates - 1) {
        const std::size_t at = w * 64 + static_cast<std::size_t>(std::countr_zero(candidates)) - 1;
        // Seven bytes compared in two word loads: `"host":`, else `"host"` and whitespace (a key
        // still: unsure), else a string that is no key "host".
        const std::string_view here = line.substr(at, 7);
        if (!is(here, R"("host":)")) {
          if (here.size() == 7 && here.starts_with(R"("host")") && is_space(here[6])) return false;
          continue;
        }
        const std::size_t value = at + 7;
        if (value == line.size() || is_space(line[value])) return false;
        if (line[value] != '"') continue;
        const std::size_t end = line.find('"', value + 1);
        if (end == std::string_view::npos) return false;
        const std::string_view host = line.substr(value + 1, end - value - 1);
        if (host.find('\\') != std::string_view::npos || target_host(host)) return false;
        named = true;
      }
    }
    return named;
  }

  bool other_host(std::string_view line) const {
    return pre_scan_applies(line, index(line)) && other_host_indexed(line);
  }

  // The fast walk, on a line index() accepted and the pre-scan did not settle. False: the
  // reference decides.
  bool classify_fast(std::string_view line, LineResult& result) {
    LineFacts facts;
    end_mark(quotes.data(), line.size());
    walk_copy.assign(line);  // reuses its capacity; the views in `facts` point into it
    LineWalker walker(walk_copy, quotes.data(), facts, user_agent_values, label_values);
    if (!walker.walk()) return false;
    int backend = match_backend(facts);
    // Numbers are converted only when they are reported: from_chars is a good part of the cost.
    if (backend >= 0) {
      if (!to_double(facts.ts_text, facts.ts)) return false;
      if (!facts.duration_text.empty() && !to_double(facts.duration_text, facts.duration)) return false;
    }
    result = decide(facts, backend);
    return true;
  }

  LineResult classify_reference(std::string_view line) const {
    json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return bad_line(LineOutcome::kMalformedJson, "not_json");
    if (!doc.is_object()) return bad_line(LineOutcome::kMalformedJson, "not_object");

    LineFacts facts;
    auto ts = doc.find("ts");
    if (ts == doc.end()) return bad_line(LineOutcome::kMissingField, "ts");
    if (!ts->is_number()) return bad_line(LineOutcome::kWrongType, "ts");
    facts.ts = ts->get<double>();
    auto duration = doc.find("duration");
    if (duration != doc.end()) {
      if (!duration->is_number()) return bad_line(LineOutcome::kWrongType, "duration");
      facts.duration = duration->get<double>();
    }

    auto request = doc.find("request");
    if (request == doc.end()) return bad_line(LineOutcome::kMissingField, "request");
    if (!request->is_object()) return bad_line(LineOutcome::kWrongType, "request");
    auto host = request->find("host");
    if (host == request->end()) return bad_line(LineOutcome::kMissingField, "request.host");
    if (!host->is_string()) return bad_line(LineOutcome::kWrongType, "request.host");
    facts.host = host->get_ref<const std::string&>();
    auto uri = request->find("uri");
    if (uri != request->end()) {
      if (!uri->is_string()) return bad_line(LineOutcome::kWrongType, "request.uri");
      facts.uri = uri->get_ref<const std::string&>();
    }
    auto method = request->find("method");
    if (method != request->end()) {
      if (!method->is_string()) return bad_line(LineOutcome::kWrongType, "request.method");
      facts.method = method->get_ref<const std::string&>();
    }
    std::vector<std::string_view> user_agents;
    auto request_headers = request->find("headers");
    if (request_headers != request->end()) {
      if (!request_headers->is_object() || !all_string_arrays(*request_headers)) {
        return bad_line(LineOutcome::kWrongType, "request.headers");
      }
      for (const auto& [name, values] : request_headers->items()) {
        if (iequals(name, kUserAgent) && !values.empty()) {
          user_agents.push_back(values.front().get_ref<const std::string&>());
        }
      }
    }

    auto resp_headers = doc.find("resp_headers");
    if (resp_headers == doc.end()) return bad_line(LineOutcome::kMissingField, "resp_headers");
    if (!resp_headers->is_object() || !all_string_arrays(*resp_headers)) {
      return bad_line(LineOutcome::kWrongType, "resp_headers");
    }
    std::vector<std::string_view> labels;
    for (const auto& [name, values] : resp_headers->items()) {
      if (!iequals(name, kServedBy)) continue;
      for (const auto& value : values) labels.push_back(value.get_ref<const std::string&>());
    }

    facts.user_agents = user_agents;
    facts.labels = labels;
    return decide(facts, match_backend(facts));
  }
};

std::string_view ActivityClassifier::ignore_reason(std::string_view method, std::string_view uri,
                                                   std::string_view user_agent) const {
  LineFacts facts;
  facts.method = method;
  facts.uri = uri;
  const std::array<std::string_view, 1> agents{user_agent};
  if (!user_agent.empty()) facts.user_agents = agents;
  return impl_->ignore_reason(facts);
}

ActivityClassifier::ActivityClassifier(std::vector<ActivityTarget> targets, const IgnoreRules& rules)
    : targets_(std::move(targets)), impl_(std::make_unique<Impl>(targets_, rules)) {
  for (std::size_t i = 0; i < kAllOutcomes.size(); ++i) {
    impl_->outcome_counts[i] = &counters_.by_outcome[std::string(to_string(kAllOutcomes[i]))];
  }
  counters_.activity_by_backend.assign(targets_.size(), 0);
  counters_.ignored_by_backend.assign(targets_.size(), 0);
}

ActivityClassifier::~ActivityClassifier() = default;
ActivityClassifier::ActivityClassifier(ActivityClassifier&&) noexcept = default;
ActivityClassifier& ActivityClassifier::operator=(ActivityClassifier&&) noexcept = default;

LineResult ActivityClassifier::classify(std::string_view line) {
  LineResult result;
  try {
    // One index serves both fast paths; a line it refuses may still be settled by the pre-scan,
    // and otherwise goes straight to the reference.
    const bool indexed = impl_->index(line);
    if (Impl::pre_scan_applies(line, indexed) && impl_->other_host_indexed(line)) {
      result.outcome = LineOutcome::kOtherHost;
      ++counters_.prescan;
    } else if (indexed && impl_->classify_fast(line, result)) {
      ++counters_.fast_path;
    } else {
      result = impl_->classify_reference(line);
    }
  } catch (const std::exception&) {
    // Only std::bad_alloc can get here; a line is never worth more than being skipped.
    result = bad_line(LineOutcome::kMalformedJson, "out_of_memory");
  }
  ++counters_.lines;
  ++*impl_->outcome_counts[static_cast<std::size_t>(result.outcome)];
  if (result.outcome == LineOutcome::kActivity)
    ++counters_.activity_by_backend[static_cast<std::size_t>(result.backend)];
  if (result.outcome == LineOutcome::kIgnored)
    ++counters_.ignored_by_backend[static_cast<std::size_t>(result.backend)];
  return result;
}

std::vector<std::string> ActivityClassifier::scan_variants() {
  std::vector<std::string> names;
  for (const auto& variant : index_variants()) names.emplace_back(variant.name);
  return names;
}

bool ActivityClassifier::use_scan_variant(std::string_view name) {
  for (const auto& variant : index_variants()) {
    if (variant.name == name) {
      impl_->index_quotes = variant.function;
      return true;
    }
  }
  return false;
}

bool ActivityClassifier::other_host(std::string_view line) const {
  return impl_->other_host(line);
}

LineResult ActivityClassifier::classify_reference(std::string_view line) const {
  try {
    return impl_->classify_reference(line);
  } catch (const std::exception&) {
    return bad_line(LineOutcome::kMalformedJson, "out_of_memory");
  }
}

}  // namespace unshelver::core
