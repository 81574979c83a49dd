// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Streams: one [`Publisher`] sends each buffer once, zero-copy, to every [`Subscriber`] that
//! joined its stream by name, in this process or any other of the same user.
//!
//! A name without `/` (`[A-Za-z0-9._-]`, 1–100 characters, not starting with `.`) lives in the
//! runtime directory: `$PARALLAX_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/parallax`, else
//! `/tmp/parallax-<uid>`. A name with `/` is a socket path used as is.
//!
//! No library thread runs: the publisher admits subscribers (and sends them the description)
//! inside [`Publisher::publish`] and [`Publisher::poll`], so a publisher that goes a while
//! without publishing polls its fd or calls `poll`. Slot returns need neither.
use std::ffi::{c_char, c_void, CStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::time::Duration;

use parallax_sys as sys;

use crate::buffer::Buffer;
use crate::error::{c_string, check, Error, Result, Status};
use crate::segment::make;
use crate::timeout_ns;

/// What [`Publisher::publish`] does for a subscriber with no credit left (it holds or has
/// queued [`PublisherOptions::max_in_flight`] buffers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SlowPolicy {
    /// That subscriber misses the frame: counted in its [`SubscriberStats::missed`] and in the
    /// publisher's [`PublisherStats::dropped`]. The others are never held up.
    #[default]
    Drop,
    /// `publish` waits up to [`PublisherOptions::block_timeout`] for room at every subscriber,
    /// then fails with [`Status::Timeout`] having delivered to those with room.
    Block,
    /// That subscriber is dropped: it receives what it was sent, then [`Status::Closed`].
    Disconnect,
}

impl SlowPolicy {
    fn to_c(self) -> sys::px_slow_policy_t {
        match self {
            SlowPolicy::Drop => sys::PX_SLOW_DROP,
            SlowPolicy::Block => sys::PX_SLOW_BLOCK,
            SlowPolicy::Disconnect => sys::PX_SLOW_DISCONNECT,
        }
    }

    fn from_c(policy: sys::px_slow_policy_t) -> SlowPolicy {
        match policy {
            sys::PX_SLOW_BLOCK => SlowPolicy::Block,
            sys::PX_SLOW_DISCONNECT => SlowPolicy::Disconnect,
            _ => SlowPolicy::Drop,
        }
    }
}

/// How a [`Publisher`] treats its subscribers (`px_publisher_options_t`). `Default` is what
/// `px_publisher_options_init` gives: [`SlowPolicy::Drop`], 64 subscribers, 8 buffers in flight
/// per subscriber, no history, a 1 s block timeout. Change the fields you need:
///
/// ```
/// use std::time::Duration;
/// use parallax::{PublisherOptions, SlowPolicy};
///
/// let mut opts = PublisherOptions::default();
/// opts.slow_policy = SlowPolicy::Block;
/// opts.block_timeout = Some(Duration::from_millis(200));
/// opts.history = 4; // a late subscriber gets the 4 latest frames first
/// assert_eq!(opts.max_in_flight, 8);
/// ```
///
/// Out-of-range values are refused by [`Publisher::new`] with [`Status::Invalid`], naming the
/// field. New fields may be added (the struct is `#[non_exhaustive]`), so build it from
/// `default()`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublisherOptions {
    /// What happens to a subscriber with no credit.
    pub slow_policy: SlowPolicy,
    /// 1..=1024: one more subscriber gets [`Status::Busy`] from [`Subscriber::new`].
    pub max_subscribers: u32,
    /// 1..=128: what one subscriber may hold plus what is queued for it.
    pub max_in_flight: u32,
    /// 0..=1024: how many of the latest frames a joining subscriber receives first (at most
    /// `max_in_flight` of them). The publisher keeps holding them, so their slots stay out.
    pub history: u32,
    /// [`SlowPolicy::Block`]'s wait; `None` waits forever (as does a duration longer than
    /// `i64::MAX` ns).
    pub block_timeout: Option<Duration>,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions::from_c(&c_defaults())
    }
}

/// The library's own defaults, so that this crate never disagrees with the C API about them.
fn c_defaults() -> sys::px_publisher_options_t {
    let mut c = sys::px_publisher_options_t::default();
    // SAFETY: valid out-pointer; the function only fills the struct.
    unsafe { sys::px_publisher_options_init(&mut c) };
    c
}

impl PublisherOptions {
    fn from_c(c: &sys::px_publisher_options_t) -> PublisherOptions {
        PublisherOptions {
            slow_policy: SlowPolicy::from_c(c.slow_policy),
            max_subscribers: c.max_subscribers,
            max_in_flight: c.max_in_flight,
            history: c.history,
            block_timeout: u64::try_from(c.block_timeout_ns)
                .ok()
                .map(Duration::from_nanos),
        }
    }

    fn to_c(&self) -> sys::px_publisher_options_t {
        let mut c = c_defaults(); // struct_size and any field this crate does not know yet
        c.slow_policy = self.slow_policy.to_c();
        c.max_subscribers = self.max_subscribers;
        c.max_in_flight = self.max_in_flight;
        c.history = self.history;
        c.block_timeout_ns = timeout_ns(self.block_timeout);
        c
    }
}

/// A publisher's counters (`px_publisher_stats_t`), from [`Publisher::stats`] or, from any
/// process, [`stream_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Frames published.
    pub published: u64,
    /// Subscribers admitted now.
    pub subscribers: u64,
    /// Subscribers admitted since the start.
    pub joined: u64,
    /// Subscribers that left, died or were disconnected since the start.
    pub departed: u64,
    /// Frames a subscriber missed for want of room ([`SlowPolicy::Drop`]).
    pub dropped: u64,
    /// Subscribers dropped by [`SlowPolicy::Disconnect`] (also counted in `departed`).
    pub disconnected_slow: u64,
    /// Buffers subscribers hold or have queued now.
    pub slots_lent: u64,
}

impl From<sys::px_publisher_stats_t> for PublisherStats {
    fn from(s: sys::px_publisher_stats_t) -> Self {
        PublisherStats {
            published: s.published,
            subscribers: s.subscribers,
            joined: s.joined,
            departed: s.departed,
            dropped: s.dropped,
            disconnected_slow: s.disconnected_slow,
            slots_lent: s.slots_lent,
        }
    }
}

/// A subscriber's counters (`px_subscriber_stats_t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Frames received.
    pub received: u64,
    /// Frames skipped: gaps in the stream's own numbering (the publisher had no room for this
    /// subscriber, or skipped numbers with [`Publisher::skip`]). The metadata's `sequence`
    /// stays the application's and plays no part.
    pub missed: u64,
    /// The publisher's process id.
    pub publisher_pid: u64,
}

/// A stream name as the C API takes it (a name in the runtime directory, or a socket path).
fn c_name(name: &Path) -> Result<std::ffi::CString> {
    c_string("stream name", name.as_os_str().as_bytes())
}

/// The publishing end of a stream (`px_publisher_t`). Dropping it ends the stream:
/// subscribers receive what was sent to them, then [`Status::Closed`]; buffers they hold stay
/// valid, and the name is free again at once.
///
/// ```
/// use std::time::Duration;
/// use parallax::{Metadata, Pool, Publisher, PublisherOptions, Subscriber};
///
/// let dir = std::env::temp_dir().join(format!("px-doc-pub-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let name = dir.join("camera"); // a path: names without '/' live in the runtime directory
/// let publisher = Publisher::new(&name, &PublisherOptions::default())?;
/// publisher.set_description("video/x-raw,width=4,height=1")?;
///
/// // A subscriber (here a thread; usually another process) joins by name.
/// let joiner = std::thread::spawn({
///     let name = name.clone();
///     move || -> parallax::Result<(String, Vec<u8>)> {
///         let sub = Subscriber::new(&name, Some(Duration::from_secs(5)))?;
///         let frame = sub.recv(Some(Duration::from_secs(5)))?;
///         Ok((sub.description()?, frame.to_vec()))
///     }
/// });
/// // No library thread: the publisher admits subscribers inside poll (and publish).
/// while publisher.subscriber_count() == 0 {
///     publisher.poll(Some(Duration::from_millis(10)))?;
/// }
/// let pool = Pool::shm(Some("frames"), 4, 4096)?;
/// let mut slot = pool.loan()?;
/// slot[..4].copy_from_slice(b"RGBA");
/// publisher.publish(&slot.into_buffer(4, &Metadata::with_sequence(1))?)?;
///
/// let (description, bytes) = joiner.join().unwrap()?;
/// assert_eq!(description, "video/x-raw,width=4,height=1");
/// assert_eq!(bytes, b"RGBA");
/// assert_eq!(publisher.stats()?.published, 1);
/// # drop(publisher);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), parallax::Error>(())
/// ```
pub struct Publisher {
    raw: NonNull<sys::px_publisher_t>,
}

// SAFETY: every publisher call may be made from any thread on a shared handle (API.md).
unsafe impl Send for Publisher {}
// SAFETY: as above; every `&self` method is a thread-safe C call.
unsafe impl Sync for Publisher {}

impl Publisher {
    /// Starts publishing stream `name`. A live publisher of that name is [`Status::Busy`]; a
    /// stale one (its process died) is replaced at once. A malformed name is
    /// [`Status::Invalid`], a runtime directory that is not this user's alone
    /// [`Status::Permission`], each with a message naming the rule.
    pub fn new(name: impl AsRef<Path>, options: &PublisherOptions) -> Result<Publisher> {
        let name = c_name(name.as_ref())?;
        let opts = options.to_c();
        // SAFETY: live C string and options; valid out-pointer.
        make(|out| unsafe { sys::px_publisher_new(name.as_ptr(), &opts, out) })
            .map(|raw| Publisher { raw })
    }

    /// Publishes `buffer` to every admitted subscriber, zero-copy: its slot is lent once to
    /// each and returns to its pool when the publisher and every subscriber have dropped it (or
    /// died). The caller keeps its buffer. Never held up by a subscriber joining, lagging
    /// (under [`SlowPolicy::Drop`] and [`SlowPolicy::Disconnect`]) or dying; under
    /// [`SlowPolicy::Block`], [`Status::Timeout`] after the block timeout. Heap and
    /// mapped-file memory is [`Status::Unsupported`] (subscribers could not map it).
    pub fn publish(&self, buffer: &Buffer) -> Result<()> {
        // SAFETY: live handles; the buffer is borrowed for the call.
        check(unsafe { sys::px_publisher_publish(self.raw.as_ptr(), buffer.as_raw()) })
    }

    /// Waits up to `timeout` for housekeeping (subscribers joining or leaving) and does it:
    /// `Ok(true)` when there was some, `Ok(false)` when none came in time (`None` waits
    /// forever, `Some(ZERO)` only looks). A publisher that is not publishing calls this (or
    /// waits for its fd to be readable) so that subscribers can join.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        let ns = timeout_ns(timeout);
        // SAFETY: live handle.
        match check(unsafe { sys::px_publisher_poll(self.raw.as_ptr(), ns) }) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.status(), Status::WouldBlock | Status::Timeout) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Subscribers admitted now.
    pub fn subscriber_count(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::px_publisher_subscriber_count(self.raw.as_ptr()) }
    }

    /// Sets the stream's description: an opaque text of at most 64 KiB (e.g. GStreamer caps,
    /// JSON). Every subscriber gets the current one when it joins, and each change in order
    /// with the frames: it is in force for the frames published after it. Longer text, or a
    /// NUL byte in it, is [`Status::Invalid`].
    pub fn set_description(&self, text: &str) -> Result<()> {
        let text = c_string("description", text.as_bytes())?;
        // SAFETY: live handle and C string (copied by the library).
        check(unsafe { sys::px_publisher_set_description(self.raw.as_ptr(), text.as_ptr()) })
    }

    /// Advances the stream's numbering by `count` without sending anything, for a relay whose
    /// source lost frames: each subscriber's next frame shows the gap, so its
    /// [`SubscriberStats::missed`] grows by `count`. No counter of [`Publisher::stats`] changes
    /// (`published` counts frames published, `dropped` frames a subscriber had no room for).
    /// 0 does nothing; a count that would run the stream's number past `u64::MAX` is
    /// [`Status::Invalid`].
    ///
    /// ```no_run
    /// # fn main() -> parallax::Result<()> {
    /// use parallax::{Publisher, PublisherOptions};
    /// let publisher = Publisher::new("relayed", &PublisherOptions::default())?;
    /// // The network lost frames 4..=6 of the source: local subscribers count 3 missed.
    /// publisher.skip(3)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn skip(&self, count: u64) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::px_publisher_skip(self.raw.as_ptr(), count) })
    }

    /// This publisher's counters.
    pub fn stats(&self) -> Result<PublisherStats> {
        let mut s = sys::px_publisher_stats_t::default();
        // SAFETY: live handle; valid out-pointer.
        check(unsafe { sys::px_publisher_get_stats(self.raw.as_ptr(), &mut s) })?;
        Ok(s.into())
    }

    /// The C handle, still owned by `self`.
    pub fn as_raw(&self) -> *mut sys::px_publisher_t {
        self.raw.as_ptr()
    }
}

impl AsRawFd for Publisher {
    /// Pollable: readable when the publisher has housekeeping to do without a publish (a
    /// joining or departed subscriber); [`Publisher::poll`] does it. Owned by the publisher.
    fn as_raw_fd(&self) -> RawFd {
        // SAFETY: live handle.
        unsafe { sys::px_publisher_fd(self.raw.as_ptr()) }
    }
}

impl AsFd for Publisher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        let fd = self.as_raw_fd();
        assert!(fd >= 0, "px_publisher_fd gave no fd for a live publisher");
        // SAFETY: the publisher owns this open fd while it lives.
        unsafe { BorrowedFd::borrow_raw(fd) }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // SAFETY: we own the publisher.
        unsafe { sys::px_publisher_release(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("fd", &self.as_raw_fd())
            .field("subscribers", &self.subscriber_count())
            .finish()
    }
}

/// The receiving end of a stream (`px_subscriber_t`). Dropping it leaves the stream; buffers
/// received stay valid (they map the publisher's memory read-only, and outlive the
/// subscriber and the publisher).
///
/// Frames come in order: first the publisher's history (if it keeps one), then live frames;
/// frames the publisher had no room for are skipped and counted in
/// [`SubscriberStats::missed`]. Once the publisher is gone and everything it sent has been
/// received, [`recv`](Self::recv) answers [`Status::Closed`] and [`iter`](Self::iter) ends.
pub struct Subscriber {
    raw: NonNull<sys::px_subscriber_t>,
}

// SAFETY: every subscriber call may be made from any thread on a shared handle (API.md).
unsafe impl Send for Subscriber {}
// SAFETY: as above; every `&self` method is a thread-safe C call.
unsafe impl Sync for Subscriber {}

/// The size a description is first read into; longer ones are read again at their length.
const DESCRIPTION_GUESS: usize = 256;

impl Subscriber {
    /// Subscribes to stream `name`, waiting up to `timeout` for its publisher to appear and
    /// admit this subscriber (start order does not matter: `None` waits forever, otherwise
    /// [`Status::Timeout`]). A full publisher is [`Status::Busy`].
    pub fn new(name: impl AsRef<Path>, timeout: Option<Duration>) -> Result<Subscriber> {
        let name = c_name(name.as_ref())?;
        let ns = timeout_ns(timeout);
        // SAFETY: live C string; valid out-pointer.
        make(|out| unsafe { sys::px_subscriber_new(name.as_ptr(), ns, out) })
            .map(|raw| Subscriber { raw })
    }

    /// The next frame, read-only: `None` waits forever, `Some(ZERO)` polls
    /// ([`Status::WouldBlock`]), otherwise [`Status::Timeout`]. [`Status::Closed`] once the
    /// publisher is gone and everything it sent has been received.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Buffer> {
        let ns = timeout_ns(timeout);
        // SAFETY: live handle; valid out-pointer.
        let raw = make(|out| unsafe { sys::px_subscriber_recv(self.raw.as_ptr(), ns, out) })?;
        // SAFETY: a fresh handle we own; its memory is mapped read-only here, and the
        // publisher's slot is not reused while any reference to it lives.
        Ok(unsafe { Buffer::from_raw(raw) })
    }

    /// The next frame if one is ready now: `Ok(None)` when there is none yet.
    pub fn try_recv(&self) -> Result<Option<Buffer>> {
        match self.recv(Some(Duration::ZERO)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.status() == Status::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The frames, waiting as long as it takes for each: the iterator ends when the stream
    /// does ([`Status::Closed`]); any other error is yielded once, and then it ends too.
    ///
    /// ```no_run
    /// # fn main() -> parallax::Result<()> {
    /// let sub = parallax::Subscriber::new("camera", None)?;
    /// for frame in sub.iter() {
    ///     let frame = frame?;
    ///     println!("frame {}: {} bytes", frame.metadata().sequence, frame.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> Frames<'_> {
        Frames {
            subscriber: self,
            done: false,
        }
    }

    /// The description in force for the last frame received (the one set before it was
    /// published); before the first frame, the one current at join; `""` when none was ever
    /// set. A description that is not UTF-8 (a C publisher may set any bytes) is
    /// [`Status::Invalid`]: [`description_bytes`](Self::description_bytes) gives it as is.
    pub fn description(&self) -> Result<String> {
        String::from_utf8(self.description_bytes()?).map_err(|e| {
            Error::new(
                Status::Invalid,
                format!(
                    "Subscriber::description: the stream's description is not UTF-8 \
                     (byte {}); description_bytes() gives it as is",
                    e.utf8_error().valid_up_to()
                ),
            )
        })
    }

    /// The description as the publisher set it, without its NUL.
    pub fn description_bytes(&self) -> Result<Vec<u8>> {
        let mut text = vec![0u8; DESCRIPTION_GUESS];
        loop {
            let mut len = 0usize;
            // SAFETY: live handle; `text` has room for `text.len()` bytes; valid out-pointer.
            let rc = unsafe {
                sys::px_subscriber_description(
                    self.raw.as_ptr(),
                    text.as_mut_ptr().cast::<c_char>(),
                    text.len(),
                    &mut len,
                )
            };
            if rc == sys::PX_OK {
                text.truncate(len);
                return Ok(text);
            }
            // Too small: the library says how long it is. Another thread's recv may change
            // the description before the next call, so this loops rather than trusting it.
            if rc == sys::PX_E_INVALID && len >= text.len() {
                text.resize(len + 1, 0);
                continue;
            }
            return Err(Error::last(rc));
        }
    }

    /// How long [`recv`](Self::recv) busy-polls for the next frame before it sleeps, as
    /// [`Channel::set_spin`](crate::Channel::set_spin): `Some(ZERO)` sleeps at once (no core
    /// spent waiting), `None` never sleeps (lowest latency, one core busy while waiting),
    /// otherwise up to that long (the default is [`Channel::DEFAULT_SPIN`](crate::Channel::DEFAULT_SPIN))
    /// unless the stream has more processes than this one has CPUs: then it sleeps at once.
    pub fn set_spin(&self, spin: Option<Duration>) -> Result<()> {
        let ns = timeout_ns(spin);
        // SAFETY: live handle.
        check(unsafe { sys::px_subscriber_set_spin_ns(self.raw.as_ptr(), ns) })
    }

    /// This subscriber's counters.
    pub fn stats(&self) -> Result<SubscriberStats> {
        let mut s = sys::px_subscriber_stats_t::default();
        // SAFETY: live handle; valid out-pointer.
        check(unsafe { sys::px_subscriber_get_stats(self.raw.as_ptr(), &mut s) })?;
        Ok(SubscriberStats {
            received: s.received,
            missed: s.missed,
            publisher_pid: s.publisher_pid,
        })
    }

    /// The C handle, still owned by `self`.
    pub fn as_raw(&self) -> *mut sys::px_subscriber_t {
        self.raw.as_ptr()
    }
}

impl AsRawFd for Subscriber {
    /// Pollable: readable when [`Subscriber::recv`] may not block (it may still answer
    /// [`Status::WouldBlock`] after taking a description record). Owned by the subscriber.
    /// `-1` when the process is out of fds (the subscriber made its wake-up fd lazily), which
    /// is why there is no `AsFd`: a `BorrowedFd` cannot be `-1`.
    fn as_raw_fd(&self) -> RawFd {
        // SAFETY: live handle.
        unsafe { sys::px_subscriber_fd(self.raw.as_ptr()) }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // SAFETY: we own the subscriber.
        unsafe { sys::px_subscriber_release(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl<'a> IntoIterator for &'a Subscriber {
    type Item = Result<Buffer>;
    type IntoIter = Frames<'a>;
    fn into_iter(self) -> Frames<'a> {
        self.iter()
    }
}

/// The frames of a [`Subscriber`], from [`Subscriber::iter`].
#[derive(Debug)]
pub struct Frames<'a> {
    subscriber: &'a Subscriber,
    done: bool,
}

impl Iterator for Frames<'_> {
    type Item = Result<Buffer>;

    fn next(&mut self) -> Option<Result<Buffer>> {
        if self.done {
            return None;
        }
        match self.subscriber.recv(None) {
            Ok(frame) => Some(Ok(frame)),
            Err(e) => {
                self.done = true;
                (e.status() != Status::Closed).then_some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Frames<'_> {}

/// The counters of the live publisher of `name`, in any process of this user, whether or not
/// it is publishing or polling (read from a page it keeps current). No live publisher of that
/// name is [`Status::Closed`] at once.
pub fn stream_stats(name: impl AsRef<Path>, timeout: Option<Duration>) -> Result<PublisherStats> {
    let name = c_name(name.as_ref())?;
    let mut s = sys::px_publisher_stats_t::default();
    // SAFETY: live C string; valid out-pointer.
    check(unsafe { sys::px_stream_stats(name.as_ptr(), timeout_ns(timeout), &mut s) })?;
    Ok(s.into())
}

/// One admitted subscriber of a stream as its publisher knows it
/// (`px_stream_subscriber_info_t`), from [`stream_subscribers`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// The subscriber's process (from the connection's credentials).
    pub pid: u64,
    /// Buffers it holds plus those queued for it now (at most `max_in_flight`).
    pub in_flight: u64,
    /// Frames sent to it since it joined, history included.
    pub delivered: u64,
    /// Frames it had no room for: what its own [`SubscriberStats::missed`] counts once a later
    /// frame reaches it.
    pub dropped: u64,
}

/// The admitted subscribers of the live publisher of `name`, in any process of this user, in
/// the order they joined, as of the publisher's last publish or poll (read like
/// [`stream_stats`]). No live publisher of that name is [`Status::Closed`] at once;
/// [`Status::Unsupported`] when that publisher's library keeps no such table.
pub fn stream_subscribers(
    name: impl AsRef<Path>,
    timeout: Option<Duration>,
) -> Result<Vec<SubscriberInfo>> {
    let name = c_name(name.as_ref())?;
    let ns = timeout_ns(timeout);
    let mut rows = vec![sys::px_stream_subscriber_info_t::default(); 16];
    loop {
        let mut count = 0usize;
        // SAFETY: live C string; `rows` has room for `rows.len()` entries; valid out-pointer.
        check(unsafe {
            sys::px_stream_subscribers(name.as_ptr(), ns, rows.as_mut_ptr(), rows.len(), &mut count)
        })?;
        // More joined than there was room for: read again with room for them all (they may
        // keep joining, so this loops rather than trusting one count).
        if count > rows.len() {
            rows.resize(count, sys::px_stream_subscriber_info_t::default());
            continue;
        }
        rows.truncate(count);
        return Ok(rows
            .iter()
            .map(|r| SubscriberInfo {
                pid: r.pid,
                in_flight: r.in_flight,
                delivered: r.delivered,
                dropped: r.dropped,
            })
            .collect());
    }
}

/// The names of the live streams in the runtime directory (stale sockets are skipped, not
/// removed; streams named by a socket path elsewhere are not listed), in the order the
/// directory gives them.
pub fn list_streams() -> Result<Vec<String>> {
    /// Called by the library for each name; nothing in it can unwind into C but an
    /// allocation failure, which aborts anyway.
    unsafe extern "C" fn collect(name: *const c_char, ctx: *mut c_void) {
        // SAFETY: ctx is the Vec below, borrowed for the call; name is a live C string.
        let names = unsafe { &mut *ctx.cast::<Vec<String>>() };
        names.push(
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned(),
        );
    }
    let mut names: Vec<String> = Vec::new();
    let ctx = std::ptr::from_mut(&mut names).cast::<c_void>();
    // SAFETY: the callback matches px_stream_list_fn and ctx outlives the call.
    check(unsafe { sys::px_stream_list(Some(collect), ctx) })?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_are_the_c_defaults() {
        let o = PublisherOptions::default();
        assert_eq!(o.slow_policy, SlowPolicy::Drop);
        assert_eq!((o.max_subscribers, o.max_in_flight, o.history), (64, 8, 0));
        assert_eq!(o.block_timeout, Some(Duration::from_secs(1)));
    }

    #[test]
    fn options_round_trip_through_the_c_struct() {
        for policy in [SlowPolicy::Drop, SlowPolicy::Block, SlowPolicy::Disconnect] {
            let o = PublisherOptions {
                slow_policy: policy,
                history: 3,
                block_timeout: None,
                ..PublisherOptions::default()
            };
            let c = o.to_c();
            assert_eq!(c.struct_size as usize, std::mem::size_of_val(&c));
            assert_eq!(c.block_timeout_ns, -1);
            assert_eq!(PublisherOptions::from_c(&c), o);
        }
    }
}
