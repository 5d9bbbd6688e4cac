// Ownership of libuv handles.
//
// libuv's contract (docs/src/handle.rst): uv_close "MUST be called on each handle before memory is
// released", and the memory may be released only in the close callback or after it has returned.
// Closing a handle twice asserts. So every handle we create lives in its own heap block, and the
// only place that frees the block is the close callback below. Owners call close_and_free() from
// their destructor or shutdown path and forget the pointer; libuv frees it on a later iteration.
#pragma once

#include <uv.h>

namespace unshelver::io {

// `Block` is a heap object whose first member is the libuv handle (so the handle's address is the
// block's address), allocated with `new`. The close callback deletes it as that exact type.
template <typename Block>
void close_and_free(Block* block) {
  if (block == nullptr) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(block);
  if (uv_is_closing(handle)) return;
  uv_close(handle, [](uv_handle_t* closed) { delete reinterpret_cast<Block*>(closed); });
}

}  // namespace unshelver::io
