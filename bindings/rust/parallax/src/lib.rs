// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Safe Rust interface to libparallax: zero-copy memory segments, slot pools, refcounted
//! buffers, channels that pass buffers between processes without copying the payload, and
//! streams that publish each buffer once to every process subscribed by name
//! ([`Publisher`], [`Subscriber`]).
//!
//! ```no_run
//! use parallax::{Metadata, Pool};
//!
//! # fn main() -> Result<(), parallax::Error> {
//! let pool = Pool::shm(Some("frames"), 16, 64 << 10)?; // 16 slots of 64 KiB, shareable
//! let mut slot = pool.loan()?;
//! slot[..5].copy_from_slice(b"hello");
//! let frame = slot.into_buffer(5, &Metadata::with_sequence(1))?;
//! assert_eq!(&frame[..], b"hello");
//! # Ok(()) }
//! ```
//!
//! # Threads and memory
//! Every libparallax call may be made from any thread, so every handle type is `Send` and
//! `Sync`. The Rust rules on top of that:
//! - a [`Slot`] is the only safe way to write: it is loaned to one owner at a time, and
//!   writing needs `&mut Slot`;
//! - a [`Buffer`] only reads (`Deref<Target = [u8]>`). A slot comes back to its pool, to be
//!   written again, only when the last buffer referring to it is gone, in this process or any
//!   other;
//! - a [`Segment`]'s memory is reachable only through raw pointers or `unsafe` accessors;
//!   [`Buffer::new`] over an arbitrary range and [`Pool::new`] over an existing segment are
//!   `unsafe`, because nothing stops such a range from overlapping a slot that someone is
//!   writing (two pools over one segment would lend the same bytes twice). [`Pool::heap`],
//!   [`Pool::shm`] and [`Pool::hugepage`] make their own segment and are safe.
//!
//! # Typed frames
//! A buffer may carry a [`Format`] (dtype, shape, strides, fourcc) that travels with it over
//! channels and streams; [`Buffer::as_slice_of`] views a received frame as `&[f32]` and the
//! like, checked, without a copy, and [`Slot::as_mut_slice_of`] writes one in place.
//!
//! # Tokio
//! With the `tokio` feature, [`AsyncChannel`] and [`AsyncSubscriber`] give `recv().await` and
//! `futures_core::Stream`s of buffers, driven by the reactor on the handles' pollable fds.
//!
//! A received buffer maps another process's memory read-only. The protocol keeps the sender
//! from reusing that slot while the buffer lives, but a sender that writes it anyway (through
//! C, or `unsafe`) changes what the receiver sees, as with any shared mapping.
#![warn(missing_docs)]

#[cfg(feature = "tokio")]
mod async_tokio;
mod buffer;
mod channel;
mod error;
mod format;
mod metadata;
mod pool;
mod segment;
mod stream;

pub use buffer::Buffer;
pub use channel::{recv_fd, send_fd, Channel, ChannelStats, Listener};
pub use error::{Error, Result, Status};
pub use format::{fourcc, Dtype, Element, Format, MAX_DIMS};
pub use metadata::Metadata;
pub use pool::{Pool, Slot};
pub use segment::{HugePageSize, IpcHandle, MapFlags, MemoryType, Segment};
pub use stream::{
    list_streams, stream_stats, stream_subscribers, Frames, Publisher, PublisherOptions,
    PublisherStats, SlowPolicy, Subscriber, SubscriberInfo, SubscriberStats,
};

#[cfg(feature = "tokio")]
pub use async_tokio::{AsyncChannel, AsyncSubscriber};

/// The raw bindings this crate is built on.
pub use parallax_sys as sys;

use std::ffi::CStr;
use std::time::Duration;

/// `(major, minor, patch)` of the loaded libparallax.
pub fn version() -> (u32, u32, u32) {
    // SAFETY: no arguments; always succeeds.
    let v = unsafe { sys::px_version() };
    (v >> 16, (v >> 8) & 0xff, v & 0xff)
}

/// `"major.minor.patch"` of the loaded libparallax.
pub fn version_string() -> &'static str {
    // SAFETY: the library returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::px_version_string()) }
        .to_str()
        .unwrap_or("")
}

/// The version of the header these bindings were generated from; compare with [`version`].
pub const HEADER_VERSION: (u32, u32, u32) = (
    sys::PX_VERSION_MAJOR,
    sys::PX_VERSION_MINOR,
    sys::PX_VERSION_PATCH,
);

/// A timeout as the C API takes it: `None` waits forever, `Some(Duration::ZERO)` polls
/// ([`Status::WouldBlock`] if nothing is ready), anything else waits up to that long
/// ([`Status::Timeout`]). A duration longer than `i64::MAX` nanoseconds (about 292 years; e.g.
/// `Duration::MAX`, the usual way to say "no limit") waits forever too: the C API cannot count
/// it, and saturating it to a finite wait would give a deadline the caller never asked for.
/// The Python binding follows the same rule.
pub(crate) fn timeout_ns(timeout: Option<Duration>) -> i64 {
    match timeout {
        None => -1,
        Some(d) => i64::try_from(d.as_nanos()).unwrap_or(-1),
    }
}

/// The borrow rules above, checked: each of these must fail to compile.
///
/// Writing a slot needs `&mut`:
/// ```compile_fail,E0596
/// fn f(s: &parallax::Slot) { s[0] = 1; }
/// ```
/// A slot is not `Clone` (so `s.clone()` is a `&Slot`):
/// ```compile_fail,E0308
/// fn f(s: &parallax::Slot) -> parallax::Slot { s.clone() }
/// ```
/// A buffer never writes:
/// ```compile_fail,E0596
/// fn f(b: &parallax::Buffer) { b[0] = 1; }
/// ```
/// Its metadata changes only through `&mut`:
/// ```compile_fail,E0596
/// fn f(b: &parallax::Buffer, m: &parallax::Metadata) { b.set_metadata(m).unwrap(); }
/// ```
/// So is a pool over an existing segment:
/// ```compile_fail,E0133
/// fn f(s: &parallax::Segment) -> parallax::Pool { parallax::Pool::new(s, 64).unwrap() }
/// ```
/// A buffer over an arbitrary range of a segment is `unsafe`:
/// ```compile_fail,E0133
/// fn f(s: &parallax::Segment) -> parallax::Buffer {
///     parallax::Buffer::from_segment(s, &parallax::Metadata::default()).unwrap()
/// }
/// ```
/// And the same code with `&mut` / `unsafe` compiles:
/// ```no_run
/// fn f(s: &mut parallax::Slot, b: &mut parallax::Buffer, m: &parallax::Metadata) {
///     s[0] = 1;
///     b.set_metadata(m).unwrap();
/// }
/// fn g(s: &parallax::Segment) -> parallax::Buffer {
///     unsafe { parallax::Buffer::from_segment(s, &parallax::Metadata::default()) }.unwrap()
/// }
/// ```
#[allow(dead_code)]
fn borrow_rules_checked_by_doctests() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_map_to_the_c_convention() {
        assert_eq!(timeout_ns(None), -1);
        assert_eq!(timeout_ns(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ns(Some(Duration::from_millis(3))), 3_000_000);
    }

    #[test]
    fn timeouts_beyond_i64_nanoseconds_wait_forever() {
        // Exactly i64::MAX ns is still a finite wait; one nanosecond more cannot be counted.
        let max_ns = i64::MAX as u64;
        assert_eq!(timeout_ns(Some(Duration::from_nanos(max_ns))), i64::MAX);
        assert_eq!(timeout_ns(Some(Duration::from_nanos(max_ns + 1))), -1);
        assert_eq!(timeout_ns(Some(Duration::from_nanos(u64::MAX))), -1);
        assert_eq!(timeout_ns(Some(Duration::MAX)), -1);
        assert_eq!(timeout_ns(Some(Duration::from_secs(u64::MAX / 2))), -1);
    }

    #[test]
    fn library_and_header_versions_agree() {
        assert_eq!(version(), HEADER_VERSION);
        let (a, b, c) = version();
        assert_eq!(version_string(), format!("{a}.{b}.{c}"));
    }
}
