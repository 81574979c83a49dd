// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tokio integration (the `tokio` feature): `recv().await` on a channel's receiving end or a
//! stream subscriber, and [`Stream`]s of their buffers, driven by the reactor watching the
//! handle's pollable fd (no thread per channel, nothing spinning).
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use parallax::{AsyncChannel, AsyncSubscriber, Channel, Subscriber};
//!
//! # async fn f(a: Channel, b: Subscriber) -> parallax::Result<()> {
//! let channel = AsyncChannel::new(a)?;
//! let first = channel.recv().await?; // Err(Closed) once the peer is gone
//! let mut frames = AsyncSubscriber::new(b)?; // a Stream that ends with the stream
//! while let Some(frame) = frames.next().await {
//!     println!("{} bytes", frame?.len());
//! }
//! # Ok(()) }
//! ```
//!
//! Every future and stream here is cancellation-safe: a buffer is taken from the channel only
//! in the poll that returns it, so a `recv()` dropped by `select!` or
//! `tokio::time::timeout` loses nothing, and the next `recv()` gets that buffer.
//!
//! How it waits: `px_channel_fd`/`px_subscriber_fd` is readable when a receive may not block.
//! Each poll first receives without waiting; only when that answers "nothing yet" does it wait
//! for the fd, and it clears the fd's readiness only after a receive that found nothing (a
//! readable fd may have more than one buffer behind it, or a description record and no frame).
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::{FusedStream, Stream};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::buffer::Buffer;
use crate::channel::Channel;
use crate::error::{Error, Result, Status};
use crate::stream::Subscriber;

/// What the two receiving handles share: a receive that never waits.
trait TryRecv: AsRawFd {
    fn try_recv(&self) -> Result<Option<Buffer>>;
}

impl TryRecv for Channel {
    fn try_recv(&self) -> Result<Option<Buffer>> {
        Channel::try_recv(self)
    }
}

impl TryRecv for Subscriber {
    fn try_recv(&self) -> Result<Option<Buffer>> {
        Subscriber::try_recv(self)
    }
}

/// A receiving handle registered with the Tokio reactor, and whether its stream has ended.
struct Receiver<T: TryRecv> {
    fd: AsyncFd<T>,
    done: bool,
}

impl<T: TryRecv> Receiver<T> {
    fn new(what: &str, handle: T) -> Result<Receiver<T>> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::new(
                Status::Invalid,
                format!("{what}: not inside a Tokio runtime (make it from within one)"),
            ));
        }
        if handle.as_raw_fd() < 0 {
            // The library made its pollable fd lazily and the process is out of fds; the
            // library's message says so.
            return Err(Error::last(crate::sys::PX_E_IO));
        }
        // SAFETY: the fd is the handle's own (px_channel_fd / px_subscriber_fd: made once,
        // open and the same while the handle lives), and the AsyncFd owns the handle, so the
        // fd outlives the registration.
        let fd = unsafe { AsyncFd::register_with_interest(handle, Interest::READABLE) }.map_err(
            |e| {
                io_error(
                    what,
                    "registering the fd with the Tokio reactor",
                    e.into_parts().1,
                )
            },
        )?;
        Ok(Receiver { fd, done: false })
    }

    /// Receives a buffer, waiting as long as it takes. Through tokio's `readable()`, which
    /// wakes every task waiting on the fd (the poll functions wake only the latest), so that
    /// several tasks can wait on one handle. The only await is on readiness, with no buffer in
    /// hand: dropping the future there loses nothing.
    async fn recv(&self, what: &str) -> Result<Buffer> {
        if let Some(b) = self.fd.get_ref().try_recv()? {
            return Ok(b);
        }
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| io_error(what, "waiting for the fd", e))?;
            match self.fd.get_ref().try_recv()? {
                Some(b) => return Ok(b),
                None => guard.clear_ready(),
            }
        }
    }

    /// Receives a buffer, or registers the task to be woken when the fd turns readable (only
    /// the task of the latest call: tokio keeps one waker for the poll functions).
    fn poll_recv(&self, what: &str, cx: &mut Context<'_>) -> Poll<Result<Buffer>> {
        // A buffer may already be waiting (the fd's readiness is only a hint of it): take it
        // without waiting first.
        if let Some(b) = self.fd.get_ref().try_recv()? {
            return Poll::Ready(Ok(b));
        }
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))
                .map_err(|e| io_error(what, "waiting for the fd", e))?;
            match self.fd.get_ref().try_recv()? {
                // The readiness stays: more may be behind it.
                Some(b) => return Poll::Ready(Ok(b)),
                // Nothing after all (a stale readiness, or a record that was not a buffer):
                // clear it and wait again. A readiness that arrived since the guard was taken
                // is kept by tokio, so no wake-up is lost between the look and the clear.
                None => guard.clear_ready(),
            }
        }
    }

    /// The next item of the stream of buffers: it ends at [`Status::Closed`]; any other error
    /// is yielded once, and then it ends too (as [`Subscriber::iter`] does).
    fn poll_next(&mut self, what: &str, cx: &mut Context<'_>) -> Poll<Option<Result<Buffer>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match ready!(self.poll_recv(what, cx)) {
            Ok(b) => Poll::Ready(Some(Ok(b))),
            Err(e) => {
                self.done = true;
                Poll::Ready((e.status() != Status::Closed).then_some(Err(e)))
            }
        }
    }
}

fn io_error(what: &str, doing: &str, e: std::io::Error) -> Error {
    Error::new(Status::Io, format!("{what}: {doing}: {e}"))
}

/// A [`Channel`] whose receiving side is awaited on a Tokio runtime (with I/O enabled):
/// [`recv`](Self::recv) and a [`Stream`] of buffers that ends when the peer has gone. Sending
/// goes through [`get_ref`](Self::get_ref) (it never waits for long: [`Channel::send`]).
///
/// One channel, one `AsyncChannel`: the fd can be registered with the reactor once.
pub struct AsyncChannel {
    rx: Receiver<Channel>,
}

impl AsyncChannel {
    /// Registers `channel`'s pollable fd with the current Tokio runtime. Outside a runtime,
    /// [`Status::Invalid`]; a runtime without I/O enabled panics, as tokio's own I/O types do.
    pub fn new(channel: Channel) -> Result<AsyncChannel> {
        Ok(AsyncChannel {
            rx: Receiver::new("AsyncChannel::new", channel)?,
        })
    }

    /// The next buffer (read-only, into the sender's memory), waiting without blocking the
    /// thread. [`Status::Closed`] once the peer has gone and everything it sent was received;
    /// [`Status::Protocol`] for garbage from the peer. Cancellation-safe: dropping the future
    /// loses no buffer. Several tasks may wait on one channel; each buffer goes to one of them.
    pub async fn recv(&self) -> Result<Buffer> {
        self.rx.recv("AsyncChannel::recv").await
    }

    /// [`recv`](Self::recv) as a poll function, for hand-written futures. Only the task of
    /// the latest call is woken (tokio keeps one waker for it): for several tasks on one
    /// handle, use [`recv`](Self::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Buffer>> {
        self.rx.poll_recv("AsyncChannel::recv", cx)
    }

    /// The channel, e.g. to send or read its stats.
    pub fn get_ref(&self) -> &Channel {
        self.rx.fd.get_ref()
    }

    /// Deregisters the fd and gives the channel back.
    pub fn into_inner(self) -> Channel {
        self.rx.fd.into_inner()
    }
}

impl Stream for AsyncChannel {
    type Item = Result<Buffer>;

    /// The next buffer; `None` once the peer has gone (after everything it sent). Any other
    /// error is yielded once, and the stream ends after it.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().rx.poll_next("AsyncChannel", cx)
    }
}

impl FusedStream for AsyncChannel {
    fn is_terminated(&self) -> bool {
        self.rx.done
    }
}

impl AsRawFd for AsyncChannel {
    fn as_raw_fd(&self) -> RawFd {
        self.get_ref().as_raw_fd()
    }
}

impl std::fmt::Debug for AsyncChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncChannel")
            .field("channel", self.get_ref())
            .field("ended", &self.rx.done)
            .finish()
    }
}

/// A [`Subscriber`] awaited on a Tokio runtime (with I/O enabled): [`recv`](Self::recv) and a
/// [`Stream`] of frames that ends with the stream (the publisher gone and everything it sent
/// received).
pub struct AsyncSubscriber {
    rx: Receiver<Subscriber>,
}

impl AsyncSubscriber {
    /// Registers `subscriber`'s pollable fd with the current Tokio runtime. Outside a runtime,
    /// [`Status::Invalid`]; a process out of fds, [`Status::Io`]; a runtime without I/O
    /// enabled panics, as tokio's own I/O types do.
    pub fn new(subscriber: Subscriber) -> Result<AsyncSubscriber> {
        Ok(AsyncSubscriber {
            rx: Receiver::new("AsyncSubscriber::new", subscriber)?,
        })
    }

    /// The next frame, waiting without blocking the thread. [`Status::Closed`] once the
    /// publisher is gone and everything it sent has been received. Cancellation-safe: dropping
    /// the future loses no frame.
    pub async fn recv(&self) -> Result<Buffer> {
        self.rx.recv("AsyncSubscriber::recv").await
    }

    /// [`recv`](Self::recv) as a poll function, for hand-written futures. Only the task of
    /// the latest call is woken (tokio keeps one waker for it): for several tasks on one
    /// handle, use [`recv`](Self::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Buffer>> {
        self.rx.poll_recv("AsyncSubscriber::recv", cx)
    }

    /// The subscriber, e.g. for its description or stats.
    pub fn get_ref(&self) -> &Subscriber {
        self.rx.fd.get_ref()
    }

    /// Deregisters the fd and gives the subscriber back.
    pub fn into_inner(self) -> Subscriber {
        self.rx.fd.into_inner()
    }
}

impl Stream for AsyncSubscriber {
    type Item = Result<Buffer>;

    /// The next frame; `None` once the stream has ended. Any other error is yielded once, and
    /// the stream ends after it.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().rx.poll_next("AsyncSubscriber", cx)
    }
}

impl FusedStream for AsyncSubscriber {
    fn is_terminated(&self) -> bool {
        self.rx.done
    }
}

impl AsRawFd for AsyncSubscriber {
    fn as_raw_fd(&self) -> RawFd {
        self.get_ref().as_raw_fd()
    }
}

impl std::fmt::Debug for AsyncSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSubscriber")
            .field("subscriber", self.get_ref())
            .field("ended", &self.rx.done)
            .finish()
    }
}
