// SPDX-License-Identifier: Apache-2.0 OR MIT
/*
 * libparallax — header-only C++17 RAII wrapper over the C API (parallax.h). Nothing here
 * reaches past the C functions: it only manages references and turns failures into exceptions.
 *
 *   parallax::Segment seg = parallax::Segment::shm(1 << 20, "frames");
 *   parallax::Pool pool(seg, 64 << 10);
 *   parallax::Slot slot = pool.loan();
 *   std::memcpy(slot.data(), "hello", 5);
 *   parallax::Buffer frame = std::move(slot).into_buffer(5, parallax::Metadata(1));
 *
 * Ownership: Segment, Pool and Buffer are refcounted handles. Copying a Segment or Pool adds a
 * reference; copying a Buffer is px_buffer_clone (O(1), same memory, its own metadata). Slot,
 * Channel, Listener, Publisher and Subscriber are move-only. A moved-from object is empty
 * (`!obj`); calling anything but destruction, assignment or `operator bool` on an empty object
 * is a programming error (the C API answers NULL/0 or PX_E_INVALID, which throws).
 *
 * Errors: every failing call throws parallax::Error, carrying the status code and the
 * library's message (which names the function and what was wrong).
 *
 * Threads: every call may be made from any thread, as in the C API; a Slot has one writer at a
 * time, and Buffer::set_metadata must not race with other use of the same Buffer object.
 */
#ifndef PARALLAX_HPP
#define PARALLAX_HPP

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <ratio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>
#if __cplusplus >= 202002L && __has_include(<span>)
#include <span>
#endif

#include "parallax/parallax.h"

/// Defined to 1 when std::span is available (C++20): Buffer::as_span and as_mutable_span.
#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
#define PARALLAX_HAS_SPAN 1
#else
#define PARALLAX_HAS_SPAN 0
#endif

namespace parallax {

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/// The PX_E_* codes as a scoped enum (values are the C codes).
enum class Status : px_status_t {
    ok = PX_OK,
    invalid = PX_E_INVALID,
    nomem = PX_E_NOMEM,
    unsupported = PX_E_UNSUPPORTED,
    io = PX_E_IO,
    would_block = PX_E_WOULD_BLOCK,
    timeout = PX_E_TIMEOUT,
    closed = PX_E_CLOSED,
    protocol = PX_E_PROTOCOL,
    permission = PX_E_PERMISSION,
    busy = PX_E_BUSY,
    internal = PX_E_INTERNAL,
};

/// The library's name of a status, e.g. "PX_E_TIMEOUT".
inline const char *status_name(Status s) noexcept {
    return px_status_string(static_cast<px_status_t>(s));
}

/// A failed call: the status and the library's message. what() is "<message> (<PX_E_NAME>)".
class Error : public std::runtime_error {
public:
    Error(px_status_t code, std::string message)
        : std::runtime_error(message + " (" + px_status_string(code) + ")"), code_(code),
          message_(std::move(message)) {}
    Status status() const noexcept { return static_cast<Status>(code_); }
    px_status_t code() const noexcept { return code_; }
    const std::string &message() const noexcept { return message_; }

private:
    px_status_t code_;
    std::string message_;
};

namespace detail {
/// Throws the error a C call just reported on this thread.
inline void check(px_status_t rc) {
    if (rc != PX_OK)
        throw Error(rc, px_last_error_message());
}

/// A std::chrono duration as the C API's nanoseconds, where -1 is forever: any negative
/// duration, and any longer than INT64_MAX ns (about 292 years), is -1, never an overflowed or
/// saturated finite wait; a positive fraction of a nanosecond is 1 (a wait never becomes a
/// poll). A NaN throws Status::invalid.
template <class Rep, class Period> int64_t to_ns(std::chrono::duration<Rep, Period> d) {
    using ns_per_tick = std::ratio_divide<Period, std::nano>;
    if constexpr (std::is_integral_v<Rep> && ns_per_tick::den == 1) {
        // Whole nanoseconds per tick (ns, us, ms, s, min, h...): exact, compared before the
        // multiplication so that it cannot overflow.
        if constexpr (std::is_signed_v<Rep>) {
            if (d.count() < 0)
                return -1;
        }
        using Wide = std::common_type_t<Rep, std::intmax_t>;
        if (static_cast<Wide>(d.count()) > static_cast<Wide>(INT64_MAX / ns_per_tick::num))
            return -1;
        return static_cast<int64_t>(d.count()) * static_cast<int64_t>(ns_per_tick::num);
    } else {
        // Floating point, or ticks shorter than (or not a whole number of) nanoseconds.
        const long double ns = std::ceil(std::chrono::duration<long double, std::nano>(d).count());
        if (std::isnan(ns))
            throw Error(PX_E_INVALID, "timeout is NaN");
        if (ns < 0 || ns >= 9223372036854775808.0L) // 2^63: past INT64_MAX
            return -1;
        return static_cast<int64_t>(ns);
    }
}
} // namespace detail

/* ------------------------------------------------------------------------------------------ */
/* Version and timeouts                                                                       */
/* ------------------------------------------------------------------------------------------ */

/// (major << 16) | (minor << 8) | patch of the loaded library (compare with PX_VERSION).
inline uint32_t version() noexcept { return px_version(); }
inline const char *version_string() noexcept { return px_version_string(); }

/// Timeouts take std::chrono durations: any negative value waits forever, zero polls
/// (Status::would_block if nothing is ready), a positive value waits up to that long
/// (Status::timeout). A duration longer than INT64_MAX ns (about 292 years, e.g.
/// std::chrono::hours::max()) waits forever too.
inline constexpr std::chrono::nanoseconds wait_forever{-1};
inline constexpr std::chrono::nanoseconds no_wait{0};

/// A timeout parameter: made from any std::chrono duration (implicitly, so that `10s`,
/// `wait_forever` or `no_wait` can be passed as they are) through detail::to_ns.
class Timeout {
public:
    template <class Rep, class Period>
    Timeout(std::chrono::duration<Rep, Period> d) : ns_(detail::to_ns(d)) {} // NOLINT: implicit
    /// The C API's timeout_ns: -1 forever, 0 poll, > 0 wait.
    int64_t ns() const noexcept { return ns_; }

private:
    int64_t ns_;
};

/* ------------------------------------------------------------------------------------------ */
/* Metadata                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/// px_metadata_t with px_metadata_init defaults (times PX_TIME_NONE, the rest zero); its
/// fields are public, as in C.
struct Metadata : px_metadata_t {
    Metadata() noexcept : px_metadata_t{} { px_metadata_init(this); }
    explicit Metadata(uint64_t seq) noexcept : Metadata() { sequence = seq; }
    Metadata(const px_metadata_t &m) noexcept : px_metadata_t(m) {} // NOLINT: implicit on purpose

    static constexpr bool is_time(int64_t t) noexcept { return t != PX_TIME_NONE; }
    bool has_pts() const noexcept { return is_time(pts_ns); }
    bool has_dts() const noexcept { return is_time(dts_ns); }
    bool has_duration() const noexcept { return is_time(duration_ns); }

    /// The user bytes in use.
    std::string_view user_data() const noexcept {
        return {reinterpret_cast<const char *>(user),
                std::min<size_t>(user_len, PX_METADATA_USER_MAX)};
    }
    /// Sets the user bytes; more than PX_METADATA_USER_MAX (64) throws Status::invalid and
    /// changes nothing.
    void set_user_data(std::string_view bytes) {
        if (bytes.size() > PX_METADATA_USER_MAX)
            throw Error(PX_E_INVALID, "Metadata::set_user_data: " + std::to_string(bytes.size()) +
                                          " bytes exceed the " +
                                          std::to_string(PX_METADATA_USER_MAX) + " available");
        std::memset(user, 0, sizeof user);
        if (!bytes.empty())
            std::memcpy(user, bytes.data(), bytes.size());
        user_len = static_cast<uint32_t>(bytes.size());
    }
};

/* ------------------------------------------------------------------------------------------ */
/* Segments                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/// A refcounted mapped region (px_segment_t). Copies share the mapping.
class Segment {
public:
    Segment() noexcept = default;
    /// Adopts one reference to `seg` (as returned by a px_segment_* constructor).
    explicit Segment(px_segment_t *seg) noexcept : h_(seg) {}
    /// A new reference to a segment borrowed from C (e.g. px_buffer_segment).
    static Segment retain(px_segment_t *seg) noexcept { return Segment(px_segment_retain(seg)); }

    /// Private, zero-filled memory (not shareable).
    static Segment heap(size_t size) {
        px_segment_t *s = nullptr;
        detail::check(px_segment_heap_new(size, &s));
        return Segment(s);
    }
    /// memfd shared memory, sealed against resizing; `name` is a debugging label.
    static Segment shm(size_t size, const std::string &name = {}) {
        px_segment_t *s = nullptr;
        detail::check(px_segment_shm_new(name.empty() ? nullptr : name.c_str(), size, &s));
        return Segment(s);
    }
    /// Maps `size` bytes of a shared-memory fd from another process; the caller keeps `fd`.
    /// `flags`: PX_MAP_READONLY, PX_MAP_ALLOW_UNSEALED.
    static Segment from_fd(int fd, size_t size, uint32_t flags = 0) {
        px_segment_t *s = nullptr;
        detail::check(px_segment_shm_from_fd(fd, size, flags, &s));
        return Segment(s);
    }
    /// Huge pages (PX_HUGE_PAGE_2MB / PX_HUGE_PAGE_1GB); with `fallback`, normal shared pages
    /// when none are reserved (then memory_type() is PX_MEMORY_SHARED).
    static Segment hugepage(uint32_t page_size, size_t size, bool fallback) {
        px_segment_t *s = nullptr;
        detail::check(
            px_segment_hugepage_new(page_size, size, fallback ? PX_HUGEPAGE_FALLBACK : 0u, &s));
        return Segment(s);
    }
    /// A new file (mode 0600) mapped read-write; an existing path is an error.
    static Segment file_create(const std::string &path, size_t size) {
        px_segment_t *s = nullptr;
        detail::check(px_segment_file_create(path.c_str(), size, &s));
        return Segment(s);
    }
    static Segment file_open(const std::string &path) {
        px_segment_t *s = nullptr;
        detail::check(px_segment_file_open(path.c_str(), &s));
        return Segment(s);
    }
    static Segment file_open_readonly(const std::string &path) {
        px_segment_t *s = nullptr;
        detail::check(px_segment_file_open_readonly(path.c_str(), &s));
        return Segment(s);
    }

    Segment(const Segment &o) noexcept : h_(px_segment_retain(o.h_)) {}
    Segment(Segment &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Segment &operator=(Segment o) noexcept {
        std::swap(h_, o.h_);
        return *this;
    }
    ~Segment() { px_segment_release(h_); }

    const std::byte *data() const noexcept {
        return static_cast<const std::byte *>(px_segment_ptr(h_));
    }
    /// nullptr when the mapping is read-only.
    std::byte *mutable_data() const noexcept {
        return static_cast<std::byte *>(px_segment_mut_ptr(h_));
    }
    size_t size() const noexcept { return px_segment_len(h_); }
    bool is_readonly() const noexcept { return px_segment_is_readonly(h_) != 0; }
    px_memory_type_t memory_type() const noexcept { return px_segment_memory_type(h_); }
    size_t page_size() const noexcept { return px_segment_page_size(h_); }
    /// fd and size to share the segment (the fd stays owned by the segment).
    px_ipc_handle_t ipc_handle() const {
        px_ipc_handle_t h{};
        detail::check(px_segment_ipc_handle(h_, &h));
        return h;
    }
    void flush() const { detail::check(px_segment_flush(h_)); }
    /// Copies [offset, offset + len) into `dst`. For a mapped file (or an unsealed fd) it reads
    /// through the file, so a file truncated by another process throws Status::io instead of
    /// raising SIGBUS; out of range throws Status::invalid.
    void read(size_t offset, void *dst, size_t len) const {
        detail::check(px_segment_read(h_, offset, dst, len));
    }

    px_segment_t *get() const noexcept { return h_; }
    /// Gives up this reference to the caller (release it with px_segment_release).
    px_segment_t *release() noexcept { return std::exchange(h_, nullptr); }
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    px_segment_t *h_ = nullptr;
};

/* ------------------------------------------------------------------------------------------ */
/* Formats                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/// The element types of a typed buffer (values are the C API's PX_DTYPE_*).
enum class Dtype : uint32_t {
    u8 = PX_DTYPE_U8,
    i8 = PX_DTYPE_I8,
    u16 = PX_DTYPE_U16,
    i16 = PX_DTYPE_I16,
    u32 = PX_DTYPE_U32,
    i32 = PX_DTYPE_I32,
    u64 = PX_DTYPE_U64,
    i64 = PX_DTYPE_I64,
    f16 = PX_DTYPE_F16,
    bf16 = PX_DTYPE_BF16,
    f32 = PX_DTYPE_F32,
    f64 = PX_DTYPE_F64,
};

/// Bytes of one element (px_dtype_size); 0 for a dtype the library does not know.
inline size_t dtype_size(Dtype d) noexcept { return px_dtype_size(static_cast<uint32_t>(d)); }

/// "F32" and the like, for messages; "unknown" for a code the wrapper does not know.
inline const char *dtype_name(uint32_t dtype) noexcept {
    static const char *const names[] = {"U8",  "I8",  "U16", "I16",  "U32", "I32",
                                        "U64", "I64", "F16", "BF16", "F32", "F64"};
    return dtype >= PX_DTYPE_U8 && dtype <= PX_DTYPE_F64 ? names[dtype - PX_DTYPE_U8] : "unknown";
}

/// A fourcc pixel-format code, a | b << 8 | c << 16 | d << 24 (V4L2 and DRM), e.g.
/// fourcc("RGB3").
constexpr uint32_t fourcc(const char (&code)[5]) noexcept {
    return static_cast<uint32_t>(static_cast<unsigned char>(code[0])) |
           static_cast<uint32_t>(static_cast<unsigned char>(code[1])) << 8 |
           static_cast<uint32_t>(static_cast<unsigned char>(code[2])) << 16 |
           static_cast<uint32_t>(static_cast<unsigned char>(code[3])) << 24;
}

namespace detail {
/// The dtype whose elements are T (0: none; the typed views exist only for these types).
template <class T> struct dtype_of : std::integral_constant<uint32_t, 0> {};
template <> struct dtype_of<uint8_t> : std::integral_constant<uint32_t, PX_DTYPE_U8> {};
template <> struct dtype_of<int8_t> : std::integral_constant<uint32_t, PX_DTYPE_I8> {};
template <> struct dtype_of<uint16_t> : std::integral_constant<uint32_t, PX_DTYPE_U16> {};
template <> struct dtype_of<int16_t> : std::integral_constant<uint32_t, PX_DTYPE_I16> {};
template <> struct dtype_of<uint32_t> : std::integral_constant<uint32_t, PX_DTYPE_U32> {};
template <> struct dtype_of<int32_t> : std::integral_constant<uint32_t, PX_DTYPE_I32> {};
template <> struct dtype_of<uint64_t> : std::integral_constant<uint32_t, PX_DTYPE_U64> {};
template <> struct dtype_of<int64_t> : std::integral_constant<uint32_t, PX_DTYPE_I64> {};
template <> struct dtype_of<float> : std::integral_constant<uint32_t, PX_DTYPE_F32> {};
template <> struct dtype_of<double> : std::integral_constant<uint32_t, PX_DTYPE_F64> {};

/// Whether a buffer of `dtype` can be viewed as T: its own dtype, and uint16_t also views F16
/// and BF16 as their raw bits (C++17 has no half-float type).
template <class T> constexpr bool views(uint32_t dtype) noexcept {
    if constexpr (std::is_same_v<T, uint16_t>)
        return dtype == PX_DTYPE_U16 || dtype == PX_DTYPE_F16 || dtype == PX_DTYPE_BF16;
    else
        return dtype == dtype_of<T>::value;
}
} // namespace detail

/// px_format_t: what a buffer's bytes are (an array of one dtype, 1 to 8 dimensions, byte
/// strides, a fourcc). Its fields are public, as in C; a default Format is untyped (ndim 0).
/// Whether it fits a buffer is checked by Buffer::set_format, which throws the library's
/// message naming the rule broken.
///
///     auto rgb = parallax::Format::contiguous(parallax::Dtype::u8, {1080, 1920, 3},
///                                              parallax::fourcc("RGB3"));
///     frame.set_format(rgb);
struct Format : px_format_t {
    Format() noexcept : px_format_t{} {}
    Format(const px_format_t &f) noexcept : px_format_t(f) {} // NOLINT: implicit on purpose

    /// A C-contiguous (row-major) array: strides all 0, the C API's word for it. More than 8
    /// dimensions, or none, throws Status::invalid.
    static Format contiguous(Dtype type, std::initializer_list<int64_t> shape_,
                             uint32_t fourcc_ = 0) {
        return contiguous(type, shape_.begin(), shape_.size(), fourcc_);
    }
    static Format contiguous(Dtype type, const int64_t *shape_, size_t ndim_,
                             uint32_t fourcc_ = 0) {
        return make("Format::contiguous", type, shape_, nullptr, ndim_, fourcc_);
    }
    /// An array with explicit byte strides (one per dimension), e.g. padded rows.
    static Format strided(Dtype type, std::initializer_list<int64_t> shape_,
                          std::initializer_list<int64_t> strides_, uint32_t fourcc_ = 0) {
        if (shape_.size() != strides_.size())
            throw Error(PX_E_INVALID, "Format::strided: " + std::to_string(strides_.size()) +
                                          " strides for " + std::to_string(shape_.size()) +
                                          " dimensions");
        return make("Format::strided", type, shape_.begin(), strides_.begin(), shape_.size(),
                    fourcc_);
    }

    /// Whether this describes a typed array (ndim 1 to 8) rather than untyped bytes.
    bool typed() const noexcept { return ndim != 0; }
    Dtype type() const noexcept { return static_cast<Dtype>(dtype); }
    /// The elements (product of the shape); nullopt when a dimension is negative or the
    /// product overflows size_t.
    std::optional<size_t> elements() const noexcept {
        size_t n = 1;
        for (uint32_t d = 0; d < ndim && d < PX_FORMAT_MAX_DIMS; ++d) {
            if (shape[d] < 0)
                return std::nullopt;
            const auto extent = static_cast<uint64_t>(shape[d]);
            if (extent != 0 && n > SIZE_MAX / extent)
                return std::nullopt;
            n *= static_cast<size_t>(extent);
        }
        return n;
    }
    /// Whether the elements are packed in row-major order (strides all 0, or equal to the
    /// packed ones). As in numpy, the stride of a dimension of extent 1 plays no part and an
    /// empty array is contiguous.
    bool is_contiguous() const noexcept {
        const uint32_t n = std::min<uint32_t>(ndim, PX_FORMAT_MAX_DIMS);
        if (std::all_of(strides, strides + n, [](int64_t s) { return s == 0; }) ||
            std::any_of(shape, shape + n, [](int64_t e) { return e == 0; }))
            return true;
        int64_t step = static_cast<int64_t>(px_dtype_size(dtype));
        for (uint32_t d = n; d-- > 0;) {
            if (shape[d] != 1 && strides[d] != step)
                return false;
            if (shape[d] > 0 && step > INT64_MAX / shape[d])
                return false; // larger than any buffer
            step *= shape[d];
        }
        return true;
    }

private:
    static Format make(const char *what, Dtype type, const int64_t *shape_,
                       const int64_t *strides_, size_t ndim_, uint32_t fourcc_) {
        if (ndim_ == 0 || ndim_ > PX_FORMAT_MAX_DIMS)
            throw Error(PX_E_INVALID, std::string(what) + ": " + std::to_string(ndim_) +
                                          " dimensions; a format has 1 to " +
                                          std::to_string(PX_FORMAT_MAX_DIMS) +
                                          " (Buffer::clear_format makes a buffer untyped)");
        Format f;
        f.dtype = static_cast<uint32_t>(type);
        f.ndim = static_cast<uint32_t>(ndim_);
        f.fourcc = fourcc_;
        std::copy(shape_, shape_ + ndim_, f.shape);
        if (strides_)
            std::copy(strides_, strides_ + ndim_, f.strides);
        return f;
    }
};

namespace detail {
/// How many T a view of the `len` bytes at `data` holds, or throws Status::invalid naming why.
/// Typed: the format's dtype must be one T views, the format contiguous, its elements inside
/// the bytes. Untyped: all the bytes, a whole number of T. Either way, `data` aligned for T.
template <class T>
size_t typed_count(const char *what, const Format &f, const std::byte *data, size_t len) {
    static_assert(dtype_of<T>::value != 0,
                  "typed views exist for (u)int8..64_t, float and double");
    const auto fail = [what](const std::string &why) {
        throw Error(PX_E_INVALID, std::string(what) + ": " + why);
    };
    size_t count = 0;
    if (f.typed()) {
        if (!views<T>(f.dtype))
            fail(std::string("the buffer's dtype is ") + dtype_name(f.dtype) + ", which a " +
                 std::to_string(sizeof(T)) + "-byte " + dtype_name(dtype_of<T>::value) +
                 " view does not read");
        if (!f.is_contiguous())
            fail("the format is not contiguous (explicit strides); a span can only view "
                 "packed row-major elements");
        const std::optional<size_t> n = f.elements();
        if (!n || *n > len / sizeof(T))
            fail("the format's elements do not fit the buffer's " + std::to_string(len) +
                 " bytes");
        count = *n;
    } else {
        if (len % sizeof(T) != 0)
            fail(std::to_string(len) + " bytes are not a whole number of " +
                 std::to_string(sizeof(T)) + "-byte elements");
        count = len / sizeof(T);
    }
    if (count != 0 && reinterpret_cast<uintptr_t>(data) % alignof(T) != 0)
        fail("the data is not aligned to " + std::to_string(alignof(T)) + " bytes");
    return count;
}
} // namespace detail

/* ------------------------------------------------------------------------------------------ */
/* Buffers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/// A range of a segment plus metadata (px_buffer_t). Copying is px_buffer_clone: O(1), same
/// memory, its own metadata.
class Buffer {
public:
    Buffer() noexcept = default;
    /// Adopts a px_buffer_t the caller owns.
    explicit Buffer(px_buffer_t *buf) noexcept : h_(buf) {}
    /// [offset, offset + len) of `seg` (checked, overflow-safe); keeps the segment alive.
    Buffer(const Segment &seg, size_t offset, size_t len, const Metadata &meta = Metadata()) {
        detail::check(px_buffer_new(seg.get(), offset, len, &meta, &h_));
    }
    /// The whole segment.
    static Buffer from_segment(const Segment &seg, const Metadata &meta = Metadata()) {
        px_buffer_t *b = nullptr;
        detail::check(px_buffer_from_segment(seg.get(), &meta, &b));
        return Buffer(b);
    }

    Buffer(const Buffer &o) : h_(nullptr) {
        if (o.h_)
            detail::check(px_buffer_clone(o.h_, &h_));
    }
    Buffer(Buffer &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Buffer &operator=(const Buffer &o) {
        if (this != &o)
            *this = Buffer(o);
        return *this;
    }
    Buffer &operator=(Buffer &&o) noexcept {
        std::swap(h_, o.h_);
        return *this;
    }
    ~Buffer() { px_buffer_release(h_); }

    /// [offset, offset + len) of this buffer: same memory, same metadata.
    Buffer slice(size_t offset, size_t len) const {
        px_buffer_t *b = nullptr;
        detail::check(px_buffer_slice(h_, offset, len, &b));
        return Buffer(b);
    }

    const std::byte *data() const noexcept {
        return static_cast<const std::byte *>(px_buffer_ptr(h_));
    }
    /// nullptr when the memory is read-only (e.g. received from a channel).
    std::byte *mutable_data() noexcept { return static_cast<std::byte *>(px_buffer_mut_ptr(h_)); }
    bool is_readonly() const noexcept { return px_buffer_mut_ptr(h_) == nullptr; }
    size_t size() const noexcept { return px_buffer_len(h_); }
    bool empty() const noexcept { return size() == 0; }
    /// Offset of the first byte within the segment.
    size_t offset() const noexcept { return px_buffer_offset(h_); }
    Segment segment() const noexcept { return Segment::retain(px_buffer_segment(h_)); }
    std::string_view view() const noexcept {
        return {static_cast<const char *>(px_buffer_ptr(h_)), size()};
    }

    Metadata metadata() const {
        Metadata m;
        detail::check(px_buffer_metadata(h_, &m));
        return m;
    }
    void set_metadata(const Metadata &m) { detail::check(px_buffer_set_metadata(h_, &m)); }

    /// What the bytes are: nullopt for untyped bytes (every buffer's default, every slice's).
    /// Clones keep it; channels and streams carry it.
    std::optional<Format> format() const {
        Format f;
        detail::check(px_buffer_format(h_, &f));
        if (!f.typed())
            return std::nullopt;
        return f;
    }
    /// Gives this buffer a format (copies made afterwards keep it): Status::invalid, changing
    /// nothing, unless every element lies inside the buffer. Must not race with other use of
    /// the same Buffer object.
    void set_format(const Format &f) { detail::check(px_buffer_set_format(h_, &f)); }
    /// Makes this buffer untyped bytes again.
    void clear_format() {
        const Format untyped;
        detail::check(px_buffer_set_format(h_, &untyped));
    }

    /// The first element as T and how many there are, checked as as_span does (any C++
    /// standard; as_span is the C++20 form).
    template <class T> std::pair<const T *, size_t> typed_view() const {
        const size_t n = detail::typed_count<T>("Buffer::typed_view", format_or_untyped(),
                                                data(), size());
        return {reinterpret_cast<const T *>(data()), n};
    }
#if PARALLAX_HAS_SPAN
    /// The bytes as elements of T, without a copy, checked: a typed buffer gives its elements
    /// (its dtype must be T's, or F16/BF16 for uint16_t's raw bits, and its format contiguous);
    /// an untyped one all its bytes, a whole number of T. The data must be aligned for T. Each
    /// failure throws Status::invalid naming the reason.
    template <class T> std::span<const T> as_span() const {
        const size_t n =
            detail::typed_count<T>("Buffer::as_span", format_or_untyped(), data(), size());
        return {reinterpret_cast<const T *>(data()), n};
    }
    /// As as_span, writable: Status::unsupported for read-only memory (e.g. received from a
    /// channel). Nothing else may read or write those bytes meanwhile (a buffer from a pool's
    /// slot, before it is sent, is the usual case).
    template <class T> std::span<T> as_mutable_span() {
        std::byte *p = mutable_data();
        if (!p)
            throw Error(PX_E_UNSUPPORTED, "Buffer::as_mutable_span: the buffer's memory is "
                                          "read-only (received, or a read-only mapping)");
        const size_t n =
            detail::typed_count<T>("Buffer::as_mutable_span", format_or_untyped(), p, size());
        return {reinterpret_cast<T *>(p), n};
    }
#endif

    px_buffer_t *get() const noexcept { return h_; }
    px_buffer_t *release() noexcept { return std::exchange(h_, nullptr); }
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    Format format_or_untyped() const {
        Format f;
        detail::check(px_buffer_format(h_, &f));
        return f;
    }

    px_buffer_t *h_ = nullptr;
};

/* ------------------------------------------------------------------------------------------ */
/* Pools and slots                                                                            */
/* ------------------------------------------------------------------------------------------ */

/// A slot on loan (px_slot_t): move-only; the destructor gives it back to its pool.
class Slot {
public:
    Slot() noexcept = default;
    explicit Slot(px_slot_t *slot) noexcept : h_(slot) {}
    Slot(const Slot &) = delete;
    Slot &operator=(const Slot &) = delete;
    Slot(Slot &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Slot &operator=(Slot &&o) noexcept {
        Slot(std::move(o)).swap(*this);
        return *this;
    }
    ~Slot() { px_slot_release(h_); }

    std::byte *data() noexcept { return static_cast<std::byte *>(px_slot_data(h_)); }
    size_t size() const noexcept { return px_slot_len(h_); }
#if PARALLAX_HAS_SPAN
    /// The whole slot as elements of T, to write a typed frame in place: the slot size must be
    /// a whole number of T and the slot aligned for T, else Status::invalid naming which.
    /// Give the buffer made from it its Format with Buffer::set_format.
    template <class T> std::span<T> as_span() {
        const size_t n = detail::typed_count<T>("Slot::as_span", Format(), data(), size());
        return {reinterpret_cast<T *>(data()), n};
    }
#endif
    size_t index() const noexcept { return px_slot_index(h_); }

    /// Turns the slot into a buffer of its first `len` bytes (1 <= len <= size()). The slot is
    /// consumed whatever the result: on error it is back in its pool and this object is empty.
    Buffer into_buffer(size_t len, const Metadata &meta = Metadata()) && {
        px_buffer_t *b = nullptr;
        detail::check(px_slot_into_buffer(std::exchange(h_, nullptr), len, &meta, &b));
        return Buffer(b);
    }
    /// Gives the slot back now.
    void reset() noexcept { px_slot_release(std::exchange(h_, nullptr)); }

    px_slot_t *get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    void swap(Slot &o) noexcept { std::swap(h_, o.h_); }

private:
    px_slot_t *h_ = nullptr;
};

/// Fixed-size slots over a segment (px_pool_t). Copies share the pool.
class Pool {
public:
    Pool() noexcept = default;
    explicit Pool(px_pool_t *pool) noexcept : h_(pool) {}
    /// Slots of `slot_size` bytes over `seg` (which the pool keeps alive).
    Pool(const Segment &seg, size_t slot_size) {
        detail::check(px_pool_new(seg.get(), slot_size, &h_));
    }
    Pool(const Pool &o) noexcept : h_(px_pool_retain(o.h_)) {}
    Pool(Pool &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Pool &operator=(Pool o) noexcept {
        std::swap(h_, o.h_);
        return *this;
    }
    ~Pool() { px_pool_release(h_); }

    size_t capacity() const noexcept { return px_pool_capacity(h_); }
    size_t available() const noexcept { return px_pool_available(h_); }
    size_t slot_size() const noexcept { return px_pool_slot_size(h_); }
    Segment segment() const noexcept { return Segment::retain(px_pool_segment(h_)); }

    /// A free slot, without waiting: throws Status::would_block when every slot is out.
    Slot loan() {
        px_slot_t *s = nullptr;
        detail::check(px_pool_loan(h_, &s));
        return Slot(s);
    }
    /// Waits up to `timeout` (wait_forever, no_wait, or a duration) for a slot.
    Slot loan(Timeout timeout) {
        px_slot_t *s = nullptr;
        detail::check(px_pool_loan_timeout(h_, timeout.ns(), &s));
        return Slot(s);
    }
    /// A free slot, or nullopt when every slot is out (other errors throw).
    std::optional<Slot> try_loan() {
        px_slot_t *s = nullptr;
        px_status_t rc = px_pool_loan(h_, &s);
        if (rc == PX_E_WOULD_BLOCK)
            return std::nullopt;
        detail::check(rc);
        return Slot(s);
    }

    px_pool_t *get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    px_pool_t *h_ = nullptr;
};

/* ------------------------------------------------------------------------------------------ */
/* IPC                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/// Sends one fd over a connected AF_UNIX socket (SCM_RIGHTS); the caller keeps `fd`.
inline void send_fd(int socket_fd, int fd) { detail::check(px_ipc_send_fd(socket_fd, fd)); }
/// Receives one fd (close-on-exec); the caller owns it.
inline int recv_fd(int socket_fd, Timeout timeout = wait_forever) {
    int fd = -1;
    detail::check(px_ipc_recv_fd(socket_fd, timeout.ns(), &fd));
    return fd;
}

/// One end of a connection that carries buffers zero-copy (px_channel_t). Move-only; the
/// destructor closes this end (the peer then sees Status::closed). Received buffers are
/// read-only views of the sender's memory and outlive the channel.
class Channel {
public:
    Channel() noexcept = default;
    explicit Channel(px_channel_t *ch) noexcept : h_(ch) {}
    Channel(const Channel &) = delete;
    Channel &operator=(const Channel &) = delete;
    Channel(Channel &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Channel &operator=(Channel &&o) noexcept {
        Channel(std::move(o)).swap(*this);
        return *this;
    }
    ~Channel() { px_channel_release(h_); }

    /// Two connected ends, made for fork(). The child inherits both, so each process keeps
    /// exactly one and releases the other right after the fork: the parent keeps `first`, the
    /// child `second`. A copy left in the wrong process holds that end open: the other side
    /// may then not see Status::closed when its peer exits, nor get back at once the slots it
    /// had lent to it.
    ///
    ///     auto [parent_end, child_end] = parallax::Channel::pair();
    ///     if (fork() == 0) {
    ///         parent_end = parallax::Channel(); // the child releases the parent's end
    ///         serve(child_end);
    ///         _exit(0);                         // (which closes child_end)
    ///     }
    ///     child_end = parallax::Channel();      // the parent releases the child's end
    ///     talk(parent_end);
    static std::pair<Channel, Channel> pair() {
        px_channel_t *a = nullptr, *b = nullptr;
        detail::check(px_channel_pair(&a, &b));
        return {Channel(a), Channel(b)};
    }
    /// Connects to a Listener's path.
    static Channel connect(const std::string &path, Timeout timeout = wait_forever) {
        px_channel_t *c = nullptr;
        detail::check(px_channel_connect(path.c_str(), timeout.ns(), &c));
        return Channel(c);
    }
    /// Adopts a connected AF_UNIX SOCK_SEQPACKET socket (owns it from now on, also on error)
    /// and runs the handshake.
    static Channel from_fd(int socket_fd) {
        px_channel_t *c = nullptr;
        detail::check(px_channel_from_fd(socket_fd, &c));
        return Channel(c);
    }

    /// Sends zero-copy; the caller keeps its buffer. Heap and mapped-file memory throw
    /// Status::unsupported.
    void send(const Buffer &buf) { detail::check(px_channel_send(h_, buf.get())); }
    /// As send, waiting at most `timeout` while the peer is too far behind.
    void send(const Buffer &buf, Timeout timeout) {
        detail::check(px_channel_send_timeout(h_, buf.get(), timeout.ns()));
    }
    /// The next buffer (read-only, metadata intact).
    Buffer recv(Timeout timeout = wait_forever) {
        px_buffer_t *b = nullptr;
        detail::check(px_channel_recv(h_, timeout.ns(), &b));
        return Buffer(b);
    }
    /// The next buffer if one is ready now, else nullopt (closed peers etc. throw).
    std::optional<Buffer> try_recv() {
        px_buffer_t *b = nullptr;
        px_status_t rc = px_channel_recv(h_, 0, &b);
        if (rc == PX_E_WOULD_BLOCK)
            return std::nullopt;
        detail::check(rc);
        return Buffer(b);
    }
    /// How long recv busy-polls before sleeping: 0 sleeps at once, negative (or longer than
    /// INT64_MAX ns) never sleeps, default PX_CHANNEL_DEFAULT_SPIN_NS.
    template <class Rep, class Period> void set_spin(std::chrono::duration<Rep, Period> spin) {
        detail::check(px_channel_set_spin_ns(h_, detail::to_ns(spin)));
    }
    px_channel_stats_t stats() const {
        px_channel_stats_t s{};
        detail::check(px_channel_get_stats(h_, &s));
        return s;
    }
    /// Pollable: readable when recv may not block. Owned by the channel.
    int fd() const noexcept { return px_channel_fd(h_); }

    px_channel_t *get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    void swap(Channel &o) noexcept { std::swap(h_, o.h_); }

private:
    px_channel_t *h_ = nullptr;
};

/// Accepts channels on a socket path (px_listener_t). Move-only; the destructor closes it and
/// removes the socket file.
class Listener {
public:
    Listener() noexcept = default;
    /// Listens on `path` (mode 0600): a stale socket is replaced, a live one is Status::busy.
    explicit Listener(const std::string &path) {
        detail::check(px_listener_new(path.c_str(), &h_));
    }
    Listener(const Listener &) = delete;
    Listener &operator=(const Listener &) = delete;
    Listener(Listener &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Listener &operator=(Listener &&o) noexcept {
        Listener(std::move(o)).swap(*this);
        return *this;
    }
    ~Listener() { px_listener_release(h_); }

    Channel accept(Timeout timeout = wait_forever) {
        px_channel_t *c = nullptr;
        detail::check(px_listener_accept(h_, timeout.ns(), &c));
        return Channel(c);
    }
    /// Pollable: readable when accept may not block.
    int fd() const noexcept { return px_listener_fd(h_); }

    px_listener_t *get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    void swap(Listener &o) noexcept { std::swap(h_, o.h_); }

private:
    px_listener_t *h_ = nullptr;
};

/* ------------------------------------------------------------------------------------------ */
/* Streams                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/// What Publisher::publish does for a subscriber with no credit left (max_in_flight held or
/// queued): drop that frame for it (counted on both sides), block up to block_timeout_ns and then
/// throw Status::timeout having delivered to the others, or disconnect it.
enum class SlowPolicy : px_slow_policy_t {
    drop = PX_SLOW_DROP,
    block = PX_SLOW_BLOCK,
    disconnect = PX_SLOW_DISCONNECT,
};

/// px_publisher_options_t with px_publisher_options_init's defaults (DROP, 64 subscribers, 8
/// in flight, no history, block timeout 1 s); its fields are public, as in C, and
/// struct_size stays what the init function set.
///
///     parallax::PublisherOptions opts;
///     opts.set_policy(parallax::SlowPolicy::block).set_block_timeout(200ms);
///     opts.history = 4;
struct PublisherOptions : px_publisher_options_t {
    PublisherOptions() noexcept : px_publisher_options_t{} { px_publisher_options_init(this); }

    SlowPolicy policy() const noexcept { return static_cast<SlowPolicy>(slow_policy); }
    PublisherOptions &set_policy(SlowPolicy p) noexcept {
        slow_policy = static_cast<px_slow_policy_t>(p);
        return *this;
    }
    /// SlowPolicy::block's wait (wait_forever, or a duration).
    PublisherOptions &set_block_timeout(Timeout t) noexcept {
        block_timeout_ns = t.ns();
        return *this;
    }
};

/// The publishing end of a stream (px_publisher_t). Move-only; the destructor ends the stream:
/// subscribers receive what was sent to them, then Status::closed, and the name is free again.
/// No library thread runs: subscribers are admitted inside publish() and poll(), so a publisher
/// that goes a while without publishing polls fd() or calls poll().
///
///     parallax::Publisher pub("camera");               // or a socket path with a '/'
///     pub.set_description("video/x-raw,format=RGB");
///     pub.publish(std::move(slot).into_buffer(len));   // to every subscriber, zero-copy
class Publisher {
public:
    Publisher() noexcept = default;
    explicit Publisher(px_publisher_t *pub) noexcept : h_(pub) {}
    /// Starts publishing stream `name`: a live publisher of that name throws Status::busy (a
    /// stale one is replaced), a malformed name or option Status::invalid naming the rule.
    explicit Publisher(const std::string &name, const PublisherOptions &opts = {}) {
        detail::check(px_publisher_new(name.c_str(), &opts, &h_));
    }
    Publisher(const Publisher &) = delete;
    Publisher &operator=(const Publisher &) = delete;
    Publisher(Publisher &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Publisher &operator=(Publisher &&o) noexcept {
        Publisher(std::move(o)).swap(*this);
        return *this;
    }
    ~Publisher() { px_publisher_release(h_); }

    /// To every admitted subscriber, zero-copy; the caller keeps its buffer. Heap and
    /// mapped-file memory throw Status::unsupported; under SlowPolicy::block, Status::timeout.
    void publish(const Buffer &buf) { detail::check(px_publisher_publish(h_, buf.get())); }
    /// Waits up to `timeout` for housekeeping (joins, departures) and does it: true when there
    /// was some, false when none came.
    bool poll(Timeout timeout = no_wait) {
        const px_status_t rc = px_publisher_poll(h_, timeout.ns());
        if (rc == PX_E_WOULD_BLOCK || rc == PX_E_TIMEOUT)
            return false;
        detail::check(rc);
        return true;
    }
    size_t subscriber_count() const noexcept { return px_publisher_subscriber_count(h_); }
    /// At most 64 KiB of opaque text, delivered at join and in order with the frames. A NUL
    /// inside (which C would cut the text at) throws Status::invalid.
    void set_description(std::string_view text) {
        if (text.find('\0') != std::string_view::npos)
            throw Error(PX_E_INVALID, "Publisher::set_description: the text has a NUL byte at " +
                                          std::to_string(text.find('\0')));
        detail::check(px_publisher_set_description(h_, std::string(text).c_str()));
    }
    /// Advances the stream's numbering by `count` without sending anything (a relay's lost
    /// frames): each subscriber's missed grows by `count`; no publisher counter changes. 0 does
    /// nothing; running the numbering past UINT64_MAX throws Status::invalid.
    void skip(uint64_t count) { detail::check(px_publisher_skip(h_, count)); }
    px_publisher_stats_t stats() const {
        px_publisher_stats_t s{};
        detail::check(px_publisher_get_stats(h_, &s));
        return s;
    }
    /// Pollable: readable when poll() has housekeeping to do. Owned by the publisher.
    int fd() const noexcept { return px_publisher_fd(h_); }

    px_publisher_t *get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    void swap(Publisher &o) noexcept { std::swap(h_, o.h_); }

private:
    px_publisher_t *h_ = nullptr;
};

/// The receiving end of a stream (px_subscriber_t). Move-only; the destructor leaves the
/// stream. Received buffers are read-only views of the publisher's memory and outlive both
/// ends. Frames come in order (history first), those the publisher had no room for skipped and
/// counted in stats().missed; once the publisher is gone and everything it sent is received,
/// recv throws Status::closed and a range-for ends:
///
///     parallax::Subscriber sub("camera", 5s);          // waits up to 5 s for the publisher
///     for (parallax::Buffer &frame : sub)              // waits for each frame
///         show(frame.view(), sub.description());
class Subscriber {
public:
    Subscriber() noexcept = default;
    explicit Subscriber(px_subscriber_t *sub) noexcept : h_(sub) {}
    /// Joins stream `name`, waiting up to `timeout` for its publisher to appear and admit this
    /// subscriber (Status::timeout; a full publisher is Status::busy).
    explicit Subscriber(const std::string &name, Timeout timeout = wait_forever) {
        detail::check(px_subscriber_new(name.c_str(), timeout.ns(), &h_));
    }
    Subscriber(const Subscriber &) = delete;
    Subscriber &operator=(const Subscriber &) = delete;
    Subscriber(Subscriber &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Subscriber &operator=(Subscriber &&o) noexcept {
        Subscriber(std::move(o)).swap(*this);
        return *this;
    }
    ~Subscriber() { px_subscriber_release(h_); }

    /// The next frame (read-only, metadata intact).
    Buffer recv(Timeout timeout = wait_forever) {
        px_buffer_t *b = nullptr;
        detail::check(px_subscriber_recv(h_, timeout.ns(), &b));
        return Buffer(b);
    }
    /// The next frame if one is ready now, else nullopt (the end of the stream etc. throw).
    std::optional<Buffer> try_recv() {
        px_buffer_t *b = nullptr;
        const px_status_t rc = px_subscriber_recv(h_, 0, &b);
        if (rc == PX_E_WOULD_BLOCK)
            return std::nullopt;
        detail::check(rc);
        return Buffer(b);
    }
    /// The next frame, or nullopt at the end of the stream (other errors throw).
    std::optional<Buffer> next(Timeout timeout = wait_forever) {
        px_buffer_t *b = nullptr;
        const px_status_t rc = px_subscriber_recv(h_, timeout.ns(), &b);
        if (rc == PX_E_CLOSED)
            return std::nullopt;
        detail::check(rc);
        return Buffer(b);
    }
    /// The description in force for the last frame received (before the first, the one current
    /// at join; "" when none was ever set).
    std::string description() const {
        std::string text(256, '\0');
        for (;;) {
            size_t len = 0;
            const px_status_t rc = px_subscriber_description(h_, text.data(), text.size(), &len);
            if (rc == PX_OK) {
                text.resize(len);
                return text;
            }
            // Too small: try again at the length it has now (another thread's recv may change
            // it between the two calls).
            if (rc != PX_E_INVALID || len < text.size())
                detail::check(rc);
            text.resize(len + 1);
        }
    }
    px_subscriber_stats_t stats() const {
        px_subscriber_stats_t s{};
        detail::check(px_subscriber_get_stats(h_, &s));
        return s;
    }
    /// Pollable: readable when recv may not block; -1 when the process is out of fds.
    int fd() const noexcept { return px_subscriber_fd(h_); }
    /// How long recv busy-polls before sleeping, as Channel::set_spin: 0 sleeps at once,
    /// negative (or longer than INT64_MAX ns) never sleeps, default PX_CHANNEL_DEFAULT_SPIN_NS.
    template <class Rep, class Period> void set_spin(std::chrono::duration<Rep, Period> spin) {
        detail::check(px_subscriber_set_spin_ns(h_, detail::to_ns(spin)));
    }

    /// Input iterator over the frames (waiting forever for each); equal to end() once the
    /// stream has ended. Errors other than the end throw from begin() and ++.
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Buffer;
        using difference_type = std::ptrdiff_t;
        using pointer = Buffer *;
        using reference = Buffer &;

        iterator() noexcept = default;
        explicit iterator(Subscriber *sub) : sub_(sub) { ++*this; }
        Buffer &operator*() noexcept { return frame_; }
        Buffer *operator->() noexcept { return &frame_; }
        iterator &operator++() {
            std::optional<Buffer> f = sub_->next();
            if (f)
                frame_ = std::move(*f);
            else
                *this = iterator();
            return *this;
        }
        bool operator==(const iterator &o) const noexcept { return sub_ == o.sub_; }
        bool operator!=(const iterator &o) const noexcept { return sub_ != o.sub_; }

    private:
        Subscriber *sub_ = nullptr;
        Buffer frame_;
    };
    iterator begin() { return iterator(this); }
    iterator end() noexcept { return iterator(); }

    px_subscriber_t *get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    void swap(Subscriber &o) noexcept { std::swap(h_, o.h_); }

private:
    px_subscriber_t *h_ = nullptr;
};

/// The counters of the live publisher of `name`, in any process of this user; no live
/// publisher throws Status::closed at once.
inline px_publisher_stats_t stream_stats(const std::string &name, Timeout timeout = wait_forever) {
    px_publisher_stats_t s{};
    detail::check(px_stream_stats(name.c_str(), timeout.ns(), &s));
    return s;
}

/// The admitted subscribers of the live publisher of `name` (pid, in flight, delivered,
/// dropped), in any process of this user, in the order they joined, as of the publisher's last
/// publish or poll. No live publisher throws Status::closed at once.
inline std::vector<px_stream_subscriber_info_t> stream_subscribers(const std::string &name,
                                                                   Timeout timeout = wait_forever) {
    std::vector<px_stream_subscriber_info_t> rows(16);
    for (;;) {
        size_t count = 0;
        detail::check(
            px_stream_subscribers(name.c_str(), timeout.ns(), rows.data(), rows.size(), &count));
        // More joined than there was room for: read again (they may keep joining).
        const bool fits = count <= rows.size();
        rows.resize(count);
        if (fits)
            return rows;
    }
}

/// The live streams in the runtime directory.
inline std::vector<std::string> list_streams() {
    struct Names {
        std::vector<std::string> names;
        std::exception_ptr error; // nothing may be thrown through the C library
    } ctx;
    detail::check(px_stream_list(
        [](const char *name, void *p) {
            auto *c = static_cast<Names *>(p);
            if (c->error)
                return;
            try {
                c->names.emplace_back(name);
            } catch (...) {
                c->error = std::current_exception();
            }
        },
        &ctx));
    if (ctx.error)
        std::rethrow_exception(ctx.error);
    return std::move(ctx.names);
}

} // namespace parallax

#endif /* PARALLAX_HPP */
