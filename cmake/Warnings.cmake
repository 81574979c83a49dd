# SPDX-License-Identifier: Apache-2.0 OR MIT
# One place for warning flags. PX_WERROR turns them into errors.
function(px_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Wold-style-cast>)
  if(PX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
