# SPDX-License-Identifier: Apache-2.0 OR MIT
# Tests, examples and benchmarks are built by default only where they can be, so that
# `cmake -S . -B build && cmake --install build` needs nothing but a compiler and CMake: this must
# be the top-level project, the part's directory must be in the source tree (the Rust crate ships
# the library's sources alone), and what the part needs must be installed.
#
# PX_BUILD_<PART> is AUTO (that rule), ON or OFF. A part left to AUTO that cannot be built is
# skipped with one status line that says why and how to get what is missing; a part asked for
# explicitly (-DPX_BUILD_<PART>=ON) that cannot be built stops the configure with the same advice,
# rather than failing later in a find_* call that names no package.

# px_optional_part(<var> <label> <dir> <missing> <doc>)
#   <var>     PX_BUILD_TESTS, ...: left set to ON or OFF in the caller's scope (the cache keeps
#             AUTO, so that installing the missing package later turns the part on)
#   <dir>     the part's directory, relative to the source root
#   <missing> empty when everything the part needs was found, else what is missing and the advice
function(px_optional_part var label dir missing doc)
  set(${var} AUTO CACHE STRING "${doc}: ON, OFF or AUTO (ON when top-level and buildable)")
  set_property(CACHE ${var} PROPERTY STRINGS AUTO ON OFF)
  if(NOT EXISTS ${PROJECT_SOURCE_DIR}/${dir}/CMakeLists.txt)
    set(missing "${dir}/ is not in this source tree")
  endif()
  string(TOUPPER "${${var}}" asked)
  if(asked STREQUAL "AUTO")
    if(NOT CMAKE_SOURCE_DIR STREQUAL PROJECT_SOURCE_DIR) # PROJECT_IS_TOP_LEVEL needs 3.21
      set(build OFF)
      set(why "not the top-level project")
    elseif(missing)
      set(build OFF)
      set(why "${missing}")
    else()
      set(build ON)
    endif()
  elseif(${var})
    if(missing)
      message(FATAL_ERROR "parallax: ${label} asked for (-D${var}=${${var}}) but ${missing}; "
                          "or configure with -D${var}=OFF")
    endif()
    set(build ON)
  else()
    set(build OFF)
    set(why "-D${var}=${${var}}")
  endif()
  if(build)
    message(STATUS "parallax: ${label} on")
  else()
    message(STATUS "parallax: ${label} off (${why})")
  endif()
  set(${var} ${build} PARENT_SCOPE)
endfunction()

# What the test suites need beyond the compiler: doctest's header (tests/cpp reads the same
# cached DOCTEST_INCLUDE_DIR). A NOTFOUND result is searched again at the next configure.
function(px_tests_missing out)
  find_path(DOCTEST_INCLUDE_DIR doctest/doctest.h
            DOC "Directory holding doctest/doctest.h (the test suites' framework)")
  if(DOCTEST_INCLUDE_DIR)
    set(${out} "" PARENT_SCOPE)
  else()
    set(${out} "doctest not found: apt-get install doctest-dev, or set DOCTEST_INCLUDE_DIR to \
the directory holding doctest/doctest.h" PARENT_SCOPE)
  endif()
endfunction()
