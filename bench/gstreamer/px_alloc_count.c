/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Counts heap allocations of a process, for count.sh: LD_PRELOAD it, and at exit it appends
 * "allocs N" to the file named by $PX_ALLOC_COUNT_OUT. Every call that may hand out new memory
 * counts (malloc, calloc, realloc, the aligned ones; C++'s operator new goes through malloc).
 * Run with G_SLICE=always-malloc so that GLib's slice allocator (GstBuffer, GstMemory...) shows
 * too. The real allocator is glibc's, called by its __libc_* names: dlsym(RTLD_NEXT) would
 * allocate itself while resolving. To see where allocations come from, PX_ALLOC_TRACE_FROM=K and
 * PX_ALLOC_TRACE_COUNT=M print the call stacks of allocations K to K+M-1 on stderr (symbols
 * with addresses: resolve static functions with addr2line). Built by count.sh with cc; not
 * part of the tests. */
#define _GNU_SOURCE
#include <execinfo.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong allocs;
static unsigned long trace_from, trace_to; /* [from, to) of allocations whose stack is printed */
static __thread int tracing;               /* backtrace() may allocate: no stack of that */

__attribute__((constructor)) static void setup(void) {
    const char *from = getenv("PX_ALLOC_TRACE_FROM"), *count = getenv("PX_ALLOC_TRACE_COUNT");
    if (from != NULL) {
        trace_from = strtoul(from, NULL, 10);
        trace_to = trace_from + (count ? strtoul(count, NULL, 10) : 100);
    }
}

static void counted(void) {
    const unsigned long n = atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    if (n < trace_from || n >= trace_to || tracing)
        return;
    tracing = 1;
    void *frames[16];
    const int depth = backtrace(frames, 16);
    char line[64];
    const int len = snprintf(line, sizeof line, "--- allocation %lu\n", n);
    if (write(2, line, (size_t)len) < 0)
        return;
    backtrace_symbols_fd(frames + 1, depth - 1, 2);
    tracing = 0;
}

void *malloc(size_t n) {
    counted();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size) {
    counted();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n) {
    counted();
    return __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n) {
    counted();
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n) {
    return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
    void *p = memalign(align, n);
    if (p == NULL)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("PX_ALLOC_COUNT_OUT");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f == NULL)
        return;
    fprintf(f, "allocs %lu\n", (unsigned long)atomic_load(&allocs));
    fclose(f);
}
