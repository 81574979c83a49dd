// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Channels and listeners: buffers between ends zero-copy (in one process, between threads
//! and between processes), slot return, closing, polling, timeouts, hostile peers, bad input.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_err, pattern, TempDir};
use parallax::{
    recv_fd, send_fd, Buffer, Channel, Listener, MapFlags, Metadata, Pool, Segment, Status,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

fn shm_pool(slots: usize, slot_size: usize) -> Pool {
    Pool::shm(Some("rust-channel"), slots, slot_size).unwrap()
}

/// A frame of `len` bytes with the examples' pattern for `seq`.
fn frame(pool: &Pool, seq: u64, len: usize) -> Buffer {
    let mut slot = pool.loan_timeout(WAIT).unwrap();
    for (j, b) in slot[..len].iter_mut().enumerate() {
        *b = pattern(seq, j);
    }
    let mut meta = Metadata::with_sequence(seq);
    meta.pts_ns = Some(1_000 + seq as i64);
    meta.flags = 0x5;
    meta.set_user(format!("frame {seq}").as_bytes()).unwrap();
    slot.into_buffer(len, &meta).unwrap()
}

#[track_caller]
fn assert_frame(buf: &Buffer, seq: u64, len: usize) {
    assert_eq!(buf.len(), len);
    let m = buf.metadata();
    assert_eq!(m.sequence, seq);
    assert_eq!(m.pts_ns, Some(1_000 + seq as i64));
    assert_eq!(m.dts_ns, None);
    assert_eq!(m.flags, 0x5);
    assert_eq!(m.user(), format!("frame {seq}").as_bytes());
    if let Some(j) = (0..len).find(|&j| buf[j] != pattern(seq, j)) {
        panic!(
            "frame {seq}: byte {j} is {} instead of {}",
            buf[j],
            pattern(seq, j)
        );
    }
}

/// Waits until the pool has `n` free slots (returns from a peer may be taken back lazily).
#[track_caller]
fn wait_available(pool: &Pool, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.available() != n {
        assert!(
            Instant::now() < deadline,
            "pool has {} free slots, expected {n}",
            pool.available()
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// poll(2) for readability with a timeout in milliseconds.
fn readable(fd: &impl AsRawFd, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    n == 1 && (p.revents & libc::POLLIN) != 0
}

fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: valid array of two ints; the fds are ours afterwards.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "socketpair failed");
    // SAFETY: fresh fds.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn a_pair_carries_buffers_zero_copy_read_only_with_metadata() {
    let pool = shm_pool(4, 4096);
    let (a, b) = Channel::pair().unwrap();
    let sent = frame(&pool, 7, 3000);
    a.send(&sent).unwrap();
    let got = b.recv(WAIT).unwrap();
    assert_frame(&got, 7, 3000);
    assert!(got.is_readonly(), "received memory must be read-only");
    assert!(
        !sent.is_readonly(),
        "the sender keeps its writable reference"
    );
    assert_frame(&sent, 7, 3000);

    let (sa, sb) = (a.stats().unwrap(), b.stats().unwrap());
    assert_eq!((sa.buffers_sent, sa.segments_registered), (1, 1));
    assert_eq!(sb.buffers_received, 1);
    assert_eq!(u64::from(std::process::id()), sa.peer_pid);

    // The slot comes back only when both the sender's and the receiver's references are gone.
    drop(sent);
    assert_eq!(pool.available(), 3);
    drop(got);
    wait_available(&pool, 4);
}

#[test]
fn a_segment_crosses_once_then_only_descriptors() {
    let pool = shm_pool(4, 1024);
    let (a, b) = Channel::pair().unwrap();
    for seq in 0..10 {
        a.send(&frame(&pool, seq, 1000)).unwrap();
        assert_frame(&b.recv(WAIT).unwrap(), seq, 1000);
    }
    let s = a.stats().unwrap();
    assert_eq!((s.buffers_sent, s.segments_registered), (10, 1));
    // Either end can send.
    let other = shm_pool(1, 64);
    b.send(&frame(&other, 99, 64)).unwrap();
    assert_frame(&a.recv(WAIT).unwrap(), 99, 64);
    wait_available(&pool, 4);
    wait_available(&other, 1);
}

#[test]
fn recv_polls_and_times_out() {
    let (a, b) = Channel::pair().unwrap();
    assert_err(b.recv(Some(Duration::ZERO)), Status::WouldBlock, "");
    assert!(b.try_recv().unwrap().is_none());
    let t0 = Instant::now();
    assert_err(b.recv(Some(Duration::from_millis(30))), Status::Timeout, "");
    assert!(
        t0.elapsed() >= Duration::from_millis(25),
        "{:?}",
        t0.elapsed()
    );
    assert!(!readable(&b, 0));
    let pool = shm_pool(1, 64);
    a.send(&frame(&pool, 1, 64)).unwrap();
    assert!(
        readable(&b, 5000),
        "the channel fd is readable once a buffer is waiting"
    );
    assert_frame(&b.try_recv().unwrap().expect("a buffer was ready"), 1, 64);
    assert!(b.as_fd().as_raw_fd() >= 0);
    assert!(format!("{b:?}").contains("fd"));
}

/// A timeout longer than `i64::MAX` nanoseconds waits forever (as `None` does), and exactly
/// `i64::MAX` ns is a finite wait just as long in practice: each recv returns the buffer a
/// sender publishes 200 ms later, never a timeout or an immediate error.
#[test]
fn recv_with_a_timeout_beyond_i64_nanoseconds_waits_for_the_sender() {
    let max_ns = i64::MAX as u64;
    for timeout in [
        Duration::MAX,
        Duration::from_nanos(max_ns + 1),
        Duration::from_nanos(max_ns),
    ] {
        let (a, b) = Channel::pair().unwrap();
        let pool = shm_pool(1, 64);
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            a.send(&frame(&pool, 7, 64)).unwrap();
            a // kept open until the receiver has its buffer
        });
        let t0 = Instant::now();
        let got = b.recv(Some(timeout));
        let waited = t0.elapsed();
        let _a = sender.join().unwrap();
        assert_frame(
            &got.unwrap_or_else(|e| panic!("recv({timeout:?}): {e}")),
            7,
            64,
        );
        assert!(
            waited >= Duration::from_millis(150),
            "{timeout:?}: returned after {waited:?}"
        );
    }
}

#[test]
fn heap_and_file_memory_cannot_be_sent() {
    let (a, _b) = Channel::pair().unwrap();
    let heap = Pool::heap(1, 4096).unwrap();
    let buf = heap
        .loan()
        .unwrap()
        .into_buffer(10, &Metadata::default())
        .unwrap();
    assert_err(a.send(&buf), Status::Unsupported, "");
    let dir = TempDir::new("send-file");
    let file = Segment::file_create(dir.file("f"), 4096).unwrap();
    // SAFETY: nothing writes the file while the buffer lives.
    let fbuf = unsafe { Buffer::from_segment(&file, &Metadata::default()) }.unwrap();
    assert_err(a.send(&fbuf), Status::Unsupported, "");
    assert_eq!(a.stats().unwrap().buffers_sent, 0);
}

#[test]
fn a_closed_end_is_closed_for_the_peer_and_received_buffers_stay_valid() {
    let pool = shm_pool(2, 256);
    let (a, b) = Channel::pair().unwrap();
    a.send(&frame(&pool, 3, 256)).unwrap();
    let got = b.recv(WAIT).unwrap();
    drop(a);
    assert_err(b.recv(WAIT), Status::Closed, "");
    assert_err(b.send(&frame(&pool, 4, 256)), Status::Closed, "");
    drop(b);
    assert_frame(&got, 3, 256);
    drop(got);
    wait_available(&pool, 2);
}

#[test]
fn threads_share_one_channel() {
    let pool = Arc::new(shm_pool(8, 512));
    let (a, b) = Channel::pair().unwrap();
    let a = Arc::new(a);
    let senders: Vec<_> = (0..2u64)
        .map(|t| {
            let (a, pool) = (a.clone(), pool.clone());
            thread::spawn(move || {
                for i in 0..100 {
                    a.send(&frame(&pool, t * 1000 + i, 512)).unwrap();
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    for _ in 0..200 {
        let buf = b.recv(WAIT).unwrap();
        let seq = buf.metadata().sequence;
        assert_frame(&buf, seq, 512);
        seen.push(seq);
    }
    for s in senders {
        s.join().unwrap();
    }
    seen.sort_unstable();
    let expected: Vec<u64> = (0..100).chain(1000..1100).collect();
    assert_eq!(seen, expected);
    wait_available(&pool, 8);
}

#[test]
fn listener_accepts_connections_on_a_socket_path() {
    let dir = TempDir::new("listen");
    let path = dir.file("px.sock");
    let listener = Listener::bind(&path).unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert_err(
        listener.accept(Some(Duration::ZERO)),
        Status::WouldBlock,
        "",
    );
    assert_err(
        listener.accept(Some(Duration::from_millis(20))),
        Status::Timeout,
        "",
    );
    assert!(!readable(&listener, 0));

    let client = {
        let path = path.clone();
        thread::spawn(move || {
            let ch = Channel::connect(&path, WAIT).unwrap();
            let pool = shm_pool(2, 128);
            ch.send(&frame(&pool, 42, 128)).unwrap();
            assert_frame(&ch.recv(WAIT).unwrap(), 43, 100);
            wait_available(&pool, 2);
        })
    };
    let server = listener.accept(WAIT).unwrap();
    assert_frame(&server.recv(WAIT).unwrap(), 42, 128);
    let pool = shm_pool(1, 100);
    server.send(&frame(&pool, 43, 100)).unwrap();
    client.join().unwrap();
    assert!(listener.as_fd().as_raw_fd() >= 0);

    // A second listener on a live path is busy; after drop the file is gone.
    assert_err(Listener::bind(&path), Status::Busy, "");
    drop(listener);
    assert!(!path.exists(), "the listener removes its socket file");
}

#[test]
fn listener_and_connect_bad_input() {
    let dir = TempDir::new("listen-bad");
    assert_err(Listener::bind(dir.file("a\0b")), Status::Invalid, "NUL");
    assert_err(
        Channel::connect(dir.file("a\0b"), WAIT),
        Status::Invalid,
        "NUL",
    );
    let regular = dir.file("regular");
    std::fs::write(&regular, b"not a socket").unwrap();
    assert_err(Listener::bind(&regular), Status::Invalid, "");
    assert_eq!(
        std::fs::read(&regular).unwrap(),
        b"not a socket",
        "never removed a regular file"
    );
    let long = dir.file(&"x".repeat(200));
    assert_err(Listener::bind(&long), Status::Invalid, "");
    assert!(Listener::bind(dir.file("missing-dir/px.sock")).is_err());
    let e = Channel::connect(dir.file("nobody.sock"), Some(Duration::from_millis(50))).unwrap_err();
    assert!(!e.message().is_empty());
    assert!(
        matches!(e.status(), Status::Io | Status::Timeout | Status::Closed),
        "{e}"
    );
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = TempDir::new("stale");
    let path = dir.file("stale.sock");
    // A socket file nobody listens on any more.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let listener = Listener::bind(&path).unwrap();
    let t = thread::spawn(move || listener.accept(WAIT).map(|_| ()));
    let _client = Channel::connect(&path, WAIT).unwrap();
    t.join().unwrap().unwrap();
}

#[test]
fn from_fd_adopts_a_seqpacket_socket() {
    let (x, y) = seqpacket_pair();
    let other = thread::spawn(move || Channel::from_fd(y));
    let ours = Channel::from_fd(x).unwrap();
    let theirs = other.join().unwrap().unwrap();
    let pool = shm_pool(1, 64);
    ours.send(&frame(&pool, 5, 64)).unwrap();
    assert_frame(&theirs.recv(WAIT).unwrap(), 5, 64);
}

#[test]
fn from_fd_refuses_garbage_and_non_sockets() {
    // A peer that answers the handshake with garbage.
    let (x, y) = seqpacket_pair();
    let garbage = thread::spawn(move || {
        let mut buf = [0u8; 256];
        // SAFETY: valid fd and buffer.
        unsafe {
            libc::recv(y.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0);
            let junk = b"\xff\xfe not a parallax handshake \x00\x01";
            libc::send(y.as_raw_fd(), junk.as_ptr().cast(), junk.len(), 0);
        }
        thread::sleep(Duration::from_millis(200));
        drop(y);
    });
    assert_err(Channel::from_fd(x), Status::Protocol, "");
    garbage.join().unwrap();

    // A peer that hangs up at once.
    let (x, y) = seqpacket_pair();
    drop(y);
    let e = Channel::from_fd(x).unwrap_err();
    assert!(
        matches!(e.status(), Status::Closed | Status::Protocol),
        "{e}"
    );

    // Not a seqpacket socket.
    let (s, _t) = UnixStream::pair().unwrap();
    assert_err(Channel::from_fd(s.into()), Status::Invalid, "");
    let dir = TempDir::new("fromfd");
    let f = std::fs::File::create(dir.file("f")).unwrap();
    assert_err(Channel::from_fd(f.into()), Status::Invalid, "");
}

#[test]
fn fds_pass_over_a_plain_unix_socket() {
    let (s, t) = UnixStream::pair().unwrap();
    let seg = Segment::shm(Some("fd-pass"), 4096).unwrap();
    // SAFETY: nothing else uses the segment yet.
    unsafe { seg.as_mut_slice().unwrap()[..4].copy_from_slice(b"fdok") };
    let handle = seg.ipc_handle().unwrap();
    assert_err(
        recv_fd(t.as_fd(), Some(Duration::ZERO)),
        Status::WouldBlock,
        "",
    );
    send_fd(s.as_fd(), handle.fd).unwrap();
    let fd = recv_fd(t.as_fd(), WAIT).unwrap();
    // SAFETY: valid fd.
    let fdflags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(
        fdflags & libc::FD_CLOEXEC != 0,
        "received fds are close-on-exec"
    );
    let peer = Segment::from_fd(fd.as_fd(), handle.size as usize, MapFlags::READONLY).unwrap();
    assert_eq!(unsafe { &peer.as_slice()[..4] }, b"fdok");

    // Bytes without an fd are a protocol error; a closed peer is Closed.
    (&s).write_all(b"no fd here").unwrap();
    assert_err(recv_fd(t.as_fd(), WAIT), Status::Protocol, "");
    drop(s);
    assert_err(recv_fd(t.as_fd(), WAIT), Status::Closed, "");
    let (r, _w) = std::io::pipe().unwrap();
    assert!(
        send_fd(r.as_fd(), handle.fd).is_err(),
        "a pipe is not a socket"
    );
}

// ---- Between processes: this test binary re-runs itself as the peer. ----

const ROLE: &str = "PX_RUST_TEST_CHILD_ROLE";
const SOCKET: &str = "PX_RUST_TEST_CHILD_SOCKET";
const FRAMES: u64 = 24;
const FRAME_BYTES: usize = 64 << 10;

/// The peer process; killed if a test fails before it is done with it.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn_child(role: &str, socket: &Path) -> ChildGuard {
    ChildGuard(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_peer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .env(SOCKET, socket)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Reads the child's stdout until it prints `marker` (libtest prints its own text too, even
/// on the same line: "test child_process_peer ... PX-CHILD: ...").
fn wait_for_line(child: &mut ChildGuard, marker: &str) {
    let out = child.0.stdout.as_mut().unwrap();
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the child exited before printing {marker:?}");
        if line.contains(marker) {
            return;
        }
    }
}

/// Waits for the child to exit (at most 20 s; killed after that) and returns its status.
fn wait_child(child: &mut ChildGuard) -> std::process::ExitStatus {
    let child = &mut child.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child process did not finish in 20 s");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The child's side, run only when a test above spawns it.
#[test]
#[ignore = "the peer process of the cross-process tests; they run it"]
fn child_process_peer() {
    let (Ok(role), Some(socket)) = (std::env::var(ROLE), std::env::var_os(SOCKET)) else {
        println!("child_process_peer: not spawned by a cross-process test, nothing to do");
        return;
    };
    let ch = Channel::connect(&socket, WAIT).unwrap();
    match role.as_str() {
        // Sends FRAMES frames from a 4-slot pool: needs the parent to give slots back.
        "producer" => {
            let pool = shm_pool(4, FRAME_BYTES);
            for seq in 0..FRAMES {
                ch.send(&frame(&pool, seq, FRAME_BYTES)).unwrap();
            }
            assert_err(ch.recv(WAIT), Status::Closed, "");
            wait_available(&pool, 4);
            println!("PX-CHILD: all slots back");
        }
        // Receives and holds 3 buffers, then waits to be killed.
        "holder" => {
            let held: Vec<Buffer> = (0..3).map(|_| ch.recv(WAIT).unwrap()).collect();
            assert!(held.iter().all(|b| b.is_readonly()));
            println!("PX-CHILD: holding");
            std::io::stdout().flush().unwrap();
            thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn buffers_cross_processes_and_slots_come_back() {
    let dir = TempDir::new("xproc");
    let path = dir.file("p.sock");
    let listener = Listener::bind(&path).unwrap();
    let mut child = spawn_child("producer", &path);
    let ch = listener.accept(WAIT).unwrap();
    assert_eq!(ch.stats().unwrap().peer_pid, u64::from(child.0.id()));
    let mut kept = Vec::new();
    for seq in 0..FRAMES {
        let buf = ch.recv(WAIT).unwrap();
        assert_frame(&buf, seq, FRAME_BYTES);
        assert!(buf.is_readonly());
        if seq < 2 {
            kept.push(buf); // held a while: the producer still has 2 slots to cycle through
        }
    }
    drop(kept);
    drop(ch);
    wait_for_line(&mut child, "PX-CHILD: all slots back");
    assert!(wait_child(&mut child).success());
}

#[test]
fn slots_held_by_a_killed_receiver_come_back() {
    let dir = TempDir::new("kill");
    let path = dir.file("k.sock");
    let listener = Listener::bind(&path).unwrap();
    let mut child = spawn_child("holder", &path);
    let ch = listener.accept(WAIT).unwrap();
    let pool = shm_pool(4, 4096);
    for seq in 0..3 {
        ch.send(&frame(&pool, seq, 4096)).unwrap();
    }
    wait_for_line(&mut child, "PX-CHILD: holding");
    assert_eq!(pool.available(), 1, "the child holds three slots");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    wait_available(&pool, 4);
    let s = ch.stats().unwrap();
    assert_eq!(s.slots_reclaimed, 3);
    assert_eq!(s.slots_lent, 0);
}

#[test]
fn send_timeout_applies_backpressure_when_the_peer_is_behind() {
    let seg = Segment::shm(Some("backpressure"), 4096).unwrap();
    // SAFETY: nothing writes the segment while the buffer lives.
    let buf = unsafe { Buffer::from_segment(&seg, &Metadata::with_sequence(1)) }.unwrap();
    let (a, b) = Channel::pair().unwrap();
    // The sender fills the channel in its own thread, so that a send that blocks despite its
    // timeout fails this test instead of hanging it (dropping `b` then unblocks it).
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let sender = thread::spawn(move || {
        let mut sent = 0u64;
        let full = loop {
            match a.send_timeout(&buf, Some(Duration::ZERO)) {
                Ok(()) => sent += 1,
                Err(e) => break Some(e),
            }
            if sent == 1_000_000 {
                break None; // never pushed back
            }
        };
        let _ = done_tx.send(());
        (a, buf, sent, full)
    });
    if done_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        drop(b);
        let _ = sender.join();
        panic!("send_timeout(Some(ZERO)) blocked on a peer that does not receive");
    }
    let (a, buf, sent, full) = sender.join().unwrap();
    let full = full.expect("a million sends to a peer that never receives met no backpressure");
    assert_eq!(full.status(), Status::WouldBlock, "{full}");
    assert!(sent > 0);
    let t0 = Instant::now();
    assert_err(
        a.send_timeout(&buf, Some(Duration::from_millis(30))),
        Status::Timeout,
        "",
    );
    assert!(t0.elapsed() >= Duration::from_millis(25));
    // Taking one makes room again; everything sent arrives intact and in order.
    assert_eq!(b.recv(WAIT).unwrap().metadata().sequence, 1);
    a.send_timeout(&buf, WAIT).unwrap();
    for _ in 0..sent {
        let got = b.recv(WAIT).unwrap();
        assert_eq!((got.len(), got.metadata().sequence), (4096, 1));
    }
    assert_err(b.recv(Some(Duration::ZERO)), Status::WouldBlock, "");
}

#[test]
fn the_spin_budget_of_recv_can_be_set() {
    assert_eq!(Channel::DEFAULT_SPIN, Duration::from_micros(20));
    let pool = shm_pool(2, 64);
    let (a, b) = Channel::pair().unwrap();
    for (i, spin) in [
        Some(Duration::ZERO),
        None,
        Some(Duration::from_micros(50)),
        Some(Channel::DEFAULT_SPIN),
    ]
    .into_iter()
    .enumerate()
    {
        b.set_spin(spin).unwrap();
        let sender = {
            let pool = pool.clone();
            let a = &a;
            thread::scope(|s| {
                s.spawn(move || {
                    thread::sleep(Duration::from_millis(5));
                    a.send(&frame(&pool, i as u64, 64)).unwrap();
                });
                b.recv(WAIT)
            })
        };
        assert_frame(&sender.unwrap(), i as u64, 64);
        assert_err(b.recv(Some(Duration::from_millis(5))), Status::Timeout, "");
    }
}
