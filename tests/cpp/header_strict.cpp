// parallax.hpp alone, compiled with every warning an error (C++17 and C++20 in CMake).
#include "parallax/parallax.hpp"

int px_cpp_header_strict_check() {
    parallax::Metadata m(1);
    return m.has_pts() ? 1 : 0;
}
