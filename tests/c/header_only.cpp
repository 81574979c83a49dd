// SPDX-License-Identifier: Apache-2.0 OR MIT
// The public header from C++ with every warning an error.
#include <parallax/parallax.h>

int px_header_check_cxx();
int px_header_check_cxx() {
    px_metadata_t meta{};
    px_metadata_init(&meta);
    static_assert(sizeof(px_metadata_t) == 120, "px_metadata_t layout is part of the ABI");
    static_assert(sizeof(px_ipc_handle_t) == 16, "px_ipc_handle_t layout is part of the ABI");
    return static_cast<int>(meta.user_len);
}
