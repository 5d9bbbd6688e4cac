// JSON text written in pieces: documents joined from parts kept apart (the status document's
// backends, the state file's) that read exactly as if dumped whole.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace unshelver::core {

// The JSON text of `value` as nlohmann's dump(2) writes it `depth` levels deep in a document:
// every line after the first indented by 2 × depth more spaces.
inline std::string indented_json(const nlohmann::json& value, int depth) {
  const std::string text = value.dump(2);
  const std::string indent = "\n" + std::string(static_cast<std::size_t>(2 * depth), ' ');
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  // A line break in dump(2)'s output is always its own: strings carry theirs escaped ("\n").
  for (char c : text) {
    if (c == '\n') {
      out += indent;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace unshelver::core
