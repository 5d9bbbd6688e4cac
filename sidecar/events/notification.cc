#include "events/notification.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "base/text.h"
#include "config/checks.h"
#include "web/page_model.h"

namespace unshelver::core {

namespace {

constexpr std::string_view kRedacted = "[redacted]";
// Secrets shorter than this are not searched for: a one-letter "secret" would redact every word.
constexpr std::size_t kMinSecretLength = 4;
// The longest reason quoted in a message; the log and /api/events keep the whole text.
constexpr std::size_t kMaxReasonBytes = 2000;
// RFC 5322 §2.1.1: lines must be at most 998 bytes; we break body lines well before.
constexpr std::size_t kMaxBodyLine = 900;

bool is_printable_ascii(unsigned char c) {
  return c >= 0x20 && c < 0x7f;
}

std::tm utc_parts(TimePoint at) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  return parts;
}

// `at` in UTC through strftime's `format`; the daemon never changes the C locale, so names are
// English.
std::string format_utc(TimePoint at, const char* format) {
  const std::tm parts = utc_parts(at);
  std::array<char, 64> buffer{};
  const std::size_t length = std::strftime(buffer.data(), buffer.size(), format, &parts);
  return std::string(buffer.data(), length);
}

// "2026-12-06T23:10:05Z": RFC 3339 to the second, which is all a reader of a mail needs.
std::string iso_seconds(TimePoint at) {
  return format_utc(at, "%Y-%m-%dT%H:%M:%SZ");
}

// "Sunday 06 December 2026, 23:10:05 UTC (3 min 20 s ago)".
std::string when_text(TimePoint at, TimePoint now) {
  const auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - at);
  std::string text = format_utc(at, "%A %d %B %Y, %H:%M:%S UTC");
  text += ago.count() >= 1 ? " (" + human_duration(ago) + " ago)" : " (just now)";
  return text;
}

// Cloud text may hold anything: control characters are shown escaped and the length bounded.
std::string quote_reason(std::string_view reason) {
  std::string text = escape_control_characters(trim(reason));
  if (text.size() > kMaxReasonBytes) text = text.substr(0, kMaxReasonBytes) + "... (shortened)";
  return text.empty() ? "(no reason given)" : text;
}

bool mentions_no_valid_host(std::string_view detail) {
  return web::classify_failure(detail) == web::FailureReason::kNoCapacity;
}

std::string event_text(const EventRecord& record) {
  return "#" + std::to_string(record.seq) + " " + record.action +
         (record.id.empty() ? "" : " (id " + record.id + ")");
}

}  // namespace

std::string_view alert_code(AlertKind kind) {
  switch (kind) {
    case AlertKind::kWakeFailed: return "wake_failed";
    case AlertKind::kNoValidHost: return "no_valid_host";
    case AlertKind::kServiceUnhealthy: return "unshelve_incomplete";
    case AlertKind::kShelveFailed: return "shelve_failed";
    case AlertKind::kOutage: return "outage";
    case AlertKind::kRecovered: return "recovered";
  }
  return "alert";
}

std::string Alert::throttle_key() const {
  if (kind == AlertKind::kOutage || kind == AlertKind::kRecovered) return "outage:" + subsystem;
  return std::string(alert_code(kind)) + ":" + backend;
}

std::optional<Alert> alert_for_record(const EventRecord& record) {
  Alert alert;
  if (record.action == "shelve_failed" || (record.action == "workflow_failed" && record.from == "sleeping")) {
    alert.kind = AlertKind::kShelveFailed;
  } else if (record.action == "workflow_failed") {
    alert.kind = mentions_no_valid_host(record.detail) ? AlertKind::kNoValidHost : AlertKind::kWakeFailed;
  } else if (record.action == "unshelve_incomplete") {
    alert.kind = AlertKind::kServiceUnhealthy;
  } else {
    return std::nullopt;
  }
  alert.backend = record.backend;
  alert.instance = record.instance_name;
  alert.reason = record.detail;
  alert.at = record.at;
  alert.event = event_text(record);
  alert.from = record.from;
  return alert;
}

std::optional<Alert> OutageWatch::observe(bool failing, std::string_view error, TimePoint now) {
  if (failing) {
    if (!failing_since_) failing_since_ = now;
    if (!error.empty()) last_error_ = std::string(error);
    if (alerted_ || now - *failing_since_ < threshold_) return std::nullopt;
    alerted_ = true;
    Alert alert;
    alert.kind = AlertKind::kOutage;
    alert.subsystem = subsystem_;
    alert.reason = last_error_;
    alert.at = *failing_since_;
    return alert;
  }
  std::optional<Alert> recovered;
  if (alerted_) {
    Alert alert;
    alert.kind = AlertKind::kRecovered;
    alert.subsystem = subsystem_;
    alert.reason = last_error_;
    alert.at = failing_since_.value_or(now);
    alert.recovered_at = now;
    recovered = std::move(alert);
  }
  failing_since_.reset();
  last_error_.clear();
  alerted_ = false;
  return recovered;
}

MailThrottle::Decision MailThrottle::admit(const Alert& alert, TimePoint now) {
  KeyState& state = keys_[alert.throttle_key()];
  Decision decision;
  if (alert.kind == AlertKind::kRecovered) {
    // The recovery of an outage that was mailed always goes, whatever the quiet period: the
    // reader must not be left believing that it still fails. One that was held back stays so.
    decision.send = std::exchange(state.outage_sent, false);
    if (!decision.send) {
      ++state.held_back;
      ++held_back_total_;
      if (!state.held_back_since) state.held_back_since = now;
    }
    return decision;
  }
  if (state.last_sent && now - *state.last_sent < quiet_) {
    ++state.held_back;
    ++held_back_total_;
    if (!state.held_back_since) state.held_back_since = now;
    state.outage_sent = false;
    return decision;
  }
  decision.send = true;
  decision.held_back_before = std::exchange(state.held_back, 0);
  decision.held_back_since = std::exchange(state.held_back_since, std::nullopt);
  state.last_sent = now;
  state.outage_sent = alert.kind == AlertKind::kOutage;
  return decision;
}

MailMessage compose(const Alert& alert, const MailContext& context) {
  MailMessage message;
  // Names come from the configuration, but nothing in a message may act as a line break.
  const std::string backend = escape_control_characters(alert.backend);
  const std::string instance = escape_control_characters(alert.instance);
  const std::string where = backend.empty() ? alert.subsystem : backend;
  const std::string control = context.control_url.empty() ? "the control page (/control)"
                                                          : "the control page (" + context.control_url + ")";
  std::string what;
  std::string todo;
  switch (alert.kind) {
    case AlertKind::kNoValidHost:
      // Nova's "No valid host was found" is named as such; a quota or other capacity limit is not.
      message.subject =
          where + ": wake failed, the cloud has no room" +
          (to_lower(alert.reason).find("no valid host") != std::string::npos ? " (No valid host)"
                                                                             : " (quota or capacity)");
      what =
          "The wake failed: the cloud found no host with room for the machine (\"No valid host\", or a "
          "quota). The machine is not running.";
      todo = "Wake it again later from " + control +
             "; a wake tried at once usually fails the same way. If it keeps failing, ask the cloud's "
             "operators for capacity or a larger quota, or choose another flavor.";
      break;
    case AlertKind::kWakeFailed:
      if (alert.from == "ready") {
        message.subject = where + ": failed while running";
        what =
            "The backend failed while it was running (the cloud reported an error); it is in the error "
            "state.";
      } else {
        message.subject = where + ": wake failed";
        what = "The wake failed; the backend is in the error state.";
      }
      todo =
          "Read the reason below and the log (`journalctl -u unshelver`), fix the cause, then wake it again "
          "from " +
          control +
          ". Check in the cloud's dashboard whether the machine is running: if it is, it "
          "costs money until it is put to sleep.";
      break;
    case AlertKind::kServiceUnhealthy:
      message.subject = where + ": the machine runs, but its service never became healthy";
      what =
          "The machine was woken and is running (and billing), but its service did not pass its health "
          "check in time.";
      todo = "Log in to the machine and look at the service, or put it to sleep from " + control +
             " so that it does not run for nothing.";
      break;
    case AlertKind::kShelveFailed:
      message.subject = where + ": cannot put it to sleep; the machine keeps running";
      what =
          "Putting the backend to sleep failed or was refused while its machine runs: it keeps running, "
          "and billing, with no way for Unshelver to shelve it.";
      todo = "Shelve the machine from " + control +
             " or in the cloud's dashboard, and read the cloud's answer below and in the log. Until then it "
             "costs money every hour.";
      break;
    case AlertKind::kOutage:
      message.subject = where + " has been failing since " + iso_seconds(alert.at);
      if (alert.subsystem == "Swift") {
        what = "Uploads of events to Swift (swift_event_container) have failed without a break for " +
               human_duration(std::chrono::duration_cast<std::chrono::seconds>(context.now - alert.at)) + ".";
        todo =
            "Nothing is lost: events stay in the local event log and are uploaded once Swift answers "
            "again. Check the object store's endpoint and the credentials in `openstack`; the log says "
            "what Swift answered.";
      } else {
        what = "Loading Unshelver's routes into Caddy has failed without a break for " +
               human_duration(std::chrono::duration_cast<std::chrono::seconds>(context.now - alert.at)) + ".";
        todo =
            "Until a load succeeds, Caddy routes by its last good configuration: visitors may reach a "
            "sleeping backend or be kept from an awake one. Check that Caddy runs and that its admin "
            "API (caddy.admin) answers; the log says what it answered.";
      }
      break;
    case AlertKind::kRecovered: {
      const TimePoint until = alert.recovered_at.value_or(context.now);
      message.subject = where + " works again";
      what = where + " works again after failing for " +
             human_duration(std::chrono::duration_cast<std::chrono::seconds>(until - alert.at)) + ".";
      todo = "Nothing. This message closes the one about the failure.";
      break;
    }
  }
  message.subject = "[Unshelver] " + message.subject;

  std::string body;
  body += what + "\n\n";
  if (!backend.empty()) {
    body += "Backend:  " + backend + (instance.empty() ? "" : " (server " + instance + ")") + "\n";
  } else {
    body += "Service:  " + alert.subsystem + "\n";
  }
  body += "Kind:     " + std::string(alert_code(alert.kind)) + "\n";
  body += "Reason:   " + quote_reason(alert.reason) + "\n";
  if (alert.kind == AlertKind::kOutage || alert.kind == AlertKind::kRecovered) {
    body += "Failing since: " + iso_seconds(alert.at) + ", " + when_text(alert.at, context.now) + "\n";
    if (alert.recovered_at) body += "Working again: " + iso_seconds(*alert.recovered_at) + "\n";
  } else {
    body += "Time:     " + iso_seconds(alert.at) + ", " + when_text(alert.at, context.now) + "\n";
  }
  if (!alert.event.empty()) body += "Event:    " + alert.event + "\n";
  body += "\nWhat to do: " + todo + "\n";
  if (context.held_back_before > 0) {
    body += "\n" + std::to_string(context.held_back_before) + " similar alert(s) since " +
            iso_seconds(context.held_back_since.value_or(context.now)) +
            " were not mailed: at most one message per " + human_duration(context.quiet) +
            " is sent for the same backend and kind. /api/events lists them all.\n";
  }
  body += "\n-- \nUnshelver, " + iso_seconds(context.now) + "\n";
  message.body = std::move(body);
  return message;
}

std::string scrub_secrets(std::string text, const std::vector<std::string>& secrets) {
  // Longest first, so that a secret containing another is replaced whole.
  std::vector<std::string> ordered;
  for (const std::string& secret : secrets) {
    if (secret.size() >= kMinSecretLength) ordered.push_back(secret);
  }
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const std::string& secret : ordered) text = replace_all(std::move(text), secret, kRedacted);

  // In every URL: "scheme://user:password@host/path?query#fragment" becomes
  // "scheme://[redacted]@host/path?[redacted]#[redacted]". A URL ends at white space or a quote.
  constexpr std::string_view kEnd = " \t\r\n\"'<>`";
  std::string out;
  std::size_t copied = 0;
  while (true) {
    const std::size_t marker = text.find("://", copied);
    if (marker == std::string::npos) break;
    std::size_t end = text.find_first_of(kEnd, marker + 3);
    if (end == std::string::npos) end = text.size();
    out.append(text, copied, marker + 3 - copied);
    const std::string_view url = std::string_view(text).substr(marker + 3, end - marker - 3);
    std::size_t authority_end = url.find_first_of("/?#");
    if (authority_end == std::string_view::npos) authority_end = url.size();
    const std::string_view authority = url.substr(0, authority_end);
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
      out += kRedacted;
      out += authority.substr(at);
    } else {
      out += authority;
    }
    const std::string_view rest = url.substr(authority_end);
    const std::size_t hidden = rest.find_first_of("?#");
    out += rest.substr(0, hidden);
    if (hidden != std::string_view::npos) {
      const std::size_t fragment = rest.find('#', hidden);
      if (rest[hidden] == '?') {
        out += '?';
        out += kRedacted;
      }
      if (fragment != std::string_view::npos) {
        out += '#';
        out += kRedacted;
      }
    }
    copied = end;
  }
  out.append(text, copied, std::string::npos);
  return out;
}

std::string encode_header_value(std::string_view header_name, std::string_view value) {
  std::string clean;
  clean.reserve(value.size());
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    // CR and LF would end the header (and start a new one): no header value keeps any control byte.
    clean.push_back(byte < 0x20 || byte == 0x7f ? ' ' : c);
  }
  const bool plain = std::all_of(clean.begin(), clean.end(),
                                 [](char c) { return is_printable_ascii(static_cast<unsigned char>(c)); });
  // "=?" could be read as the start of an encoded word; such a value is encoded too.
  if (plain && clean.find("=?") == std::string::npos && header_name.size() + 2 + clean.size() <= 78) {
    return clean;
  }
  // RFC 2047 Q encoding, in words of at most 75 characters, one per line after the first. A
  // multi-byte UTF-8 character is never split between two words (§5, rule 3).
  constexpr std::string_view kHex = "0123456789ABCDEF";
  constexpr std::string_view kOpen = "=?UTF-8?Q?";
  constexpr std::string_view kClose = "?=";
  constexpr std::size_t kMaxWord = 75;
  std::vector<std::string> words;
  std::string word;
  std::size_t i = 0;
  while (i < clean.size()) {
    const auto lead = static_cast<unsigned char>(clean[i]);
    std::size_t length = 1;
    if (lead >= 0xf0) {
      length = 4;
    } else if (lead >= 0xe0) {
      length = 3;
    } else if (lead >= 0xc0) {
      length = 2;
    }
    length = std::min(length, clean.size() - i);
    std::string encoded;
    for (std::size_t k = 0; k < length; ++k) {
      const auto byte = static_cast<unsigned char>(clean[i + k]);
      if (byte == ' ') {
        encoded += '_';
      } else if (std::isalnum(byte) != 0 || (byte < 0x80 && std::string_view("!*+-/").find(static_cast<char>(
                                                                byte)) != std::string_view::npos)) {
        encoded += static_cast<char>(byte);
      } else {
        encoded += '=';
        encoded += kHex[byte >> 4];
        encoded += kHex[byte & 0x0f];
      }
    }
    if (kOpen.size() + word.size() + encoded.size() + kClose.size() > kMaxWord) {
      words.push_back(std::move(word));
      word.clear();
    }
    word += encoded;
    i += length;
  }
  if (!word.empty() || words.empty()) words.push_back(std::move(word));
  std::string out;
  for (std::size_t w = 0; w < words.size(); ++w) {
    if (w > 0) out += "\n ";
    out += std::string(kOpen) + words[w] + std::string(kClose);
  }
  return out;
}

std::string rfc5322_date(TimePoint at) {
  const std::tm parts = utc_parts(at);
  // strftime's %a and %b follow the locale; RFC 5322 wants the English names.
  constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::array<char, 40> buffer{};
  const int length =
      std::snprintf(buffer.data(), buffer.size(), "%s, %02d %s %04d %02d:%02d:%02d +0000",
                    std::string(kDays[static_cast<std::size_t>(parts.tm_wday % 7)]).c_str(), parts.tm_mday,
                    std::string(kMonths[static_cast<std::size_t>(parts.tm_mon % 12)]).c_str(),
                    parts.tm_year + 1900, parts.tm_hour, parts.tm_min, parts.tm_sec);
  if (length < 0) return "";
  return std::string(buffer.data(), std::min(static_cast<std::size_t>(length), buffer.size() - 1));
}

std::string render_message(const MailMessage& message, const MailEnvelope& envelope, TimePoint now,
                           const std::vector<std::string>& secrets) {
  const std::string subject = scrub_secrets(message.subject, secrets);
  const std::string body = scrub_secrets(message.body, secrets);
  const std::size_t at = envelope.from.rfind('@');
  const std::string domain = at == std::string::npos ? "localhost" : envelope.from.substr(at + 1);
  std::string compact;
  for (char c : iso_seconds(now)) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) compact.push_back(c);
  }
  std::string to;
  for (const std::string& address : envelope.to) {
    if (!config_detail::is_plain_mail_address(address))
      continue;  // the config refuses them; never a header from one
    to += (to.empty() ? "" : ",\n ") + address;
  }
  std::string out;
  out += "From: Unshelver <" +
         (config_detail::is_plain_mail_address(envelope.from) ? envelope.from : "unshelver@localhost") +
         ">\n";
  out += "To: " + to + "\n";
  out += "Subject: " + encode_header_value("Subject", subject) + "\n";
  out += "Date: " + rfc5322_date(now) + "\n";
  out += "Message-ID: <" + compact + "." + envelope.message_id_seed + "@" + domain + ">\n";
  out += "MIME-Version: 1.0\n";
  out += "Content-Type: text/plain; charset=utf-8\n";
  out += "Content-Transfer-Encoding: 8bit\n";
  out += "Auto-Submitted: auto-generated\n";
  out += "\n";
  // Body lines are broken before the limit; a CR alone never reaches the output.
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t newline = body.find('\n', start);
    if (newline == std::string::npos) newline = body.size();
    std::string_view line(body.data() + start, newline - start);
    while (line.size() > kMaxBodyLine) {
      // Not inside a UTF-8 character: back to the start of the one at the limit.
      std::size_t cut = kMaxBodyLine;
      while (cut > 1 && (static_cast<unsigned char>(line[cut]) & 0xc0) == 0x80) --cut;
      out += std::string(line.substr(0, cut)) + "\n";
      line.remove_prefix(cut);
    }
    std::string kept(line);
    std::replace(kept.begin(), kept.end(), '\r', ' ');
    out += kept + "\n";
    start = newline + 1;
  }
  return out;
}

}  // namespace unshelver::core
