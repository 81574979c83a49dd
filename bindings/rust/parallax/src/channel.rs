// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Channels: connections between processes that carry buffers zero-copy, and the listener
//! that accepts them. Also the low-level fd passing for programs with their own sockets.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::time::Duration;

use parallax_sys as sys;

use crate::buffer::Buffer;
use crate::error::{c_string, check, Error, Result, Status};
use crate::segment::make;
use crate::timeout_ns;

/// Counters of one channel end (`px_channel_stats_t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Buffers sent through this end.
    pub buffers_sent: u64,
    /// Buffers received through this end.
    pub buffers_received: u64,
    /// Segments whose fd this end has sent.
    pub segments_registered: u64,
    /// Pool slots sent to the peer and not yet returned.
    pub slots_lent: u64,
    /// Slot returns from the peer that matched a loan.
    pub returns_accepted: u64,
    /// Returns of slots never lent, or returned twice.
    pub returns_refused: u64,
    /// Slots taken back because the peer went away.
    pub slots_reclaimed: u64,
    /// The peer's process id.
    pub peer_pid: u64,
}

/// One end of a connection between two processes (`px_channel_t`). Every channel, however it
/// was made, starts with a handshake (protocol version, peer credentials: same uid by
/// default). Dropping it closes this end; the peer then sees [`Status::Closed`]. Buffers
/// received through it stay valid.
pub struct Channel {
    raw: NonNull<sys::px_channel_t>,
}

// SAFETY: channel calls may be made from any thread on a shared handle (API.md).
unsafe impl Send for Channel {}
// SAFETY: as above; send and recv are thread-safe C calls on `&self`.
unsafe impl Sync for Channel {}

fn c_path(path: &Path) -> Result<std::ffi::CString> {
    c_string("path", path.as_os_str().as_bytes())
}

impl Channel {
    /// Two connected ends in this process, made for `fork()`. After the fork the parent keeps
    /// one end and drops the other; the child keeps the other and drops the first. Drop the
    /// unused end even though the library now copes: a parent that kept the child's end open
    /// used to hold a dead child's slots out of the pool for good (the connection still looked
    /// alive); the library now watches the peer process and takes them back when it dies, but
    /// an open copy still pins the socket and memory until it is dropped. Also usable within
    /// one process, e.g. between threads.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parallax::{Channel, Metadata, Pool};
    ///
    /// let pool = Pool::shm(Some("frames"), 4, 4096)?;
    /// let (parent_end, child_end) = Channel::pair()?;
    /// // SAFETY: this program has one thread, and the child calls _exit when it is done.
    /// match unsafe { libc::fork() } {
    ///     -1 => panic!("fork: {}", std::io::Error::last_os_error()),
    ///     0 => {
    ///         drop(parent_end); // the child keeps child_end
    ///         let code = match child_end.recv(Some(Duration::from_secs(5))) {
    ///             Ok(frame) if &frame[..] == b"hello" => 0,
    ///             _ => 1,
    ///         };
    ///         // SAFETY: ends the child without running the parent's cleanup twice.
    ///         unsafe { libc::_exit(code) }
    ///     }
    ///     child => {
    ///         drop(child_end); // the parent keeps parent_end
    ///         let mut slot = pool.loan_timeout(Some(Duration::from_secs(5)))?;
    ///         slot[..5].copy_from_slice(b"hello");
    ///         parent_end.send(&slot.into_buffer(5, &Metadata::with_sequence(1))?)?;
    ///         let mut status = 0;
    ///         // SAFETY: waits for our own child; `status` is a valid out-pointer.
    ///         assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    ///         assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    ///     }
    /// }
    /// # Ok::<(), parallax::Error>(())
    /// ```
    pub fn pair() -> Result<(Channel, Channel)> {
        let mut a: *mut sys::px_channel_t = std::ptr::null_mut();
        let mut b: *mut sys::px_channel_t = std::ptr::null_mut();
        // SAFETY: valid out-pointers.
        check(unsafe { sys::px_channel_pair(&mut a, &mut b) })?;
        match (NonNull::new(a), NonNull::new(b)) {
            (Some(a), Some(b)) => Ok((Channel { raw: a }, Channel { raw: b })),
            (a, b) => {
                // SAFETY: release accepts NULL; each non-NULL end is ours.
                unsafe {
                    sys::px_channel_release(a.map_or(std::ptr::null_mut(), |p| p.as_ptr()));
                    sys::px_channel_release(b.map_or(std::ptr::null_mut(), |p| p.as_ptr()));
                }
                Err(Error::new(
                    Status::Internal,
                    "px_channel_pair reported success without two ends",
                ))
            }
        }
    }

    /// Connects to a [`Listener`] at `path`: `None` waits forever, `Some(ZERO)` polls.
    pub fn connect(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<Channel> {
        let path = c_path(path.as_ref())?;
        let ns = timeout_ns(timeout);
        // SAFETY: live C string; valid out-pointer.
        make(|out| unsafe { sys::px_channel_connect(path.as_ptr(), ns, out) })
            .map(|raw| Channel { raw })
    }

    /// Adopts a connected `AF_UNIX` `SOCK_SEQPACKET` socket (e.g. inherited from a parent) and
    /// runs the handshake, waiting up to 10 s for the peer. The fd is consumed, also on error.
    pub fn from_fd(socket: OwnedFd) -> Result<Channel> {
        let fd = socket.into_raw_fd();
        // SAFETY: we hand over ownership of fd; valid out-pointer.
        make(|out| unsafe { sys::px_channel_from_fd(fd, out) }).map(|raw| Channel { raw })
    }

    /// Sends a buffer zero-copy (its segment's fd crosses once, then only a small
    /// descriptor). The caller keeps its buffer. [`Status::Unsupported`] for heap and
    /// mapped-file memory; [`Status::Closed`] when the peer is gone.
    pub fn send(&self, buffer: &Buffer) -> Result<()> {
        // SAFETY: live handles.
        check(unsafe { sys::px_channel_send(self.raw.as_ptr(), buffer.as_raw()) })
    }

    /// As [`send`](Self::send), but waits at most `timeout` while the peer is too far behind
    /// to take another descriptor: `None` waits forever, `Some(ZERO)` gives
    /// [`Status::WouldBlock`] at once, otherwise [`Status::Timeout`] after that long.
    pub fn send_timeout(&self, buffer: &Buffer, timeout: Option<Duration>) -> Result<()> {
        let ns = timeout_ns(timeout);
        // SAFETY: live handles.
        check(unsafe { sys::px_channel_send_timeout(self.raw.as_ptr(), buffer.as_raw(), ns) })
    }

    /// How long [`recv`](Self::recv) busy-polls for the next buffer before it sleeps:
    /// `Some(ZERO)` sleeps at once (no core spent waiting), `None` never sleeps (lowest
    /// latency, one core busy while waiting), otherwise up to that long (the default is
    /// [`DEFAULT_SPIN`](Self::DEFAULT_SPIN)).
    pub fn set_spin(&self, spin: Option<Duration>) -> Result<()> {
        let ns = timeout_ns(spin);
        // SAFETY: live handle.
        check(unsafe { sys::px_channel_set_spin_ns(self.raw.as_ptr(), ns) })
    }

    /// The default busy-poll budget of [`recv`](Self::recv).
    pub const DEFAULT_SPIN: Duration = Duration::from_nanos(sys::PX_CHANNEL_DEFAULT_SPIN_NS as u64);

    /// Receives a buffer that points into the sender's memory (read-only), with its metadata.
    /// `None` waits forever; `Some(ZERO)` polls ([`Status::WouldBlock`]); otherwise
    /// [`Status::Timeout`]. A closed peer is [`Status::Closed`]; garbage from the peer is
    /// [`Status::Protocol`] (and the connection is dropped).
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Buffer> {
        let ns = timeout_ns(timeout);
        // SAFETY: live handle; valid out-pointer.
        let raw = make(|out| unsafe { sys::px_channel_recv(self.raw.as_ptr(), ns, out) })?;
        // SAFETY: a fresh handle we own; its memory is mapped read-only here, and the sender's
        // slot is not reused while any reference to it lives.
        Ok(unsafe { Buffer::from_raw(raw) })
    }

    /// Receives without waiting: `Ok(None)` when nothing is ready.
    pub fn try_recv(&self) -> Result<Option<Buffer>> {
        match self.recv(Some(Duration::ZERO)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.status() == Status::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// This end's counters.
    pub fn stats(&self) -> Result<ChannelStats> {
        let mut s = sys::px_channel_stats_t::default();
        // SAFETY: live handle; valid out-pointer.
        check(unsafe { sys::px_channel_get_stats(self.raw.as_ptr(), &mut s) })?;
        Ok(ChannelStats {
            buffers_sent: s.buffers_sent,
            buffers_received: s.buffers_received,
            segments_registered: s.segments_registered,
            slots_lent: s.slots_lent,
            returns_accepted: s.returns_accepted,
            returns_refused: s.returns_refused,
            slots_reclaimed: s.slots_reclaimed,
            peer_pid: s.peer_pid,
        })
    }

    /// The C handle, still owned by `self`.
    pub fn as_raw(&self) -> *mut sys::px_channel_t {
        self.raw.as_ptr()
    }
}

impl AsRawFd for Channel {
    /// Pollable: readable when `recv` may not block. Owned by the channel.
    fn as_raw_fd(&self) -> RawFd {
        // SAFETY: live handle.
        unsafe { sys::px_channel_fd(self.raw.as_ptr()) }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        let fd = self.as_raw_fd();
        assert!(fd >= 0, "px_channel_fd gave no fd for a live channel");
        // SAFETY: the channel owns this open fd while it lives.
        unsafe { BorrowedFd::borrow_raw(fd) }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // SAFETY: we own this end.
        unsafe { sys::px_channel_release(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

/// Listens for [`Channel::connect`] on a socket path (`px_listener_t`). Dropping it closes
/// the socket and removes the file.
pub struct Listener {
    raw: NonNull<sys::px_listener_t>,
}

// SAFETY: listener calls may be made from any thread on a shared handle.
unsafe impl Send for Listener {}
// SAFETY: as above.
unsafe impl Sync for Listener {}

impl Listener {
    /// Listens on `path` (socket file mode 0600). A stale socket file is replaced; one with a
    /// live listener is [`Status::Busy`]; any other existing file is [`Status::Invalid`].
    pub fn bind(path: impl AsRef<Path>) -> Result<Listener> {
        let path = c_path(path.as_ref())?;
        // SAFETY: live C string; valid out-pointer.
        make(|out| unsafe { sys::px_listener_new(path.as_ptr(), out) }).map(|raw| Listener { raw })
    }

    /// Accepts one connection and runs the handshake: `None` waits forever, `Some(ZERO)`
    /// polls.
    pub fn accept(&self, timeout: Option<Duration>) -> Result<Channel> {
        let ns = timeout_ns(timeout);
        // SAFETY: live handle; valid out-pointer.
        make(|out| unsafe { sys::px_listener_accept(self.raw.as_ptr(), ns, out) })
            .map(|raw| Channel { raw })
    }

    /// The C handle, still owned by `self`.
    pub fn as_raw(&self) -> *mut sys::px_listener_t {
        self.raw.as_ptr()
    }
}

impl AsRawFd for Listener {
    /// Pollable: readable when `accept` may not block. Owned by the listener.
    fn as_raw_fd(&self) -> RawFd {
        // SAFETY: live handle.
        unsafe { sys::px_listener_fd(self.raw.as_ptr()) }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        let fd = self.as_raw_fd();
        assert!(fd >= 0, "px_listener_fd gave no fd for a live listener");
        // SAFETY: the listener owns this open fd while it lives.
        unsafe { BorrowedFd::borrow_raw(fd) }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // SAFETY: we own the listener.
        unsafe { sys::px_listener_release(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

/// Sends one fd over a connected `AF_UNIX` socket (`SCM_RIGHTS`). The caller keeps `fd`.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: both fds are open for the call.
    check(unsafe { sys::px_ipc_send_fd(socket.as_raw_fd(), fd.as_raw_fd()) })
}

/// Receives one fd (close-on-exec) sent with [`send_fd`] or `px_ipc_send_fd`. A message
/// without an fd, or with truncated control data, is [`Status::Protocol`]; a closed peer is
/// [`Status::Closed`].
pub fn recv_fd(socket: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<OwnedFd> {
    let mut fd: i32 = -1;
    // SAFETY: socket is open for the call; valid out-pointer.
    check(unsafe { sys::px_ipc_recv_fd(socket.as_raw_fd(), timeout_ns(timeout), &mut fd) })?;
    if fd < 0 {
        return Err(Error::new(
            Status::Internal,
            "px_ipc_recv_fd reported success without an fd",
        ));
    }
    // SAFETY: the library hands us a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
