/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/*
 * libparallax — zero-copy memory segments, slot pools, buffers and IPC channels.
 *
 * This is the whole public C ABI (C99; also valid C++). Every binding is built on it. The doc
 * block above each function is its contract; README.md shows the functions in use.
 *
 * Conventions:
 *  - Fallible calls return px_status_t: PX_OK (0) or a negative PX_E_* code, and give their
 *    results through out-parameters placed last. On failure the out-parameter is left NULL/0
 *    and px_last_error_message() names what was wrong.
 *  - Handles are opaque. Every handle type has a *_release that gives up the caller's handle
 *    and accepts NULL. Only segments and pools are shared by reference count
 *    (px_segment_retain, px_pool_retain); a buffer is copied with px_buffer_clone, and a slot,
 *    channel or listener has a single owner.
 *  - timeout_ns: < 0 waits forever, 0 polls (PX_E_WOULD_BLOCK if nothing is ready),
 *    > 0 waits up to that long (PX_E_TIMEOUT).
 *  - Every call may be made from any thread.
 *
 * Ownership: every pointer a function gives out, and every handle it takes over, says which of
 * these it is:
 *  - owned: the caller now holds it and gives it back with the function named (for an fd:
 *    close()).
 *  - borrowed: the library keeps it; it is valid while the object named lives (and must not be
 *    released or closed by the caller).
 *  - nullable: it may be NULL (-1 for an fd), and the doc says when and what NULL means.
 * A handle passed in is borrowed for the duration of the call unless its doc says the call
 * consumes it (the call then owns it, also on failure). An object that must outlive the call
 * (a pool's segment, a buffer's memory) gets its own reference: the caller keeps its own. A
 * pointer parameter not marked nullable must not be NULL: a fallible call answers
 * PX_E_INVALID, an accessor answers 0 or NULL.
 */
#ifndef PARALLAX_H
#define PARALLAX_H

#include <stddef.h>
#include <stdint.h>

#include "parallax/version.h"

#if defined(_WIN32)
#define PX_API
#elif defined(__GNUC__) || defined(__clang__)
#define PX_API __attribute__((visibility("default")))
#else
#define PX_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status codes. Values are fixed and never renumbered.                                       */
/* ------------------------------------------------------------------------------------------ */
typedef int32_t px_status_t;

#define PX_OK 0
#define PX_E_INVALID (-1)     /* bad argument or range */
#define PX_E_NOMEM (-2)       /* out of memory */
#define PX_E_UNSUPPORTED (-3) /* not available here (huge pages not reserved, IPC of heap...) */
#define PX_E_IO (-4)          /* an OS call failed; the message names the call and errno */
#define PX_E_WOULD_BLOCK (-5) /* pool exhausted on a non-blocking loan, nothing to receive */
#define PX_E_TIMEOUT (-6)     /* a positive timeout expired */
#define PX_E_CLOSED (-7)      /* peer gone / channel closed */
#define PX_E_PROTOCOL (-8)    /* peer sent malformed or hostile data; connection dropped */
#define PX_E_PERMISSION (-9)  /* peer credentials refused, access denied */
#define PX_E_BUSY (-10)       /* resource in use */
#define PX_E_INTERNAL (-11)   /* a bug in libparallax; please report it */

/* Message of the last failing call on this thread ("" if none).
 * @return borrowed: valid until the next failing call on this thread; never NULL. */
PX_API const char *px_last_error_message(void);
/* Name of a status code, e.g. "PX_E_INVALID" ("PX_E_UNKNOWN" for other values).
 * @return borrowed: a static string, valid for the life of the process; never NULL. */
PX_API const char *px_status_string(px_status_t status);

/* ------------------------------------------------------------------------------------------ */
/* Library version                                                                            */
/* ------------------------------------------------------------------------------------------ */
/* (major << 16) | (minor << 8) | patch of the loaded library (compare with PX_VERSION). */
PX_API uint32_t px_version(void);
/* "major.minor.patch" of the loaded library.
 * @return borrowed: a static string, valid for the life of the process; never NULL. */
PX_API const char *px_version_string(void);

/* ------------------------------------------------------------------------------------------ */
/* Segments: one contiguous, mapped region of memory.                                         */
/* ------------------------------------------------------------------------------------------ */
typedef struct px_segment px_segment_t;

typedef uint32_t px_memory_type_t;
#define PX_MEMORY_HEAP 0u
#define PX_MEMORY_SHARED 1u
#define PX_MEMORY_HUGE_PAGES 2u
#define PX_MEMORY_MAPPED_FILE 3u

/* px_segment_hugepage_new page sizes (in bytes) and flags. */
#define PX_HUGE_PAGE_2MB 2097152u
#define PX_HUGE_PAGE_1GB 1073741824u
#define PX_HUGEPAGE_FALLBACK 1u /* fall back to normal shared pages when none are reserved */

/* px_segment_shm_from_fd flags. */
#define PX_MAP_READONLY 1u       /* map read-only (required for fds received from a channel) */
#define PX_MAP_ALLOW_UNSEALED 2u /* accept an fd without shrink seals (e.g. a regular file) */

/* IPC handle of a shareable segment. */
typedef int32_t px_ipc_kind_t;
#define PX_IPC_FD 1

typedef struct px_ipc_handle {
    int32_t kind;  /* PX_IPC_FD */
    int32_t fd;    /* borrowed: valid while the segment lives; dup it to keep it longer */
    uint64_t size; /* bytes */
} px_ipc_handle_t;

/* Private anonymous memory of `size` bytes (> 0), zero-filled. Not shareable.
 * @param[out] out  owned: release with px_segment_release(). */
PX_API px_status_t px_segment_heap_new(size_t size, px_segment_t **out);
/* Shared memory (memfd, MFD_CLOEXEC | MFD_ALLOW_SEALING) of `size` bytes, zero-filled, sealed
 * against shrinking and growing before it can be shared.
 * @param name      nullable: a debugging label, copied; NULL for none.
 * @param[out] out  owned: release with px_segment_release(). */
PX_API px_status_t px_segment_shm_new(const char *name, size_t size, px_segment_t **out);
/* Maps `size` bytes of a shared-memory fd received from another process. Refuses fds that are
 * not regular/memfd files, are smaller than `size`, or lack shrink seals (unless
 * PX_MAP_ALLOW_UNSEALED). PX_MAP_READONLY maps read-only.
 * @param fd        borrowed: the caller keeps it and closes it when it likes (the segment
 *                  holds its own dup).
 * @param[out] out  owned: release with px_segment_release(). */
PX_API px_status_t px_segment_shm_from_fd(int fd, size_t size, uint32_t flags, px_segment_t **out);
/* Huge-page shared memory (memfd with MFD_HUGETLB). `page_size` is PX_HUGE_PAGE_2MB or
 * PX_HUGE_PAGE_1GB; `size` is rounded up to a whole number of pages. Pages are pre-faulted, so
 * running out is an error here and never a SIGBUS later. Without PX_HUGEPAGE_FALLBACK, no
 * reserved pages is PX_E_UNSUPPORTED (the message says how to reserve them); with it, the
 * segment falls back to normal shared pages and reports PX_MEMORY_SHARED and page size 4096.
 * @param[out] out  owned: release with px_segment_release(). */
PX_API px_status_t px_segment_hugepage_new(uint32_t page_size, size_t size, uint32_t flags,
                                           px_segment_t **out);
/* Mapped files and truncation: a file cannot be sealed, so any process allowed to write it may
 * truncate it while it is mapped here. Touching mapped pages that lie wholly beyond the file's
 * new end then raises SIGBUS in this process (the part of the last page beyond the end reads as
 * zeros); the library cannot turn that signal into an error for a raw pointer. Where the file
 * is not under this process's sole control, read it with px_segment_read, which reports
 * truncation as PX_E_IO. For the same reason channels refuse mapped-file segments.
 *
 * Creates a new file of `size` bytes (mode 0600) and maps it read-write. An existing path is
 * an error (PX_E_INVALID): it never truncates.
 * @param path      borrowed for the call.
 * @param[out] out  owned: release with px_segment_release(). */
PX_API px_status_t px_segment_file_create(const char *path, size_t size, px_segment_t **out);
/* Maps an existing non-empty file read-write.
 * @param path      borrowed for the call.
 * @param[out] out  owned: release with px_segment_release(). */
PX_API px_status_t px_segment_file_open(const char *path, px_segment_t **out);
/* Maps an existing non-empty file read-only (px_segment_mut_ptr gives NULL).
 * @param path      borrowed for the call.
 * @param[out] out  owned: release with px_segment_release(). */
PX_API px_status_t px_segment_file_open_readonly(const char *path, px_segment_t **out);
/* msync(MS_SYNC) of a mapped-file segment; a no-op PX_OK for other types. */
PX_API px_status_t px_segment_flush(px_segment_t *seg);
/* Copies bytes [offset, offset + len) of the segment into `dst` (len may be 0). For a segment
 * whose file may shrink under it (a mapped file, or an fd mapped with PX_MAP_ALLOW_UNSEALED) it
 * reads through the file (pread), so a file that another process truncated gives PX_E_IO with a
 * message naming its new size, never a SIGBUS; for other segments it is a bounds-checked
 * memcpy. A range beyond the segment's length, or a NULL seg or dst, is PX_E_INVALID. On
 * failure the contents of `dst` are unspecified. Thread-safe; does not change the segment.
 * @param dst  the caller's memory, at least `len` bytes. */
PX_API px_status_t px_segment_read(const px_segment_t *seg, size_t offset, void *dst, size_t len);

/* The first byte of the mapping.
 * @return borrowed: valid while seg lives. nullable: NULL only when seg is NULL. */
PX_API const void *px_segment_ptr(const px_segment_t *seg);
/* The first byte of the mapping, for writing.
 * @return borrowed: valid while seg lives. nullable: NULL when the segment is read-only (or
 *         seg is NULL). */
PX_API void *px_segment_mut_ptr(const px_segment_t *seg);
PX_API size_t px_segment_len(const px_segment_t *seg);
/* 1 when the mapping is read-only, else 0. */
PX_API int32_t px_segment_is_readonly(const px_segment_t *seg);
PX_API px_memory_type_t px_segment_memory_type(const px_segment_t *seg);
/* The page size actually in use (4096 after a huge-page fallback). */
PX_API size_t px_segment_page_size(const px_segment_t *seg);
/* The fd and size to share this segment. PX_E_UNSUPPORTED for heap segments.
 * @param[out] out  the caller's struct, filled; out->fd is borrowed: valid while seg lives
 *                  (dup it to keep it longer, never close it). */
PX_API px_status_t px_segment_ipc_handle(const px_segment_t *seg, px_ipc_handle_t *out);
/* Adds a reference.
 * @return seg itself, owned: one more reference, release it with px_segment_release().
 *         nullable: NULL when seg is NULL. */
PX_API px_segment_t *px_segment_retain(px_segment_t *seg);
/* Drops the caller's reference. The mapping goes when the last reference does: pools, slots and
 * buffers on the segment hold references of their own.
 * @param seg  nullable: NULL does nothing. */
PX_API void px_segment_release(px_segment_t *seg);

/* ------------------------------------------------------------------------------------------ */
/* Metadata carried by every buffer (and across channels, intact).                            */
/* ------------------------------------------------------------------------------------------ */
#define PX_TIME_NONE (-9223372036854775807LL - 1)
#define PX_METADATA_USER_MAX 64u

typedef struct px_metadata {
    uint64_t sequence;
    int64_t pts_ns;      /* PX_TIME_NONE when unknown */
    int64_t dts_ns;      /* PX_TIME_NONE when unknown */
    int64_t duration_ns; /* PX_TIME_NONE when unknown */
    uint64_t offset;
    uint64_t offset_end;
    uint32_t flags;
    uint32_t user_len; /* bytes of `user` in use, <= PX_METADATA_USER_MAX */
    uint8_t user[64];
} px_metadata_t;

/* Times to PX_TIME_NONE, everything else to zero.
 * @param meta  nullable: the caller's struct; NULL does nothing. */
PX_API void px_metadata_init(px_metadata_t *meta);

/* ------------------------------------------------------------------------------------------ */
/* Pools: fixed-size slots over a segment.                                                    */
/* ------------------------------------------------------------------------------------------ */
typedef struct px_pool px_pool_t;
typedef struct px_slot px_slot_t;
typedef struct px_buffer px_buffer_t;

/* Slots of `slot_size` bytes (0 < slot_size <= segment length) at data + i * slot_size;
 * capacity = len / slot_size. The segment must be writable (else PX_E_UNSUPPORTED).
 * @param segment   borrowed: the pool takes a reference of its own; the caller may release
 *                  its reference at once.
 * @param[out] out  owned: release with px_pool_release(). */
PX_API px_status_t px_pool_new(px_segment_t *segment, size_t slot_size, px_pool_t **out);
PX_API size_t px_pool_capacity(const px_pool_t *pool);
/* Slots free right now (also takes back slots that peers returned or died holding). */
PX_API size_t px_pool_available(const px_pool_t *pool);
PX_API size_t px_pool_slot_size(const px_pool_t *pool);
/* The pool's segment.
 * @return borrowed: valid while pool lives (px_segment_retain() it to keep it longer).
 *         nullable: NULL only when pool is NULL. */
PX_API px_segment_t *px_pool_segment(const px_pool_t *pool);
/* Lock-free loan of a free slot; PX_E_WOULD_BLOCK when every slot is out.
 * @param[out] out  owned: give it back with px_slot_release(), or hand it to
 *                  px_slot_into_buffer(), which consumes it. */
PX_API px_status_t px_pool_loan(px_pool_t *pool, px_slot_t **out);
/* Waits until a slot comes back from any thread or process: it spins for at most 50 us
 * (yielding the core after the first 2 us), then sleeps until a release or a return wakes it.
 * @param[out] out  owned: as for px_pool_loan(). */
PX_API px_status_t px_pool_loan_timeout(px_pool_t *pool, int64_t timeout_ns, px_slot_t **out);
/* Adds a reference.
 * @return pool itself, owned: one more reference, release it with px_pool_release().
 *         nullable: NULL when pool is NULL. */
PX_API px_pool_t *px_pool_retain(px_pool_t *pool);
/* Drops the caller's reference. The pool goes when its last reference is dropped and every
 * slot is back: slots and buffers still out keep it (and its segment) until then.
 * @param pool  nullable: NULL does nothing. */
PX_API void px_pool_release(px_pool_t *pool);

/* Slot memory, writable (pools are only made over writable segments). A slot has one writer.
 * @return borrowed: valid while the slot is on loan, i.e. until px_slot_release() or
 *         px_slot_into_buffer() (the buffer then gives the same memory). nullable: NULL only
 *         when slot is NULL. */
PX_API void *px_slot_data(px_slot_t *slot);
PX_API size_t px_slot_len(const px_slot_t *slot);
PX_API size_t px_slot_index(const px_slot_t *slot);
/* Gives the slot back to its pool.
 * @param slot  nullable: NULL does nothing. */
PX_API void px_slot_release(px_slot_t *slot);
/* Turns the slot into a buffer of its first `len` bytes (1 <= len <= slot size). The slot
 * returns to its pool when the last buffer referring to it, in this process or any other, is
 * released.
 * @param slot      consumed, whatever the result (on failure it is back in its pool).
 * @param meta      nullable: copied; NULL gives px_metadata_init() defaults.
 * @param[out] out  owned: release with px_buffer_release(). */
PX_API px_status_t px_slot_into_buffer(px_slot_t *slot, size_t len, const px_metadata_t *meta,
                                       px_buffer_t **out);

/* ------------------------------------------------------------------------------------------ */
/* Buffers: segment + offset + len + metadata. Never a hidden copy.                           */
/* ------------------------------------------------------------------------------------------ */
/* A buffer handle is not shared: px_buffer_clone() makes another handle on the same memory,
 * and each handle is released once. The memory stays mapped (and a pool slot stays out) while
 * any buffer on it lives, whatever happened to the segment and pool handles. */

/* [offset, offset + len) of `seg` (len may be 0), overflow-safe.
 * @param seg       borrowed: the buffer takes a reference of its own.
 * @param meta      nullable: copied; NULL gives px_metadata_init() defaults.
 * @param[out] out  owned: release with px_buffer_release(). */
PX_API px_status_t px_buffer_new(px_segment_t *seg, size_t offset, size_t len,
                                 const px_metadata_t *meta, px_buffer_t **out);
/* The whole segment.
 * @param seg       borrowed: the buffer takes a reference of its own.
 * @param meta      nullable: copied; NULL gives px_metadata_init() defaults.
 * @param[out] out  owned: release with px_buffer_release(). */
PX_API px_status_t px_buffer_from_segment(px_segment_t *seg, const px_metadata_t *meta,
                                          px_buffer_t **out);
/* O(1): same memory, its own copy of the metadata.
 * @param[out] out  owned: release with px_buffer_release() (independently of buf). */
PX_API px_status_t px_buffer_clone(const px_buffer_t *buf, px_buffer_t **out);
/* [offset, offset + len) relative to `buf`, same metadata, same memory.
 * @param[out] out  owned: release with px_buffer_release() (independently of buf). */
PX_API px_status_t px_buffer_slice(const px_buffer_t *buf, size_t offset, size_t len,
                                   px_buffer_t **out);
/* Releases this handle; the last buffer on a slot gives the slot back to its pool.
 * @param buf  nullable: NULL does nothing. */
PX_API void px_buffer_release(px_buffer_t *buf);
/* The buffer's first byte.
 * @return borrowed: valid while buf lives. nullable: NULL only when buf is NULL. */
PX_API const void *px_buffer_ptr(const px_buffer_t *buf);
/* The buffer's first byte, for writing.
 * @return borrowed: valid while buf lives. nullable: NULL when the memory is read-only (e.g.
 *         received from a channel), or buf is NULL. */
PX_API void *px_buffer_mut_ptr(px_buffer_t *buf);
PX_API size_t px_buffer_len(const px_buffer_t *buf);
/* Offset of the buffer's first byte within its segment. */
PX_API size_t px_buffer_offset(const px_buffer_t *buf);
/* The buffer's segment.
 * @return borrowed: valid while buf lives (px_segment_retain() it to keep it longer).
 *         nullable: NULL only when buf is NULL. */
PX_API px_segment_t *px_buffer_segment(const px_buffer_t *buf);
/* Copies the buffer's metadata.
 * @param[out] out  the caller's struct, filled. */
PX_API px_status_t px_buffer_metadata(const px_buffer_t *buf, px_metadata_t *out);
/* Replaces this handle's metadata (clones keep theirs); user_len > PX_METADATA_USER_MAX is
 * PX_E_INVALID and changes nothing. Must not race with other use of the same handle.
 * @param meta  copied. */
PX_API px_status_t px_buffer_set_metadata(px_buffer_t *buf, const px_metadata_t *meta);

/* ------------------------------------------------------------------------------------------ */
/* Formats: what a buffer's bytes are (typed frames).                                         */
/* ------------------------------------------------------------------------------------------ */
/* Element types. The values are fixed: never renumbered. */
#define PX_DTYPE_U8 1u
#define PX_DTYPE_I8 2u
#define PX_DTYPE_U16 3u
#define PX_DTYPE_I16 4u
#define PX_DTYPE_U32 5u
#define PX_DTYPE_I32 6u
#define PX_DTYPE_U64 7u
#define PX_DTYPE_I64 8u
#define PX_DTYPE_F16 9u
#define PX_DTYPE_BF16 10u
#define PX_DTYPE_F32 11u
#define PX_DTYPE_F64 12u
#define PX_FORMAT_MAX_DIMS 8u

/* An array of `ndim` dimensions of one dtype at the buffer's first byte. Filled by the caller
 * (zero it first: fields beyond ndim must be 0), or by px_buffer_format(). */
typedef struct px_format {
    uint32_t dtype;     /* PX_DTYPE_* */
    uint32_t ndim;      /* 0: untyped bytes (the default of every buffer); at most 8 */
    uint32_t fourcc;    /* optional pixel-format code, e.g. 'R','G','B','3'; 0 if none */
    uint32_t flags;     /* none defined yet: 0 */
    int64_t shape[8];   /* elements per dimension, >= 0 */
    int64_t strides[8]; /* bytes between elements of each dimension, >= 0 and a multiple of the
                           element size; all 0 means C-contiguous (row-major) */
} px_format_t;

/* Bytes of one element of `dtype`; 0 for an unknown dtype. */
PX_API size_t px_dtype_size(uint32_t dtype);
/* Gives this handle a format (clones made after keep it; slices are untyped bytes until given
 * one); ndim 0 makes it untyped again. PX_E_INVALID, changing nothing, unless every element lies
 * inside the buffer (overflow-safe) and the fields follow the rules above; the message names
 * the rule broken. Channels and streams carry the format with the buffer. Must not race with
 * other use of the same handle.
 * @param fmt  copied. */
PX_API px_status_t px_buffer_set_format(px_buffer_t *buf, const px_format_t *fmt);
/* Copies the buffer's format; an untyped buffer gives all zeros (ndim 0). Strides are as they
 * were set (all 0 for C-contiguous).
 * @param[out] out  the caller's struct, filled. */
PX_API px_status_t px_buffer_format(const px_buffer_t *buf, px_format_t *out);

/* ------------------------------------------------------------------------------------------ */
/* IPC                                                                                        */
/* ------------------------------------------------------------------------------------------ */
/* Low level: one fd over a connected AF_UNIX socket (SCM_RIGHTS).
 * @param socket_fd  borrowed for the call.
 * @param fd         borrowed: the caller keeps it (the peer receives a duplicate). */
PX_API px_status_t px_ipc_send_fd(int socket_fd, int fd);
/* Receives one fd (close-on-exec). Truncated control data is PX_E_PROTOCOL and closes any fd
 * that arrived; a message without an fd is PX_E_PROTOCOL; a closed peer is PX_E_CLOSED.
 * @param socket_fd     borrowed for the call.
 * @param[out] out_fd   owned: close it with close(); -1 on failure. */
PX_API px_status_t px_ipc_recv_fd(int socket_fd, int64_t timeout_ns, int *out_fd);

typedef struct px_channel px_channel_t;
typedef struct px_listener px_listener_t;

/* Two connected channel ends in this process, made for fork(). The child inherits both ends,
 * so each process must keep exactly one, and release the other right after the fork: the
 * parent keeps a and releases b, the child keeps b and releases a. A copy of an end left in
 * the wrong process holds that end open: the other side may then not see PX_E_CLOSED when its
 * peer exits, nor get back at once the slots it had lent to it.
 *
 *     px_channel_t *a, *b;
 *     if (px_channel_pair(&a, &b) != PX_OK) return -1;
 *     pid_t pid = fork();
 *     if (pid == 0) {             // child: keeps b
 *         px_channel_release(a);
 *         child_work(b);
 *         px_channel_release(b);
 *         _exit(0);
 *     }
 *     px_channel_release(b);      // parent: keeps a
 *     parent_work(a);
 *     px_channel_release(a);
 *
 * @param[out] a  owned: release with px_channel_release().
 * @param[out] b  owned: release with px_channel_release(). */
PX_API px_status_t px_channel_pair(px_channel_t **a, px_channel_t **b);
/* Adopts a connected AF_UNIX SOCK_SEQPACKET socket and runs the handshake (waits up to 10 s for
 * the peer).
 * @param socket_fd  consumed: the channel owns it from now on; on failure it is closed.
 * @param[out] out   owned: release with px_channel_release(). */
PX_API px_status_t px_channel_from_fd(int socket_fd, px_channel_t **out);
/* Listens on a socket path (file mode 0600). A stale socket file (no one listening) is
 * replaced; a live one is PX_E_BUSY; any other existing file is PX_E_INVALID.
 * @param path      borrowed for the call.
 * @param[out] out  owned: release with px_listener_release(). */
PX_API px_status_t px_listener_new(const char *path, px_listener_t **out);
/* The next connection, handshake done. Handshakes run side by side without blocking: a client
 * that stays silent (dropped after 10 s), sends garbage, hangs up or runs as another uid never
 * delays the call or makes it fail for the others; at most 64 are pending at once (the oldest
 * is dropped for a new one). With timeout 0 it only does what is ready and never blocks.
 * @param[out] out  owned: release with px_channel_release() (independently of the listener). */
PX_API px_status_t px_listener_accept(px_listener_t *listener, int64_t timeout_ns,
                                      px_channel_t **out);
/* Pollable: readable when accept may make progress (a new connection, a pending handshake's
 * data or hang-up, or a handshake whose time is up); accept(0) may then still answer
 * PX_E_WOULD_BLOCK. A listener holds 3 fds, and each pending handshake 2 more.
 * @return borrowed: valid while listener lives (never close it). nullable: -1 for NULL. */
PX_API int px_listener_fd(const px_listener_t *listener);
/* Closes the listener and, in the process that made it, removes its socket file (a forked
 * child releasing its copy leaves the file alone). Channels it accepted stay open.
 * @param listener  nullable: NULL does nothing. */
PX_API void px_listener_release(px_listener_t *listener);
/* Connects to a listener's socket path, handshake done.
 * @param path      borrowed for the call.
 * @param[out] out  owned: release with px_channel_release(). */
PX_API px_status_t px_channel_connect(const char *path, int64_t timeout_ns, px_channel_t **out);

/* Sends a buffer zero-copy: the first time its segment crosses this channel the segment's fd
 * (a read-only file description) goes over SCM_RIGHTS; after that only a small descriptor
 * does. PX_E_UNSUPPORTED for heap and mapped-file segments.
 * @param buf  borrowed: the caller keeps its handle and may release it at once (a slot stays
 *             out until the peer has released what it received). */
PX_API px_status_t px_channel_send(px_channel_t *ch, const px_buffer_t *buf);
/* As px_channel_send, but waits at most timeout_ns (same meaning as everywhere) while the peer
 * is too far behind to take another descriptor: PX_E_TIMEOUT / PX_E_WOULD_BLOCK then.
 * @param buf  borrowed: as for px_channel_send(). */
PX_API px_status_t px_channel_send_timeout(px_channel_t *ch, const px_buffer_t *buf,
                                           int64_t timeout_ns);
/* Receives a buffer that points straight into the sender's memory, mapped read-only, with its
 * metadata intact (of `user`, the user_len bytes in use; the rest read as zero). Malformed or
 * hostile input is PX_E_PROTOCOL (the connection is dropped).
 * @param[out] out  owned: release with px_buffer_release(); it stays valid after ch is
 *                  released. */
PX_API px_status_t px_channel_recv(px_channel_t *ch, int64_t timeout_ns, px_buffer_t **out);
/* Pollable: readable when recv may not block. The fd (an epoll set) is made at the first call,
 * so an end that is never polled costs no fd for it.
 * @return borrowed: valid while ch lives (never close it). nullable: -1 for NULL, or when the
 *         process is out of fds at the first call (px_last_error_message() says so). */
PX_API int px_channel_fd(const px_channel_t *ch);
/* How long px_channel_recv busy-polls for the next buffer before it sleeps: 0 sleeps at once
 * (blocking mode: no core spent waiting), < 0 never sleeps (spin mode: the lowest latency, one
 * core busy while waiting), > 0 that many ns (the default, PX_CHANNEL_DEFAULT_SPIN_NS). */
#define PX_CHANNEL_DEFAULT_SPIN_NS 20000
PX_API px_status_t px_channel_set_spin_ns(px_channel_t *ch, int64_t spin_ns);
/* Closes this end; the peer sees PX_E_CLOSED once no process holds this end (see
 * px_channel_pair). Buffers received through it stay valid.
 * @param ch  nullable: NULL does nothing. */
PX_API void px_channel_release(px_channel_t *ch);

/* Counters of one channel end (for monitoring and tests). */
typedef struct px_channel_stats {
    uint64_t buffers_sent;
    uint64_t buffers_received;
    uint64_t segments_registered;  /* segments whose fd this end has sent */
    uint64_t slots_lent;           /* pool slots sent to the peer and not yet returned */
    uint64_t returns_accepted;     /* slot returns from the peer that matched a loan */
    uint64_t returns_refused;      /* returns of slots never lent, or returned twice */
    uint64_t slots_reclaimed;      /* slots taken back because the peer went away */
    uint64_t peer_pid;             /* peer process at the handshake (pair(): the creator) */
} px_channel_stats_t;

/* @param[out] out  the caller's struct, filled. */
PX_API px_status_t px_channel_get_stats(const px_channel_t *ch, px_channel_stats_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Streams: publish-subscribe by name (one publisher, any number of subscribers)              */
/* ------------------------------------------------------------------------------------------ */
/* Built on channels: every guarantee of channels holds per subscriber (zero-copy, read-only
 * mapping, validated returns, slots reclaimed when a subscriber dies).
 *
 * Names: a name without '/' ([A-Za-z0-9._-], 1-100 characters, not starting with '.') lives in
 * the runtime directory: $PARALLAX_RUNTIME_DIR (used as given, never created), else
 * $XDG_RUNTIME_DIR/parallax, else /tmp/parallax-<uid> (both created mode 0700 if missing).
 * Whichever is used must be a directory owned by this uid and not writable by group or others,
 * else PX_E_PERMISSION. A name with '/' is a socket path used as is. A name whose socket path
 * would not fit sun_path (107 bytes), or anything else malformed, is PX_E_INVALID with a
 * message saying which rule it broke. Beside its socket a stream keeps a small stats page,
 * "." + the socket's file name + ".stats" (so no stream name collides with it).
 *
 * No library thread is started: subscribers are admitted (and the description sent to them)
 * inside px_publisher_publish and px_publisher_poll. A publisher that goes a while without
 * publishing polls px_publisher_fd or calls px_publisher_poll. Slot returns need neither. */
typedef struct px_publisher px_publisher_t;
typedef struct px_subscriber px_subscriber_t;

/* What publish does for a subscriber with no credit (max_in_flight held or queued). */
typedef uint32_t px_slow_policy_t;
#define PX_SLOW_DROP 0       /* that subscriber misses the frame (counted on both sides) */
#define PX_SLOW_BLOCK 1      /* wait up to block_timeout_ns for room, then PX_E_TIMEOUT */
#define PX_SLOW_DISCONNECT 2 /* that subscriber is dropped (it drains, then PX_E_CLOSED) */

/* Options of a publisher. Set struct_size and the defaults with px_publisher_options_init(),
 * then change fields; the library reads only the fields struct_size covers. */
typedef struct px_publisher_options {
    uint32_t struct_size;      /* sizeof(px_publisher_options_t), set by the init function */
    uint32_t slow_policy;      /* PX_SLOW_*; default PX_SLOW_DROP */
    uint32_t max_subscribers;  /* 1..1024; default 64: one more gets PX_E_BUSY */
    uint32_t max_in_flight;    /* 1..128; default 8: what one subscriber holds + has queued */
    uint32_t history;          /* 0..1024; default 0: latest frames a joining subscriber gets
                                  first (at most max_in_flight of them); they stay held */
    uint32_t reserved;         /* 0 */
    int64_t block_timeout_ns;  /* PX_SLOW_BLOCK's wait (< 0: forever); default 1 s */
} px_publisher_options_t;

/* Sets struct_size and the defaults.
 * @param opts  the caller's struct, filled; NULL does nothing. */
PX_API void px_publisher_options_init(px_publisher_options_t *opts);

/* Starts publishing stream `name`. A live publisher of that name is PX_E_BUSY; a stale one
 * (its process died) is replaced at once. Out-of-range options are PX_E_INVALID naming the
 * field; a struct_size smaller than the first field's end, or larger than this library's
 * struct with non-zero bytes beyond it, is PX_E_INVALID.
 * @param name      borrowed for the call.
 * @param opts      nullable: copied; NULL means the defaults.
 * @param[out] out  owned: release with px_publisher_release(). */
PX_API px_status_t px_publisher_new(const char *name, const px_publisher_options_t *opts,
                                    px_publisher_t **out);
/* Publishes `buf` to every admitted subscriber (zero-copy: its slot is lent once to each and
 * returns when the publisher and every subscriber have released it, or died). Never blocked
 * by a subscriber joining, lagging (PX_SLOW_DROP, PX_SLOW_DISCONNECT) or dying. With
 * PX_SLOW_BLOCK, waits up to block_timeout_ns for room at every subscriber, then answers
 * PX_E_TIMEOUT having delivered to those with room. PX_E_UNSUPPORTED for heap and mapped-file
 * buffers (subscribers could not map them).
 * @param buf  borrowed: the caller keeps its handle and may release it at once. */
PX_API px_status_t px_publisher_publish(px_publisher_t *pub, const px_buffer_t *buf);
/* Subscribers admitted now (0 for NULL). */
PX_API size_t px_publisher_subscriber_count(const px_publisher_t *pub);
/* Pollable: readable when the publisher has housekeeping to do without a publish (a joining
 * subscriber, a departed one); px_publisher_poll() does it.
 * @return borrowed: valid while pub lives (never close it). nullable: -1 for NULL. */
PX_API int px_publisher_fd(const px_publisher_t *pub);
/* Waits up to timeout_ns for housekeeping (joins, departures), then does it: PX_OK when there
 * was some, PX_E_WOULD_BLOCK / PX_E_TIMEOUT when none came. */
PX_API px_status_t px_publisher_poll(px_publisher_t *pub, int64_t timeout_ns);
/* Sets the stream's description: an opaque text of at most 64 KiB (e.g. GStreamer caps,
 * JSON). Every subscriber gets the current one when it joins and each change in order with
 * the frames (it is in force for the frames published after it).
 * @param utf8  borrowed for the call (copied); NUL-terminated. */
PX_API px_status_t px_publisher_set_description(px_publisher_t *pub, const char *utf8);
/* Advances the stream's numbering by `count` without sending anything, for a relay whose
 * source lost frames (e.g. a network bridge): each subscriber's next frame shows the gap, so
 * its `missed` grows by `count` (and so does what `parallax hz` shows as missed). A subscriber
 * that joins later sees the gap only between history frames replayed to it. No publisher
 * counter changes: `published` counts frames published and `dropped` frames a subscriber had
 * no room for, neither of which these are. 0 does nothing; a count that would take the
 * stream's number past UINT64_MAX is PX_E_INVALID (so is a publish once it is UINT64_MAX). */
PX_API px_status_t px_publisher_skip(px_publisher_t *pub, uint64_t count);
/* Stops publishing: subscribers receive what was sent to them, then PX_E_CLOSED; buffers they
 * hold stay valid. The name is free again at once.
 * @param pub  nullable: NULL does nothing. */
PX_API void px_publisher_release(px_publisher_t *pub);

/* Subscribes to stream `name`, waiting up to timeout_ns for its publisher to appear and admit
 * this subscriber (start order does not matter; the publisher admits inside its publish and
 * poll calls). PX_E_BUSY when the publisher is full (max_subscribers).
 * @param name      borrowed for the call.
 * @param[out] out  owned: release with px_subscriber_release(). */
PX_API px_status_t px_subscriber_new(const char *name, int64_t timeout_ns,
                                     px_subscriber_t **out);
/* The next frame: first the publisher's history (if any), then live frames, in order; frames
 * the publisher had no room for are skipped (and counted in missed). PX_E_CLOSED once the
 * publisher is gone and everything it sent has been received.
 * @param[out] out  owned: release with px_buffer_release(); read-only memory; it stays valid
 *                  after the subscriber and the publisher are gone. */
PX_API px_status_t px_subscriber_recv(px_subscriber_t *sub, int64_t timeout_ns,
                                      px_buffer_t **out);
/* The description in force for the last frame received (the one set before it was
 * published); before the first frame, the one current at join; "" when none was ever set.
 * Copies it with its NUL into dst; PX_E_INVALID with *len set when cap is too small.
 * @param dst       nullable when cap is 0 (to learn the length).
 * @param[out] len  the description's length without the NUL. */
PX_API px_status_t px_subscriber_description(const px_subscriber_t *sub, char *dst, size_t cap,
                                             size_t *len);
/* A number that changes whenever px_subscriber_description may answer with another text: 1
 * from the join on, one more each time a received frame brings a description record in force
 * (a description set again with the same text counts too). Compare it with the last value seen
 * instead of copying the text at every frame. Cheap (one atomic load, no lock); 0 for NULL. */
PX_API uint64_t px_subscriber_description_version(const px_subscriber_t *sub);
/* Pollable: readable when recv may not block (it may still answer PX_E_WOULD_BLOCK after
 * taking a description record).
 * @return borrowed: valid while sub lives (never close it). nullable: -1 for NULL or when the
 *         process is out of fds (see px_last_error_message()). */
PX_API int px_subscriber_fd(const px_subscriber_t *sub);
/* How long px_subscriber_recv busy-polls for the next frame before it sleeps, as for a
 * channel: 0 sleeps at once (no core spent waiting), < 0 never sleeps (spin mode: the lowest
 * latency, one core busy while waiting), > 0 that many ns (the default,
 * PX_CHANNEL_DEFAULT_SPIN_NS), except while the stream has more processes (subscribers and
 * publisher) than this thread may run on CPUs: then it sleeps at once, since its spin would
 * hold a CPU that a subscriber woken by the same frame waits for. PX_E_INVALID for NULL. */
PX_API px_status_t px_subscriber_set_spin_ns(px_subscriber_t *sub, int64_t spin_ns);
/* Leaves the stream; buffers received stay valid.
 * @param sub  nullable: NULL does nothing. */
PX_API void px_subscriber_release(px_subscriber_t *sub);

/* Counters of a publisher. */
typedef struct px_publisher_stats {
    uint64_t published;         /* frames published */
    uint64_t subscribers;       /* admitted now */
    uint64_t joined;            /* admitted since the start */
    uint64_t departed;          /* left, died or were disconnected since the start */
    uint64_t dropped;           /* frames a subscriber missed for want of room */
    uint64_t disconnected_slow; /* subscribers dropped by PX_SLOW_DISCONNECT */
    uint64_t slots_lent;        /* buffers subscribers hold or have queued now */
} px_publisher_stats_t;

/* Counters of a subscriber. */
typedef struct px_subscriber_stats {
    uint64_t received;      /* frames received */
    uint64_t missed;        /* frames skipped (gaps in the stream's numbering) */
    uint64_t publisher_pid; /* the publisher's process */
} px_subscriber_stats_t;

/* @param[out] out  the caller's struct, filled. */
PX_API px_status_t px_publisher_get_stats(const px_publisher_t *pub, px_publisher_stats_t *out);
/* @param[out] out  the caller's struct, filled. */
PX_API px_status_t px_subscriber_get_stats(const px_subscriber_t *sub,
                                           px_subscriber_stats_t *out);
/* The counters of the live publisher of `name`, in any process of this user, whether or not
 * it is publishing or polling (read from the page it keeps current: the counters as of its last
 * publish or poll; slots_lent and each subscriber's in_flight as of the last time it read the
 * returns, at most a millisecond before that while it publishes: never fewer than now).
 * px_publisher_get_stats reads the returns first. No live publisher of that name is PX_E_CLOSED
 * at once.
 * @param name      borrowed for the call.
 * @param[out] out  the caller's struct, filled. */
PX_API px_status_t px_stream_stats(const char *name, int64_t timeout_ns,
                                   px_publisher_stats_t *out);

/* Called once per live stream by px_stream_list.
 * @param name  borrowed for the call. */
typedef void (*px_stream_list_fn)(const char *name, void *ctx);
/* Calls fn for every live stream in the runtime directory (stale sockets are skipped, not
 * removed; streams named by a socket path elsewhere are not listed).
 * @param ctx  nullable: passed to fn as is. */
PX_API px_status_t px_stream_list(px_stream_list_fn fn, void *ctx);

/* One admitted subscriber of a stream, as its publisher knows it (px_stream_subscribers). */
typedef struct px_stream_subscriber_info {
    uint64_t pid;       /* the subscriber's process (from the connection's credentials) */
    uint64_t in_flight; /* buffers it holds plus those queued for it now (max_in_flight bounds
                           this) */
    uint64_t delivered; /* frames sent to it since it joined, history included */
    uint64_t dropped;   /* frames it had no room for: what its own `missed` counts once a later
                           frame reaches it */
} px_stream_subscriber_info_t;

/* The admitted subscribers of the live publisher of `name`, in any process of this user, read
 * like px_stream_stats from the page the publisher keeps current (as of its last publish or
 * poll). Copies the first min(cap, *count) of them into out, in the order they joined; *count is
 * how many there are (call again with a larger array when it exceeds cap). No live publisher of
 * that name is PX_E_CLOSED at once; PX_E_UNSUPPORTED when its library keeps no such table.
 * @param name        borrowed for the call.
 * @param out         nullable when cap is 0 (to learn the count): the caller's array.
 * @param[out] count  the number of subscribers admitted. */
PX_API px_status_t px_stream_subscribers(const char *name, int64_t timeout_ns,
                                         px_stream_subscriber_info_t *out, size_t cap,
                                         size_t *count);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PARALLAX_H */
