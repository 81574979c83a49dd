/* SPDX-License-Identifier: Apache-2.0 OR MIT */
#include <parallax/parallax.h>
#include <stdio.h>

int main(void) {
    px_segment_t *seg = NULL;
    if (px_segment_shm_new("consumer", 4096, &seg) != PX_OK) {
        fprintf(stderr, "px_segment_shm_new: %s\n", px_last_error_message());
        return 1;
    }
    printf("libparallax %s: %zu bytes of shared memory\n", px_version_string(),
           px_segment_len(seg));
    px_segment_release(seg);
    return 0;
}
