// SharedText: a text made of slices of immutable buffers that others own too, so that a large
// document kept in pieces (the public status document, the launcher, /metrics) is answered
// without joining the pieces into one fresh buffer per request. The text keeps every buffer its
// slices point into alive (keep) for as long as it or a copy lives: the HTTP server holds it until
// the kernel has taken the bytes, and a piece replaced meanwhile stays until then.
//
// Pure: no I/O. The server writes the slices with one uv_write over as many buffers (writev).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unshelver::core {

class SharedText {
 public:
  // Keeps `owner` alive with this text; append only slices of buffers kept so (or of static
  // storage, such as string literals).
  void keep(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }

  // Appends `slice`; a slice that continues the last one in memory extends it, and an empty one
  // adds nothing.
  void append(std::string_view slice) {
    if (slice.empty()) return;
    size_ += slice.size();
    if (!slices_.empty() && slices_.back().data() + slices_.back().size() == slice.data()) {
      slices_.back() = std::string_view(slices_.back().data(), slices_.back().size() + slice.size());
      return;
    }
    slices_.push_back(slice);
  }

  // Takes `text` into a buffer of its own, kept with this text, and returns it, so that one
  // small string can be appended in many places (a visitor's form token).
  std::string_view own(std::string text) {
    auto owned = std::make_shared<const std::string>(std::move(text));
    std::string_view view = *owned;
    keep(std::move(owned));
    return view;
  }

  // Reserves room for `slices` slices (a caller that knows how many it appends).
  void reserve(std::size_t slices) { slices_.reserve(slices); }

  const std::vector<std::string_view>& slices() const { return slices_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The slices copied into one string: for tests and for callers that need the whole text.
  std::string joined() const {
    std::string text;
    text.reserve(size_);
    for (std::string_view slice : slices_) text.append(slice);
    return text;
  }

  // Empty again, releasing every buffer kept.
  void clear() {
    slices_.clear();
    owners_.clear();
    size_ = 0;
  }

 private:
  std::vector<std::shared_ptr<const void>> owners_;
  std::vector<std::string_view> slices_;
  std::size_t size_ = 0;
};

}  // namespace unshelver::core
