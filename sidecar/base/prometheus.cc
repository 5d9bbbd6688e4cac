#include "base/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <unordered_map>

namespace unshelver::core {

namespace {

bool is_name_start(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool is_name_char(char c, bool allow_colon) {
  return is_name_start(c, allow_colon) || (c >= '0' && c <= '9');
}

bool valid_name(std::string_view name, bool allow_colon) {
  if (name.empty() || !is_name_start(name.front(), allow_colon)) return false;
  return std::all_of(name.begin() + 1, name.end(), [&](char c) { return is_name_char(c, allow_colon); });
}

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view name) {
  return valid_name(name, true);
}

// [a-zA-Z_][a-zA-Z0-9_]*, without the "__" prefix that Prometheus reserves for its own labels.
bool valid_label_name(std::string_view name) {
  return valid_name(name, false) && name.substr(0, 2) != "__";
}

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
// Prometheus rejects a scrape whose label values are not UTF-8.
bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t code = 0;
    std::uint32_t min_code = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, code = lead & 0x1F, min_code = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code = lead & 0x0F, min_code = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code = lead & 0x07, min_code = 0x10000;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < min_code || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

// Label values escape backslash, double quote and line feed; help text escapes backslash and line
// feed only (a double quote stays as it is there).
std::string escape(std::string_view text, bool quote) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '\n') {
      escaped += "\\n";
    } else if (c == '"' && quote) {
      escaped += "\\\"";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

// Go's strconv.FormatFloat(value, 'g', -1, 64) for a finite value: the shortest digits that read
// back to the same double, in exponent form when the decimal exponent is below -4 or at least 6
// (the threshold Go uses for its shortest form), with at least two exponent digits ("1e+06").
// std::to_chars gives the same shortest digits and the same exponent spelling as printf's %e.
std::string format_shortest(double value) {
  char buffer[64];
  const auto scientific = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  const std::string_view text(buffer, static_cast<std::size_t>(scientific.ptr - buffer));
  const std::size_t e = text.find('e');
  std::string_view exponent_text = text.substr(e + 1);
  if (!exponent_text.empty() && exponent_text.front() == '+') exponent_text.remove_prefix(1);
  int exponent = 0;
  std::from_chars(exponent_text.data(), exponent_text.data() + exponent_text.size(), exponent);
  if (exponent < -4 || exponent >= 6) return std::string(text);
  const auto fixed = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
  return std::string(buffer, fixed.ptr);
}

std::string format_special(double value) {
  if (std::isnan(value)) return "NaN";
  return value > 0 ? "+Inf" : "-Inf";
}

std::string braces(const std::string& rendered_labels) {
  return rendered_labels.empty() ? std::string() : "{" + rendered_labels + "}";
}

}  // namespace

std::string format_metric_value(double value) {
  if (!std::isfinite(value)) return format_special(value);
  // Every integer up to 2^53 is exact in a double, so it is written with all its digits; above
  // that a double is no longer a count one could trust to the unit.
  constexpr double kLargestExactInteger = 9007199254740992.0;
  if (std::trunc(value) == value && std::fabs(value) <= kLargestExactInteger) {
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, static_cast<std::int64_t>(value));
    return std::string(buffer, result.ptr);
  }
  return format_shortest(value);
}

std::string format_le(double upper_bound) {
  if (!std::isfinite(upper_bound)) return format_special(upper_bound);
  return format_shortest(upper_bound);
}

Histogram::Histogram(std::vector<double> upper_bounds) {
  upper_bounds.erase(std::remove_if(upper_bounds.begin(), upper_bounds.end(),
                                    [](double bound) { return !std::isfinite(bound); }),
                     upper_bounds.end());
  std::sort(upper_bounds.begin(), upper_bounds.end());
  upper_bounds.erase(std::unique(upper_bounds.begin(), upper_bounds.end()), upper_bounds.end());
  upper_bounds_ = std::move(upper_bounds);
  bucket_counts_.assign(upper_bounds_.size() + 1, 0);
}

void Histogram::observe(double value) {
  if (std::isnan(value)) return;
  const auto bucket = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value);
  ++bucket_counts_[static_cast<std::size_t>(std::distance(upper_bounds_.begin(), bucket))];
  ++count_;
  sum_ += value;
}

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> cumulative(bucket_counts_.size());
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < bucket_counts_.size(); ++i) {
    running += bucket_counts_[i];
    cumulative[i] = running;
  }
  return cumulative;
}

MetricsPage::Family* MetricsPage::declare(std::string_view name, std::string_view help, Type type,
                                          const Labels& labels, std::string& rendered_labels) {
  constexpr std::string_view kTotal = "_total";
  if (frozen_) {
    ++conflicts_;
    return nullptr;
  }
  const bool named_ok = valid_metric_name(name) && valid_utf8(help) &&
                        (type != Type::kCounter ||
                         (name.size() > kTotal.size() && name.substr(name.size() - kTotal.size()) == kTotal));
  if (!named_ok) {
    ++conflicts_;
    return nullptr;
  }

  // The label set, once in the caller's order for the page and once sorted as the series' key
  // ({a="1",b="2"} and {b="2",a="1"} are the same series to Prometheus).
  std::vector<std::pair<std::string_view, std::string>> sorted;
  rendered_labels.clear();
  for (const auto& [label, value] : labels) {
    if (!valid_label_name(label) || !valid_utf8(value) || (type == Type::kHistogram && label == "le")) {
      ++conflicts_;
      return nullptr;
    }
    std::string escaped = escape(value, true);
    if (!rendered_labels.empty()) rendered_labels += ',';
    rendered_labels += label;
    rendered_labels += "=\"";
    rendered_labels += escaped;
    rendered_labels += '"';
    sorted.emplace_back(label, std::move(escaped));
  }
  std::sort(sorted.begin(), sorted.end());
  std::string series_key;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0 && sorted[i].first == sorted[i - 1].first) {  // the same label name twice
      ++conflicts_;
      return nullptr;
    }
    series_key.append(sorted[i].first).append("=\"").append(sorted[i].second).append("\",");
  }

  Family* family = nullptr;
  if (const auto found = by_name_.find(name); found != by_name_.end()) {
    family = &families_[found->second];
    if (family->kind->type != type || family->kind->help != help) {
      ++conflicts_;
      return nullptr;
    }
  } else {
    std::vector<std::string> own_samples;
    if (type == Type::kHistogram) {
      own_samples = {std::string(name) + "_bucket", std::string(name) + "_sum", std::string(name) + "_count"};
    } else {
      own_samples = {std::string(name)};
    }
    for (const auto& sample : own_samples) {
      if (sample_names_.count(sample) != 0) {
        ++conflicts_;
        return nullptr;
      }
    }
    for (auto& sample : own_samples) sample_names_.insert(std::move(sample));
    by_name_.emplace(std::string(name), families_.size());
    families_.push_back(
        Family{std::make_shared<const Kind>(Kind{std::string(name), std::string(help), type}), {}, {}});
    family = &families_.back();
  }

  if (!family->series_keys.insert(std::move(series_key)).second) {
    ++conflicts_;
    return nullptr;
  }
  return family;
}

void MetricsPage::counter(std::string_view name, std::string_view help, const Labels& labels, double value) {
  // A counter only goes up from zero; a negative or NaN one is a bug in the caller.
  if (std::isnan(value) || value < 0) {
    ++conflicts_;
    return;
  }
  std::string rendered;
  Family* family = declare(name, help, Type::kCounter, labels, rendered);
  if (family == nullptr) return;
  family->samples.append(name).append(braces(rendered)) += " " + format_metric_value(value) + "\n";
}

void MetricsPage::counters(std::string_view name, std::string_view help, std::string_view label,
                           const std::vector<std::pair<std::string_view, double>>& samples) {
  Family* family = nullptr;
  for (const auto& [label_value, value] : samples) {
    if (std::isnan(value) || value < 0) {
      ++conflicts_;
      continue;
    }
    if (family == nullptr) {
      // The first sample is added as counter() adds it, with every check.
      std::string rendered;
      family =
          declare(name, help, Type::kCounter, {{std::string(label), std::string(label_value)}}, rendered);
      if (family != nullptr)
        family->samples.append(name).append(braces(rendered)) += " " + format_metric_value(value) + "\n";
      continue;
    }
    // The name, the help and the label's name passed with the first sample: what is left to
    // check is the label's value and that the series is new, as declare() checks them.
    if (!valid_utf8(label_value)) {
      ++conflicts_;
      continue;
    }
    const std::string escaped = escape(label_value, true);
    std::string series_key;
    series_key.reserve(label.size() + escaped.size() + 3);
    series_key.append(label).append("=\"").append(escaped).append("\",");
    if (!family->series_keys.insert(std::move(series_key)).second) {
      ++conflicts_;
      continue;
    }
    family->samples.append(name).append("{").append(label).append("=\"").append(escaped).append("\"} ");
    family->samples.append(format_metric_value(value)).append("\n");
  }
}

void MetricsPage::gauge(std::string_view name, std::string_view help, const Labels& labels, double value) {
  std::string rendered;
  Family* family = declare(name, help, Type::kGauge, labels, rendered);
  if (family == nullptr) return;
  family->samples.append(name).append(braces(rendered)) += " " + format_metric_value(value) + "\n";
}

void MetricsPage::histogram(std::string_view name, std::string_view help, const Labels& labels,
                            const Histogram& histogram) {
  std::string rendered;
  Family* family = declare(name, help, Type::kHistogram, labels, rendered);
  if (family == nullptr) return;
  const std::string le_prefix = rendered.empty() ? "{le=\"" : "{" + rendered + ",le=\"";
  const std::vector<std::uint64_t> cumulative = histogram.cumulative_counts();
  const std::vector<double>& bounds = histogram.upper_bounds();
  std::string& out = family->samples;
  for (std::size_t i = 0; i < cumulative.size(); ++i) {
    const std::string le = i < bounds.size() ? format_le(bounds[i]) : "+Inf";
    out.append(name).append("_bucket").append(le_prefix).append(le) +=
        "\"} " + std::to_string(cumulative[i]) + "\n";
  }
  out.append(name).append("_sum").append(braces(rendered)) +=
      " " + format_metric_value(histogram.sum()) + "\n";
  out.append(name).append("_count").append(braces(rendered)) +=
      " " + std::to_string(histogram.count()) + "\n";
}

void MetricsPage::write_header(const Family& family, std::string& page) {
  const Kind& kind = *family.kind;
  page += "# HELP " + kind.name;
  if (!kind.help.empty()) page += " " + escape(kind.help, false);
  page += "\n# TYPE " + kind.name;
  switch (kind.type) {
    case Type::kCounter: page += " counter\n"; break;
    case Type::kGauge: page += " gauge\n"; break;
    case Type::kHistogram: page += " histogram\n"; break;
  }
}

std::string MetricsPage::text() const {
  std::string page;
  for (const Family& family : families_) {
    write_header(family, page);
    page += family.samples;
  }
  return page;
}

void MetricsPage::freeze(const MetricsPage* like) {
  frozen_ = true;
  by_name_.clear();
  sample_names_.clear();
  for (Family& family : families_) {
    family.series_keys.clear();
    family.samples.shrink_to_fit();
    if (like == nullptr) continue;
    // A few families a page: a scan is enough.
    for (const Family& other : like->families_) {
      const Kind& theirs = *other.kind;
      if (theirs.name == family.kind->name && theirs.type == family.kind->type &&
          theirs.help == family.kind->help) {
        family.kind = other.kind;
        break;
      }
    }
  }
}

std::vector<MetricsPage::Joined> MetricsPage::families_of(const std::vector<const MetricsPage*>& pages,
                                                          std::size_t* conflicts, std::size_t* sample_bytes) {
  // Each family, in the order of its first page, with the samples of every page that has it.
  std::vector<Joined> joined;
  std::unordered_map<std::string_view, std::size_t> by_name;
  // Pages written alike (one per backend) hold their families in the same order, so the place a
  // family had in the page before is tried first, which spares hashing every family's name.
  std::vector<std::size_t> previous;
  std::vector<std::size_t> current;
  for (const MetricsPage* page : pages) {
    current.clear();
    for (const Family& family : page->families_) {
      const std::size_t place = current.size();
      std::size_t index;
      if (place < previous.size() && joined[previous[place]].first->kind == family.kind) {
        index = previous[place];
      } else {
        auto [found, added] = by_name.try_emplace(family.kind->name, joined.size());
        index = found->second;
        if (added) joined.push_back(Joined{&family, {}});
      }
      current.push_back(index);
      if (const Family& first = *joined[index].first;
          first.kind != family.kind &&
          (first.kind->type != family.kind->type || first.kind->help != family.kind->help)) {
        if (conflicts != nullptr) ++*conflicts;
        continue;
      }
      joined[index].samples.push_back(&family.samples);
      *sample_bytes += family.samples.size();
    }
    previous.swap(current);
  }
  return joined;
}

std::string MetricsPage::join(const std::vector<const MetricsPage*>& pages, std::size_t* conflicts) {
  std::size_t size = 0;
  const std::vector<Joined> joined = families_of(pages, conflicts, &size);
  std::string text;
  text.reserve(size + joined.size() * 160);
  for (const Joined& family : joined) {
    write_header(*family.first, text);
    for (const std::string* samples : family.samples) text += *samples;
  }
  return text;
}

SharedText MetricsPage::join_shared(const std::vector<std::shared_ptr<const MetricsPage>>& pages,
                                    std::size_t* conflicts) {
  std::vector<const MetricsPage*> plain;
  plain.reserve(pages.size());
  for (const auto& page : pages) plain.push_back(page.get());
  std::size_t size = 0;
  const std::vector<Joined> joined = families_of(plain, conflicts, &size);
  // The HELP and TYPE lines are the only text written here, into one buffer of the answer's
  // own; everything else is a slice of a page's samples.
  std::string headers;
  std::vector<std::size_t> header_ends;
  header_ends.reserve(joined.size());
  std::size_t slices = 0;
  for (const Joined& family : joined) {
    write_header(*family.first, headers);
    header_ends.push_back(headers.size());
    slices += 1 + family.samples.size();
  }
  SharedText text;
  const std::string_view all_headers = text.own(std::move(headers));
  text.reserve(slices);
  std::size_t start = 0;
  for (std::size_t i = 0; i < joined.size(); ++i) {
    text.append(all_headers.substr(start, header_ends[i] - start));
    start = header_ends[i];
    for (const std::string* samples : joined[i].samples) text.append(*samples);
  }
  for (const auto& page : pages) text.keep(page);
  return text;
}

MetricsPage MetricsPage::merge(const std::vector<const MetricsPage*>& pages, std::size_t* conflicts) {
  std::size_t size = 0;
  const std::vector<Joined> joined = families_of(pages, conflicts, &size);
  MetricsPage merged;
  merged.families_.reserve(joined.size());
  for (const Joined& family : joined) {
    Family copy;
    copy.kind = family.first->kind;
    std::size_t bytes = 0;
    for (const std::string* samples : family.samples) bytes += samples->size();
    copy.samples.reserve(bytes);
    for (const std::string* samples : family.samples) copy.samples += *samples;
    merged.families_.push_back(std::move(copy));
  }
  // As freeze() leaves a page: nothing more can be added, and it holds only its text.
  merged.frozen_ = true;
  return merged;
}

}  // namespace unshelver::core
