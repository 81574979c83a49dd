# SPDX-License-Identifier: Apache-2.0 OR MIT
# PX_SANITIZE="address;undefined" or "thread": applied to everything in this build tree.
if(PX_SANITIZE)
  string(REPLACE ";" "," _px_san "${PX_SANITIZE}")
  add_compile_options(-fsanitize=${_px_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_px_san})
  add_compile_definitions(PX_SANITIZED=1)
  if("thread" IN_LIST PX_SANITIZE)
    # GCC warns that TSan does not model atomic_thread_fence. Our fences order only atomics
    # (the Dekker handshakes of waiters and wakers); plain data is published by release/acquire
    # on the ring indices, which TSan does model.
    add_compile_options($<$<CXX_COMPILER_ID:GNU>:-Wno-tsan>)
  endif()
endif()
