/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Loading libparallax at run time with dlopen(3) instead of linking it: for plugins, optional
 * acceleration, or programs that must start (and say why) when the library is missing.
 *
 *   px_dlopen_example [path/to/libparallax.so]     (default: "libparallax.so.0", the soname)
 *
 * It resolves the functions it uses with dlsym, checks the loaded library's major version,
 * then uses a shared-memory segment, a pool over a heap segment and buffers. parallax.h is
 * included only for its types and constants; nothing is linked but libdl.
 * Exit status: 0 ok, 1 a call failed, 2 the library cannot be loaded, 3 a symbol is missing,
 * 4 incompatible major version. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <parallax/parallax.h>
#include <stdio.h>
#include <string.h>

/* The functions this program calls, with the types of their declarations in parallax.h. */
struct parallax_api {
    uint32_t (*version)(void);
    const char *(*version_string)(void);
    const char *(*last_error_message)(void);
    const char *(*status_string)(px_status_t);
    px_status_t (*segment_shm_new)(const char *, size_t, px_segment_t **);
    px_status_t (*segment_heap_new)(size_t, px_segment_t **);
    void *(*segment_mut_ptr)(const px_segment_t *);
    size_t (*segment_len)(const px_segment_t *);
    px_memory_type_t (*segment_memory_type)(const px_segment_t *);
    void (*segment_release)(px_segment_t *);
    px_status_t (*pool_new)(px_segment_t *, size_t, px_pool_t **);
    size_t (*pool_capacity)(const px_pool_t *);
    size_t (*pool_available)(const px_pool_t *);
    px_status_t (*pool_loan)(px_pool_t *, px_slot_t **);
    void (*pool_release)(px_pool_t *);
    void *(*slot_data)(px_slot_t *);
    px_status_t (*slot_into_buffer)(px_slot_t *, size_t, const px_metadata_t *, px_buffer_t **);
    void (*metadata_init)(px_metadata_t *);
    px_status_t (*buffer_new)(px_segment_t *, size_t, size_t, const px_metadata_t *,
                              px_buffer_t **);
    px_status_t (*buffer_clone)(const px_buffer_t *, px_buffer_t **);
    const void *(*buffer_ptr)(const px_buffer_t *);
    size_t (*buffer_len)(const px_buffer_t *);
    px_status_t (*buffer_metadata)(const px_buffer_t *, px_metadata_t *);
    void (*buffer_release)(px_buffer_t *);
};

/* One row per function: its symbol name and where its address goes. The sizeof line makes the
 * compiler check each pointer type against the header's declaration (sizeof does not evaluate
 * its operand, so nothing refers to the symbol and nothing needs linking). */
#define PX_FUNCTIONS(X)                                                                        \
    X(version) X(version_string) X(last_error_message) X(status_string) X(segment_shm_new)     \
    X(segment_heap_new) X(segment_mut_ptr) X(segment_len) X(segment_memory_type)               \
    X(segment_release) X(pool_new) X(pool_capacity) X(pool_available) X(pool_loan)              \
    X(pool_release) X(slot_data) X(slot_into_buffer) X(metadata_init) X(buffer_new)             \
    X(buffer_clone) X(buffer_ptr) X(buffer_len) X(buffer_metadata) X(buffer_release)

/* Resolves every function. A missing one is named (with dlerror's reason for the first) and
 * counted; returns how many are missing. */
static int resolve(void *lib, const char *path, struct parallax_api *api) {
    int missing = 0;
    void *sym;
#define PX_RESOLVE(name)                                                                       \
    (void)sizeof(api->name == &px_##name);                                                     \
    dlerror();                                                                                 \
    sym = dlsym(lib, "px_" #name);                                                             \
    if (sym == NULL) {                                                                         \
        if (missing++ == 0)                                                                    \
            fprintf(stderr, "px_dlopen_example: %s has no symbol px_%s (%s)", path, #name,    \
                    dlerror());                                                                \
        else                                                                                   \
            fprintf(stderr, "%spx_%s", missing == 2 ? "; also missing: " : ", ", #name);      \
    } else {                                                                                   \
        /* POSIX guarantees that a data pointer from dlsym converts to a function pointer. */  \
        memcpy(&api->name, &sym, sizeof sym);                                                  \
    }
    PX_FUNCTIONS(PX_RESOLVE)
#undef PX_RESOLVE
    if (missing)
        fprintf(stderr, "\npx_dlopen_example: %d of the functions it needs are missing: %s is "
                        "not libparallax, or too old a version\n", missing, path);
    return missing;
}

static const struct parallax_api *px;

static int failed(const char *what, px_status_t rc) {
    fprintf(stderr, "px_dlopen_example: %s failed: %s: %s\n", what, px->status_string(rc),
            px->last_error_message());
    return 1;
}

/* The library in use: a shared segment written directly, then a pool, a slot, buffers. */
static int use_library(void) {
    static const char text[] = "hello through dlopen";
    px_segment_t *shm = NULL, *heap = NULL;
    px_pool_t *pool = NULL;
    px_slot_t *slot = NULL;
    px_buffer_t *buf = NULL, *clone = NULL, *bad = NULL;
    px_metadata_t meta, got;
    px_status_t rc;
    size_t capacity;

    if ((rc = px->segment_shm_new("dlopen-example", 1 << 16, &shm)) != PX_OK)
        return failed("px_segment_shm_new", rc);
    if (px->segment_len(shm) != 1 << 16 || px->segment_memory_type(shm) != PX_MEMORY_SHARED) {
        fprintf(stderr, "px_dlopen_example: the shared segment reports the wrong size/type\n");
        return 1;
    }
    memcpy(px->segment_mut_ptr(shm), text, sizeof text);
    /* Bad input is an error code and a message, never a crash. */
    rc = px->buffer_new(shm, (1 << 16) - 4, 16, NULL, &bad);
    if (rc != PX_E_INVALID || bad != NULL) {
        fprintf(stderr, "px_dlopen_example: an out-of-range buffer was not refused\n");
        return 1;
    }
    printf("refused as expected: %s\n", px->last_error_message());
    px->segment_release(shm);

    if ((rc = px->segment_heap_new(4 * 4096, &heap)) != PX_OK)
        return failed("px_segment_heap_new", rc);
    rc = px->pool_new(heap, 4096, &pool);
    px->segment_release(heap); /* the pool keeps it */
    if (rc != PX_OK)
        return failed("px_pool_new", rc);
    capacity = px->pool_capacity(pool);
    if ((rc = px->pool_loan(pool, &slot)) != PX_OK)
        return failed("px_pool_loan", rc);
    memcpy(px->slot_data(slot), text, sizeof text);
    px->metadata_init(&meta);
    meta.sequence = 42;
    if ((rc = px->slot_into_buffer(slot, sizeof text, &meta, &buf)) != PX_OK)
        return failed("px_slot_into_buffer", rc);
    if ((rc = px->buffer_clone(buf, &clone)) != PX_OK)
        return failed("px_buffer_clone", rc);
    px->buffer_release(buf);
    if ((rc = px->buffer_metadata(clone, &got)) != PX_OK)
        return failed("px_buffer_metadata", rc);
    if (px->buffer_len(clone) != sizeof text || memcmp(px->buffer_ptr(clone), text, sizeof text) ||
        got.sequence != 42 || got.pts_ns != PX_TIME_NONE) {
        fprintf(stderr, "px_dlopen_example: the buffer lost its bytes or metadata\n");
        return 1;
    }
    printf("buffer: \"%s\", sequence %llu, %zu of %zu slots out\n",
           (const char *)px->buffer_ptr(clone), (unsigned long long)got.sequence,
           capacity - px->pool_available(pool), capacity);
    px->buffer_release(clone); /* the last reference: the slot goes back */
    if (px->pool_available(pool) != capacity) {
        fprintf(stderr, "px_dlopen_example: the slot did not return to its pool\n");
        return 1;
    }
    px->pool_release(pool);
    return 0;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "libparallax.so.0";
    struct parallax_api api;
    uint32_t v;
    int rc;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "px_dlopen_example: cannot load %s: %s\n", path, dlerror());
        return 2;
    }
    memset(&api, 0, sizeof api);
    if (resolve(lib, path, &api) != 0) {
        dlclose(lib);
        return 3;
    }
    px = &api;
    v = api.version();
    if (v >> 16 != PX_VERSION_MAJOR) {
        fprintf(stderr, "px_dlopen_example: %s is libparallax %s, this program needs major %d\n",
                path, api.version_string(), PX_VERSION_MAJOR);
        dlclose(lib);
        return 4;
    }
    printf("loaded libparallax %s from %s\n", api.version_string(), path);
    rc = use_library();
    dlclose(lib);
    if (rc == 0)
        printf("px_dlopen_example: ok\n");
    return rc;
}
