// event_log_fuzz: what Unshelver reads back from its event log at start (events/record.h) on
// arbitrary bytes, as a crash, a full disk or a person's editor may leave the file. It must never
// crash, throw or trip a sanitizer, and:
// - intact_length() cuts at a line boundary: the kept part is empty or ends with a newline; it cuts
//   at most one line (one interrupted append), and nothing when the file ends with a record;
// - every line that parses survives to_json_line() and parses again to the same record (what is
//   uploaded to Swift is exactly what was read).
//
//   scripts/fuzz [SECONDS]    builds this with clang and runs it on corpus/event_log/
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "events/record.h"

namespace {

using unshelver::core::EventRecord;

void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "event_log_fuzz: %s\n", what);
  std::abort();
}

bool same(const EventRecord& a, const EventRecord& b) {
  return a.seq == b.seq && a.id == b.id && a.at == b.at && a.backend == b.backend &&
         a.instance_name == b.instance_name && a.action == b.action && a.actor == b.actor &&
         a.from == b.from && a.to == b.to && a.detail == b.detail;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view content(reinterpret_cast<const char*>(data), size);

  const std::size_t intact = unshelver::core::intact_length(content);
  require(intact <= content.size(), "intact_length beyond the content");
  const std::string_view kept = content.substr(0, intact);
  require(kept.empty() || kept.back() == '\n', "the kept part does not end with a newline");
  // At most one damaged line is cut (one interrupted append), and nothing when the file ends
  // with a whole record.
  const std::string_view cut = content.substr(intact);
  require(cut.find('\n') == std::string_view::npos || cut.find('\n') == cut.size() - 1,
          "more than one line was cut");
  if (!content.empty() && content.back() == '\n') {
    const std::size_t start =
        content.size() > 1 ? content.rfind('\n', content.size() - 2) : std::string_view::npos;
    const std::string_view last = content.substr(start == std::string_view::npos ? 0 : start + 1);
    const std::string_view line = last.substr(0, last.size() - 1);
    const bool whole_record = line.empty() || unshelver::core::parse_event_line(line).ok();
    require(whole_record == (intact == content.size()), "a whole last record was cut, or a damaged one kept");
  }

  std::size_t begin = 0;
  while (begin < content.size()) {
    std::size_t end = content.find('\n', begin);
    if (end == std::string_view::npos) end = content.size();
    const auto record = unshelver::core::parse_event_line(content.substr(begin, end - begin));
    if (record) {
      const std::string written = unshelver::core::to_json_line(*record);
      require(written.find('\n') == std::string::npos, "a written record spans lines");
      const auto again = unshelver::core::parse_event_line(written);
      require(again.ok(), "a written record does not parse");
      // Invalid UTF-8 is replaced when written, so only valid text must come back unchanged.
      if (written.find("\xEF\xBF\xBD") == std::string::npos)
        require(same(*record, *again), "round trip changed it");
    }
    begin = end + 1;
  }
  return 0;
}
