// Result<T>: a value or an error, for code that runs inside the event loop.
//
// The loop never throws (an exception must not unwind through libuv, libcurl or llhttp frames),
// so fallible operations return a Result instead. std::expected is C++23; this is the small
// subset of it that we need.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace unshelver {

struct Error {
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : storage_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : storage_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return storage_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(storage_); }
  const T& value() const& { return std::get<0>(storage_); }
  T&& value() && { return std::get<0>(std::move(storage_)); }
  const Error& error() const { return std::get<1>(storage_); }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> storage_;
};

// Result<void> carries only success or an error.
struct Ok {};
using Status = Result<Ok>;

inline Status ok_status() {
  return Status(Ok{});
}

}  // namespace unshelver
