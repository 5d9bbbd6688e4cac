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

// `Block` is a heap object allocated with `new` whose member `handle` is the libuv handle (any
// uv_*_t: libuv's handle types all begin with uv_handle_t's fields, so the cast to uv_handle_t* is
// libuv's own idiom). The block is found again through `handle.data`, which therefore holds the
// block: every owner sets it right after init, and it is set here once more because the close
// callback depends on it. The callback casts it back to exactly `Block*` (STYLE.md §2.4); it does
// not assume that the handle sits at the block's address, which blocks with non-standard-layout
// members such as std::function would not guarantee.
template <typename Block>
void close_and_free(Block* block) {
  if (block == nullptr) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(&block->handle);
  if (uv_is_closing(handle)) return;
  handle->data = block;
  uv_close(handle, [](uv_handle_t* closed) { delete static_cast<Block*>(closed->data); });
}

}  // namespace unshelver::io
