/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* A plain C99 program written from parallax.h's contract: segments, a pool, buffers, errors. */
#include <parallax/parallax.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;
#define EXPECT(cond)                                                                           \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: expected %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    px_last_error_message());                                                  \
            ++failures;                                                                        \
        }                                                                                      \
    } while (0)

int main(void) {
    px_segment_t *seg = NULL;
    px_pool_t *pool = NULL;
    px_slot_t *slot = NULL;
    px_buffer_t *buf = NULL, *clone = NULL;
    px_metadata_t meta;
    int checks = 0;

    EXPECT(px_version() == PX_VERSION);
    EXPECT(px_segment_shm_new("c-smoke", 1 << 20, &seg) == PX_OK);
    EXPECT(px_pool_new(seg, 64 << 10, &pool) == PX_OK);
    EXPECT(px_pool_capacity(pool) == 16);
    EXPECT(px_pool_loan(pool, &slot) == PX_OK);
    memcpy(px_slot_data(slot), "frame", 5);
    px_metadata_init(&meta);
    meta.sequence = 3;
    EXPECT(px_slot_into_buffer(slot, 5, &meta, &buf) == PX_OK);
    EXPECT(px_buffer_clone(buf, &clone) == PX_OK);
    EXPECT(memcmp(px_buffer_ptr(clone), "frame", 5) == 0);
    EXPECT(px_pool_available(pool) == 15);
    px_buffer_release(buf);
    px_buffer_release(clone);
    EXPECT(px_pool_available(pool) == 16);
    EXPECT(px_buffer_new(seg, (1 << 20) - 2, 16, NULL, &buf) == PX_E_INVALID);
    EXPECT(strstr(px_last_error_message(), "exceeds segment length") != NULL);
    EXPECT(strcmp(px_status_string(PX_E_INVALID), "PX_E_INVALID") == 0);
    px_pool_release(pool);
    px_segment_release(seg);
    checks = 11;
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
