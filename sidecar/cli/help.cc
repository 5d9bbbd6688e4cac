#include "cli/help.h"

#include <array>
#include <span>

namespace unshelver::app {

namespace {

// One command or option: how it is written, and what it does (one paragraph, wrapped when rendered).
struct Entry {
  std::string_view synopsis;
  std::string_view description;
};

// A group of entries under a heading, with a paragraph before and after them.
struct Section {
  std::string_view heading;
  std::string_view intro;
  std::span<const Entry> entries;
  std::string_view outro;
};

constexpr std::string_view kSummary = "keeps an expensive cloud VM asleep until somebody needs it";

constexpr std::array kDaemonCommands{
    Entry{"unshelver [run] [--config FILE]", "run the sidecar (the default command)"},
    Entry{
        "unshelver demo [--listen ADDR] [--dir DIR] [--caddy-port PORT [--caddy-admin ADDR]]",
        "run on the built-in simulated cloud: no credentials needed; state in DIR (default .unshelver-demo); "
        "with --caddy-port, Caddy runs in front on 127.0.0.1:PORT (its admin API at ADDR, default "
        "127.0.0.1:PORT+1) and Unshelver manages its routing (DIR/Caddyfile, DIR/logs/access.log)"},
    Entry{"unshelver check-config [--config FILE]", "validate a configuration and exit (0 valid, 2 invalid)"},
    Entry{"unshelver render-caddy [--config FILE] [--ready NAME]...",
          "print the Caddyfile (or snippet) Unshelver would load into Caddy: every backend asleep, except "
          "those "
          "named --ready"},
    Entry{"unshelver hash-key",
          "read an API key on standard input and print the \"sha256:...\" line for a backend's api_keys (the "
          "key "
          "itself never goes into a file, an argument or a log)"},
    Entry{"unshelver dns ensure FQDN IP [--ttl N] [--config FILE] [--wait-seconds N] [--json]",
          "create or update the Designate A/AAAA record of FQDN so that it holds exactly IP, and wait until "
          "it is "
          "ACTIVE (exit 0 done or unchanged, 1 no zone, 2 API error, 64 usage; `unshelver dns --help` for "
          "details)"},
};

constexpr std::array kDaemonOptions{
    Entry{"--config FILE, -c FILE", "the configuration (else $UNSHELVER_CONFIG, else ./config.yaml)"},
    Entry{"--listen ADDR", "listen on ADDR (such as 127.0.0.1:5001) instead of the configuration's `listen`"},
    Entry{"--log-level LEVEL", "trace, debug, info, warn or error, instead of the configuration's log_level"},
    Entry{"--log-format FORMAT",
          "text (the default) or json, one JSON object a line for journald and log shippers, instead of the "
          "configuration's log_format"},
};

constexpr std::array kClientCommands{
    Entry{"unshelver status [--json]",
          "the state of every backend, Caddy's routing, the event log (without a token: the public view, "
          "labelled as such)"},
    Entry{"unshelver wake NAME [--wait [SECONDS]] [--json]",
          "wake a backend; --wait follows it until it is ready"},
    Entry{"unshelver shelve NAME [--wait [SECONDS]] [--json]",
          "put a backend to sleep; --wait follows it until it is asleep"},
    Entry{"unshelver events [--follow] [--backend NAME] [--limit N] [--json] [--local]",
          "print the recorded events of the running instance"},
};

constexpr std::array kReportCommands{
    Entry{"unshelver report [--since DATE] [--until DATE] [--backend NAME] [--daily] [--json|--csv]",
          "the savings report from the local event log (hours awake and asleep, cost, savings); no running "
          "instance needed"},
    Entry{"unshelver --version | --help | --man",
          "print the version, this help, or the unshelver(8) manual page's roff source"},
};

constexpr std::array kSections{
    Section{"Usage:", "", kDaemonCommands, ""},
    Section{"Options of run, demo and check-config:", "", kDaemonOptions, ""},
    Section{
        "Asking the running instance:",
        "With the control token; exit 0 success, 1 not reached or failed, 2 usage or configuration, 3 token "
        "refused, 4 no such backend.",
        kClientCommands,
        "Each takes --config FILE, --url URL (else $UNSHELVER_URL, else the config's `listen`) and "
        "--token-file FILE (else $UNSHELVER_CONTROL_TOKEN, else app.control_token); never the token itself, "
        "which every user could read with `ps`. `unshelver COMMAND --help` for details."},
    Section{"Without a running instance:", "", kReportCommands, ""},
};

constexpr std::string_view kClosing =
    "The configuration comes from --config, else $UNSHELVER_CONFIG, else ./config.yaml. Secrets may also "
    "come "
    "from the secrets_file it names and from UNSHELVER_* / OS_* variables.";

constexpr std::size_t kWidth = 100;
constexpr std::size_t kDescriptionColumn = 38;

// Appends `text` wrapped at kWidth, each line indented by `indent` (the first one too unless the
// caller has already written up to that column).
void wrap(std::string& out, std::string_view text, std::size_t indent, bool first_line_indented) {
  std::size_t column = indent;
  if (first_line_indented) out.append(indent, ' ');
  bool line_empty = true;
  while (!text.empty()) {
    const std::size_t space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (!line_empty && column + 1 + word.size() > kWidth) {
      out += '\n';
      out.append(indent, ' ');
      column = indent;
      line_empty = true;
    }
    if (!line_empty) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    line_empty = false;
  }
  out += '\n';
}

// roff text: a backslash is written "\e", a hyphen-minus "\-" (man(7): a plain '-' may become a
// hyphen), and a line that would start with '.' or '\'' is protected by "\&".
std::string roff(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out.front() == '.' || out.front() == '\'')) out.insert(0, "\\&");
  return out;
}

// A heading without its trailing colon, in capitals, as man pages write their sections.
std::string man_heading(std::string_view heading) {
  if (!heading.empty() && heading.back() == ':') heading.remove_suffix(1);
  std::string out;
  for (const char c : heading) out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  return out;
}

}  // namespace

std::string render_usage() {
  std::string out = "unshelver: ";
  out += kSummary;
  out += ".\n";
  for (const Section& section : kSections) {
    out += '\n';
    out += section.heading;
    out += '\n';
    if (!section.intro.empty()) wrap(out, section.intro, 2, true);
    for (const Entry& entry : section.entries) {
      out += "  ";
      out += entry.synopsis;
      if (2 + entry.synopsis.size() + 2 <= kDescriptionColumn) {
        out.append(kDescriptionColumn - 2 - entry.synopsis.size(), ' ');
        wrap(out, entry.description, kDescriptionColumn, false);
      } else {
        out += '\n';
        wrap(out, entry.description, kDescriptionColumn, true);
      }
    }
    if (!section.outro.empty()) wrap(out, section.outro, 2, true);
  }
  out += '\n';
  wrap(out, kClosing, 0, false);
  return out;
}

std::string render_man_page(std::string_view version, std::string_view date) {
  std::string out;
  out += ".TH UNSHELVER 8 \"" + std::string(date) + "\" \"unshelver " + roff(version) +
         "\" \"System Administration\"\n";
  out += ".SH NAME\nunshelver \\- " + roff(kSummary) + "\n";
  out += ".SH SYNOPSIS\n";
  for (const Entry& entry : kDaemonCommands) out += ".B " + roff(entry.synopsis) + "\n.br\n";
  out += ".SH DESCRIPTION\n";
  out +=
      "Unshelver is a sidecar for the Caddy web server: it shelves an idle cloud VM and wakes it when a "
      "visitor or a client needs it.\n";
  out +=
      "As a service (unshelver.service), it tells systemd when it is ready (Type=notify), feeds its "
      "watchdog from its event loop, reloads its configuration on SIGHUP and stops gracefully on SIGTERM.\n";
  for (const Section& section : kSections) {
    out += ".SH " + roff(man_heading(section.heading)) + "\n";
    if (!section.intro.empty()) out += roff(section.intro) + "\n";
    for (const Entry& entry : section.entries) {
      out += ".TP\n.B " + roff(entry.synopsis) + "\n" + roff(entry.description) + "\n";
    }
    if (!section.outro.empty()) out += ".PP\n" + roff(section.outro) + "\n";
  }
  out += ".SH ENVIRONMENT\n";
  out += ".TP\n.B UNSHELVER_CONFIG\nThe configuration file when \\-\\-config is not given.\n";
  out +=
      ".TP\n.B NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID\nSet by systemd (sd_notify(3)): where READY=1, "
      "RELOADING=1, STOPPING=1 and STATUS= go, and how often WATCHDOG=1 must arrive.\n";
  out += ".SH FILES\n";
  out += ".TP\n.I /etc/unshelver/config.yaml\nThe configuration of the packaged service.\n";
  out += ".TP\n.I /var/lib/unshelver\nThe state: desired states, last activity and the event log.\n";
  out += ".SH EXIT STATUS\n0 success, 1 run\\-time failure, 2 usage or configuration error.\n";
  out += ".PP\n" + roff(kClosing) + "\n";
  out += ".SH SEE ALSO\n.BR caddy (8),\n.BR systemd.service (5),\n.BR sd_notify (3)\n";
  return out;
}

}  // namespace unshelver::app
