// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Streams: one publisher, subscribers in other processes (this test binary re-run as the
//! peer). Start orders, history, the description, each slow policy, a subscriber killed with
//! SIGKILL, the publisher gone or killed (subscribers drain, then Closed), stats and the list
//! from other processes, polling, bad input.
mod common;

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::peer::{say, wait_for_go, Peer};
use common::{assert_err, checked_pattern, pattern_frame, TempDir};
use parallax::{
    list_streams, stream_stats, stream_subscribers, Buffer, Metadata, Pool, Publisher,
    PublisherOptions, SlowPolicy, Status, Subscriber, SubscriberInfo,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));
const FRAME_BYTES: usize = 4096;

fn shm_pool(slots: usize) -> Pool {
    Pool::shm(Some("rust-stream"), slots, FRAME_BYTES).unwrap()
}

/// The user sequence of a received frame, after checking every byte and that it is read-only.
#[track_caller]
fn checked_seq(buf: &Buffer) -> u64 {
    assert!(buf.is_readonly(), "a frame is writable in the subscriber");
    checked_pattern(buf, FRAME_BYTES)
}

fn publisher(name: &Path, policy: SlowPolicy, in_flight: u32, history: u32) -> Publisher {
    let mut o = PublisherOptions::default();
    o.slow_policy = policy;
    o.max_in_flight = in_flight;
    o.history = history;
    o.block_timeout = WAIT; // under BLOCK, nobody misses a frame unless a test says so
    Publisher::new(name, &o).unwrap()
}

fn publish(publisher: &Publisher, pool: &Pool, seqs: impl IntoIterator<Item = u64>) {
    for seq in seqs {
        publisher.publish(&pattern_frame(pool, seq)).unwrap();
    }
}

/// Polls (which is where subscribers are admitted) until `n` are in.
#[track_caller]
fn wait_for_subscribers(publisher: &Publisher, n: usize) {
    eventually(&format!("{n} subscribers"), || {
        publisher.poll(Some(Duration::from_millis(10))).unwrap();
        publisher.subscriber_count() == n
    });
}

/// Waits until every slot of `pool` is back.
#[track_caller]
fn wait_all_back(pool: &Pool) {
    eventually("every slot back", || pool.available() == pool.capacity());
}

#[track_caller]
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

// ---- The peer processes ------------------------------------------------------------------

const ROLE: &str = "PX_RUST_STREAM_ROLE";
const NAME: &str = "PX_RUST_STREAM_NAME";
const ARG: &str = "PX_RUST_STREAM_ARG";

/// A peer process running `stream_peer` in a role (see common::peer).
impl Peer {
    fn spawn(role: &str, name: &Path, arg: &str) -> Peer {
        Peer::spawn_with(role, name, arg, &[])
    }

    fn spawn_with(role: &str, name: &Path, arg: &str, env: &[(&str, &Path)]) -> Peer {
        let mut vars: Vec<(&str, &OsStr)> = vec![
            (ROLE, role.as_ref()),
            (NAME, name.as_os_str()),
            (ARG, arg.as_ref()),
        ];
        vars.extend(env.iter().map(|(k, v)| (*k, v.as_os_str())));
        Peer::run("stream_peer", &vars)
    }
}

/// "a..b" as the range of frames a peer expects.
fn parse_range(arg: &str) -> std::ops::RangeInclusive<u64> {
    let (a, b) = arg.split_once("..").unwrap();
    a.parse().unwrap()..=b.parse().unwrap()
}

/// Subscribes, says "joined", and expects exactly the frames in `arg` ("first..last"), in
/// order, then the end of the stream; nothing missed.
fn peer_receive_all(name: &Path, arg: &str) {
    let sub = Subscriber::new(name, WAIT).unwrap();
    say("joined");
    let expected: Vec<u64> = parse_range(arg).collect();
    let got: Vec<u64> = sub.iter().map(|f| checked_seq(&f.unwrap())).collect();
    assert_eq!(got, expected);
    assert_err(sub.recv(WAIT), Status::Closed, "has gone");
    let s = sub.stats().unwrap();
    assert_eq!((s.received, s.missed), (expected.len() as u64, 0));
    assert_ne!(s.publisher_pid, u64::from(std::process::id()));
    say("done");
}

/// Subscribes, says "joined", waits for "go", then receives until the end of the stream and
/// reports what came: "seqs=1,2,11 missed=8". With arg "keep" it holds every frame until the
/// end and checks them all again after the publisher has gone.
fn peer_lagging(name: &Path, arg: &str) {
    let sub = Subscriber::new(name, WAIT).unwrap();
    say("joined");
    wait_for_go();
    let mut held = Vec::new();
    let mut seqs = Vec::new();
    for f in &sub {
        let f = f.unwrap();
        seqs.push(checked_seq(&f));
        if arg == "keep" {
            held.push(f);
        }
    }
    for f in &held {
        checked_seq(f); // still mapped and intact after the publisher went away
    }
    let s = sub.stats().unwrap();
    assert_eq!(s.received, seqs.len() as u64);
    let list: Vec<String> = seqs.iter().map(u64::to_string).collect();
    say(&format!("seqs={} missed={}", list.join(","), s.missed));
}

/// Subscribes, holds the first `arg` frames and waits to be killed.
fn peer_holder(name: &Path, arg: &str) {
    let sub = Subscriber::new(name, WAIT).unwrap();
    say("joined");
    let n: usize = arg.parse().unwrap();
    let _held: Vec<Buffer> = (0..n).map(|_| sub.recv(WAIT).unwrap()).collect();
    say("holding");
    thread::sleep(Duration::from_secs(60));
}

/// Publishes frames 1..=arg to one subscriber, says "published", and waits to be killed.
fn peer_publisher(name: &Path, arg: &str) {
    let pool = shm_pool(8);
    let p = publisher(name, SlowPolicy::Block, 8, 0);
    wait_for_subscribers(&p, 1);
    publish(&p, &pool, 1..=arg.parse().unwrap());
    say("published");
    thread::sleep(Duration::from_secs(60));
}

/// With PARALLAX_RUNTIME_DIR set by the test: publishes "cam" (5 frames) and "mic" by name,
/// says "ready", and ends on "go".
fn peer_runtime_publisher() {
    let pool = shm_pool(8);
    let cam = Publisher::new("cam", &PublisherOptions::default()).unwrap();
    let _mic = Publisher::new("mic", &PublisherOptions::default()).unwrap();
    publish(&cam, &pool, 1..=5);
    say("ready");
    wait_for_go();
}

/// With PARALLAX_RUNTIME_DIR set by the test: lists the streams and asks for cam's stats,
/// from a process that publishes nothing.
fn peer_lister() {
    let mut names = list_streams().unwrap();
    names.sort();
    let published = match stream_stats("cam", Some(Duration::from_secs(1))) {
        Ok(s) => s.published.to_string(),
        Err(e) if e.status() == Status::Closed => "closed".to_string(),
        Err(e) => panic!("stream_stats: {e}"),
    };
    say(&format!("streams={} cam={published}", names.join(",")));
}

/// The peer's side, run only when a test below spawns it.
#[test]
#[ignore = "the peer process of the stream tests; they run it"]
fn stream_peer() {
    let (Ok(role), Some(name), Ok(arg)) = (
        std::env::var(ROLE),
        std::env::var_os(NAME),
        std::env::var(ARG),
    ) else {
        println!("stream_peer: not spawned by a stream test, nothing to do");
        return;
    };
    let name = PathBuf::from(name);
    match role.as_str() {
        "receive_all" => peer_receive_all(&name, &arg),
        "lagging" => peer_lagging(&name, &arg),
        "holder" => peer_holder(&name, &arg),
        "publisher" => peer_publisher(&name, &arg),
        "runtime_publisher" => peer_runtime_publisher(),
        "lister" => peer_lister(),
        "describe" => peer_describe(&name),
        other => panic!("unknown role {other}"),
    }
}

// ---- Start orders and history --------------------------------------------------------------

#[test]
fn subscribers_started_before_and_after_the_publisher_get_every_frame() {
    let dir = TempDir::new("stream-order");
    let name = dir.file("cam");
    // One subscriber starts before the publisher exists, two after it.
    let mut early = Peer::spawn("receive_all", &name, "1..30");
    thread::sleep(Duration::from_millis(100));
    let pool = shm_pool(16);
    let p = publisher(&name, SlowPolicy::Block, 8, 0);
    let late: Vec<Peer> = (0..2)
        .map(|_| Peer::spawn("receive_all", &name, "1..30"))
        .collect();
    wait_for_subscribers(&p, 3);
    early.wait_for("joined");
    publish(&p, &pool, 1..=30);
    let s = p.stats().unwrap();
    assert_eq!(
        (s.published, s.joined, s.subscribers, s.dropped),
        (30, 3, 3, 0)
    );
    drop(p); // the end of the stream: each peer then checks it got Closed
    early.assert_success();
    late.into_iter().for_each(Peer::assert_success);
    wait_all_back(&pool);
}

#[test]
fn a_late_subscriber_gets_the_history_first_then_live_frames() {
    let dir = TempDir::new("stream-history");
    let name = dir.file("cam");
    let pool = shm_pool(16);
    let p = publisher(&name, SlowPolicy::Block, 8, 4);
    // Nobody listens yet; the publisher keeps the 4 latest frames for joiners, so their slots
    // stay out.
    publish(&p, &pool, 1..=10);
    assert_eq!(pool.available(), pool.capacity() - 4);
    let peer = Peer::spawn("receive_all", &name, "7..12");
    wait_for_subscribers(&p, 1);
    publish(&p, &pool, 11..=12);
    drop(p);
    peer.assert_success();
    wait_all_back(&pool);
}

// ---- The description -------------------------------------------------------------------------

/// Expects "caps=A" at join, then frames 1..=4 with descriptions A, B, D, "", then frame 5
/// with a 10 000-byte description (longer than the first read), then the end.
fn peer_describe(name: &Path) {
    let sub = Subscriber::new(name, WAIT).unwrap();
    assert_eq!(sub.description().unwrap(), "caps=A");
    say("joined");
    for (seq, text) in [(1, "caps=A"), (2, "caps=B"), (3, "caps=D"), (4, "")] {
        assert_eq!(checked_seq(&sub.recv(WAIT).unwrap()), seq);
        assert_eq!(sub.description().unwrap(), text, "frame {seq}");
    }
    assert_eq!(checked_seq(&sub.recv(WAIT).unwrap()), 5);
    assert_eq!(sub.description().unwrap(), "x".repeat(10_000));
    assert_err(sub.recv(WAIT), Status::Closed, "");
    say("done");
}

#[test]
fn the_description_is_current_at_join_then_changes_in_order_with_frames() {
    let dir = TempDir::new("stream-describe");
    let name = dir.file("cam");
    let pool = shm_pool(8);
    let p = publisher(&name, SlowPolicy::Block, 8, 0);
    p.set_description("caps=A").unwrap();
    let mut peer = Peer::spawn("describe", &name, "");
    wait_for_subscribers(&p, 1);
    peer.wait_for("joined");
    publish(&p, &pool, [1]);
    p.set_description("caps=B").unwrap();
    publish(&p, &pool, [2]);
    p.set_description("caps=C").unwrap(); // replaced before any frame: never in force
    p.set_description("caps=D").unwrap();
    publish(&p, &pool, [3]);
    p.set_description("").unwrap();
    publish(&p, &pool, [4]);
    p.set_description(&"x".repeat(10_000)).unwrap();
    publish(&p, &pool, [5]);
    drop(p);
    peer.assert_success();
}

#[test]
fn a_description_too_long_or_with_a_nul_is_refused() {
    let dir = TempDir::new("stream-describe-bad");
    let p = Publisher::new(dir.file("cam"), &PublisherOptions::default()).unwrap();
    assert_err(
        p.set_description(&"x".repeat(64 * 1024 + 1)),
        Status::Invalid,
        "longer than 65536",
    );
    p.set_description(&"x".repeat(64 * 1024)).unwrap();
    assert_err(
        p.set_description("a\0b"),
        Status::Invalid,
        "description contains a NUL",
    );
}

#[test]
fn a_description_that_is_not_utf8_is_an_error_but_its_bytes_are_there() {
    let dir = TempDir::new("stream-describe-bytes");
    let name = dir.file("cam");
    let p = Publisher::new(&name, &PublisherOptions::default()).unwrap();
    // A C publisher may set any bytes; Rust's set_description takes &str, so use the C call.
    // SAFETY: live publisher; NUL-terminated text.
    let rc = unsafe { parallax::sys::px_publisher_set_description(p.as_raw(), c"ok\xff".as_ptr()) };
    assert_eq!(rc, parallax::sys::PX_OK);
    let sub = in_thread_subscriber(&p, &name);
    assert_eq!(sub.description_bytes().unwrap(), b"ok\xff");
    assert_err(sub.description(), Status::Invalid, "not UTF-8 (byte 2)");
}

/// A subscriber in this process: made in a thread (it waits to be admitted) while this one
/// polls the publisher.
fn in_thread_subscriber(p: &Publisher, name: &Path) -> Subscriber {
    let before = p.subscriber_count();
    let joiner = thread::spawn({
        let name = name.to_path_buf();
        move || Subscriber::new(name, WAIT)
    });
    wait_for_subscribers(p, before + 1);
    joiner.join().unwrap().unwrap()
}

#[test]
fn a_spinning_subscriber_receives_and_still_times_out() {
    let dir = TempDir::new("stream-spin");
    let name = dir.file("cam");
    let pool = shm_pool(8);
    let p = publisher(&name, SlowPolicy::Drop, 8, 0);
    let s = in_thread_subscriber(&p, &name);
    s.set_spin(None).unwrap(); // never sleeps
    let t0 = Instant::now();
    assert_err(s.recv(Some(Duration::from_millis(30))), Status::Timeout, "");
    assert!(t0.elapsed() >= Duration::from_millis(25), "a spinning recv ignored its timeout");
    publish(&p, &pool, [1]);
    assert_eq!(checked_seq(&s.recv(WAIT).unwrap()), 1);
    s.set_spin(Some(Duration::ZERO)).unwrap(); // sleeps at once
    publish(&p, &pool, [2]);
    assert_eq!(checked_seq(&s.recv(WAIT).unwrap()), 2);
    s.set_spin(Some(parallax::Channel::DEFAULT_SPIN)).unwrap();
    drop(s);
    wait_all_back(&pool);
}

// ---- Slow-subscriber policies ------------------------------------------------------------------

#[test]
fn drop_a_lagging_subscriber_misses_frames_counted_on_both_sides() {
    let dir = TempDir::new("stream-drop");
    let name = dir.file("cam");
    let pool = shm_pool(8);
    let p = publisher(&name, SlowPolicy::Drop, 2, 0);
    let mut lagging = Peer::spawn("lagging", &name, "release");
    wait_for_subscribers(&p, 1);
    lagging.wait_for("joined");
    let t0 = Instant::now();
    publish(&p, &pool, 1..=10); // room for 2: frames 3..=10 are dropped, never waited for
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "DROP waited for the lagging subscriber"
    );
    assert_eq!(p.stats().unwrap().dropped, 8);
    // What the publisher knows of it, as any process of this user can read it.
    let rows = stream_subscribers(&name, WAIT).unwrap();
    let row = SubscriberInfo {
        pid: u64::from(lagging.pid()),
        in_flight: 2,
        delivered: 2,
        dropped: 8,
    };
    assert_eq!(rows, [row]);
    lagging.go();
    wait_all_back(&pool); // it has taken frames 1 and 2 and released them
    publish(&p, &pool, [11]);
    drop(p);
    assert_eq!(lagging.wait_for("seqs="), "1,2,11 missed=8");
    lagging.assert_success();
}

#[test]
fn block_waits_for_room_then_times_out_having_delivered_to_the_others() {
    let dir = TempDir::new("stream-block");
    let name = dir.file("cam");
    let pool = shm_pool(8);
    let mut o = PublisherOptions::default();
    o.slow_policy = SlowPolicy::Block;
    o.max_in_flight = 1;
    o.block_timeout = Some(Duration::from_millis(100));
    let p = Publisher::new(&name, &o).unwrap();
    let mut lagging = Peer::spawn("lagging", &name, "release");
    let keen = Peer::spawn("receive_all", &name, "1..3");
    wait_for_subscribers(&p, 2);
    lagging.wait_for("joined");
    publish(&p, &pool, [1]);
    // The lagging peer still holds frame 1 (queued): frame 2 waits 100 ms, then goes only to
    // the keen one.
    let t0 = Instant::now();
    assert_err(
        p.publish(&pattern_frame(&pool, 2)),
        Status::Timeout,
        "1 of 2 subscribers had no room",
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(90),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(p.stats().unwrap().dropped, 1);
    lagging.go();
    wait_all_back(&pool);
    publish(&p, &pool, [3]);
    drop(p);
    assert_eq!(lagging.wait_for("seqs="), "1,3 missed=1");
    lagging.assert_success();
    keen.assert_success();
}

#[test]
fn disconnect_drops_a_subscriber_with_no_room_which_drains_then_sees_closed() {
    let dir = TempDir::new("stream-disconnect");
    let name = dir.file("cam");
    let pool = shm_pool(8);
    let p = publisher(&name, SlowPolicy::Disconnect, 1, 0);
    let mut lagging = Peer::spawn("lagging", &name, "release");
    wait_for_subscribers(&p, 1);
    lagging.wait_for("joined");
    publish(&p, &pool, 1..=2); // frame 2 finds no room: the subscriber is dropped
    let s = p.stats().unwrap();
    assert_eq!((s.subscribers, s.departed, s.disconnected_slow), (0, 1, 1));
    assert_eq!(p.subscriber_count(), 0);
    lagging.go();
    // It receives what it had been sent, then the end, while the publisher lives on.
    assert_eq!(lagging.wait_for("seqs="), "1 missed=0");
    lagging.assert_success();
    publish(&p, &pool, [3]); // to nobody
}

// ---- Skipped numbers -------------------------------------------------------------------------

#[test]
fn skip_shows_as_missed_at_a_subscriber_in_another_process_and_moves_no_publisher_counter() {
    let dir = TempDir::new("stream-skip");
    let name = dir.file("relayed");
    let pool = shm_pool(8);
    let p = publisher(&name, SlowPolicy::Block, 8, 0);
    let mut peer = Peer::spawn("lagging", &name, "release");
    wait_for_subscribers(&p, 1);
    peer.wait_for("joined");
    peer.go();
    publish(&p, &pool, 1..=2);
    p.skip(5).unwrap(); // five frames lost upstream, between 2 and 3
    publish(&p, &pool, [3]);
    p.skip(0).unwrap(); // nothing
    let e = assert_err(p.skip(u64::MAX), Status::Invalid, "overflows");
    assert!(e.message().contains("frame 8"), "{}", e.message()); // 2 + 5 skipped + 1
    publish(&p, &pool, [4]); // the refused skip left the numbering as it was
    let s = p.stats().unwrap();
    assert_eq!((s.published, s.dropped, s.subscribers), (4, 0, 1));
    drop(p);
    assert_eq!(peer.wait_for("seqs="), "1,2,3,4 missed=5");
    peer.assert_success();
    wait_all_back(&pool);
}

// ---- Deaths ---------------------------------------------------------------------------------

#[test]
fn a_subscriber_killed_mid_stream_gives_its_slots_back_and_the_others_miss_nothing() {
    let dir = TempDir::new("stream-kill-sub");
    let name = dir.file("cam");
    let pool = shm_pool(16);
    let p = publisher(&name, SlowPolicy::Block, 4, 0);
    let mut holder = Peer::spawn("holder", &name, "3");
    let reader = Peer::spawn("receive_all", &name, "1..40");
    wait_for_subscribers(&p, 2);
    publish(&p, &pool, 1..=3);
    holder.wait_for("holding");
    holder.kill();
    // Publishing goes on; under BLOCK, the reader would miss a frame only after a timeout.
    publish(&p, &pool, 4..=40);
    eventually("the killed subscriber departed", || {
        p.poll(Some(Duration::from_millis(10))).unwrap();
        p.stats().unwrap().departed == 1
    });
    drop(p);
    reader.assert_success();
    wait_all_back(&pool);
}

#[test]
fn the_publisher_gone_its_subscribers_drain_then_see_closed_with_their_frames_intact() {
    let dir = TempDir::new("stream-drain");
    let name = dir.file("cam");
    let pool = shm_pool(8);
    let p = publisher(&name, SlowPolicy::Block, 8, 0);
    let mut peer = Peer::spawn("lagging", &name, "keep");
    wait_for_subscribers(&p, 1);
    peer.wait_for("joined");
    publish(&p, &pool, 1..=5);
    drop(p); // before the subscriber has read anything
    drop(pool); // the frames live on in the subscriber
    peer.go();
    assert_eq!(peer.wait_for("seqs="), "1,2,3,4,5 missed=0");
    peer.assert_success();
}

#[test]
fn a_killed_publisher_is_replaced_at_once_and_subscribers_can_resubscribe() {
    let dir = TempDir::new("stream-kill-pub");
    let name = dir.file("cam");
    let mut peer = Peer::spawn("publisher", &name, "3");
    let sub = Subscriber::new(&name, WAIT).unwrap();
    assert_eq!(sub.stats().unwrap().publisher_pid, u64::from(peer.pid()));
    peer.wait_for("published");
    peer.kill();
    let got: Vec<u64> = sub.iter().map(|f| checked_seq(&f.unwrap())).collect();
    assert_eq!(got, [1, 2, 3]);
    assert_err(sub.recv(Some(Duration::ZERO)), Status::Closed, "has gone");
    // Its socket is stale now: a new publisher takes the name at once.
    let pool = shm_pool(4);
    let p = Publisher::new(&name, &PublisherOptions::default()).unwrap();
    let again = in_thread_subscriber(&p, &name);
    publish(&p, &pool, [9]);
    assert_eq!(checked_seq(&again.recv(WAIT).unwrap()), 9);
    assert_eq!(
        again.stats().unwrap().publisher_pid,
        u64::from(std::process::id())
    );
}

// ---- Stats and the list, from other processes -----------------------------------------------

#[test]
fn stats_and_the_list_are_answered_to_other_processes() {
    let dir = TempDir::new("stream-runtime");
    let env = [("PARALLAX_RUNTIME_DIR", dir.path())];
    let unused = dir.file("unused");
    let mut publisher = Peer::spawn_with("runtime_publisher", &unused, "", &env);
    publisher.wait_for("ready");
    // The publisher neither publishes nor polls while the lister asks.
    let mut lister = Peer::spawn_with("lister", &unused, "", &env);
    assert_eq!(lister.wait_for("streams="), "cam,mic cam=5");
    lister.assert_success();
    publisher.go();
    publisher.assert_success();
    // Gone: not listed (though a socket file may remain), and stats say Closed at once.
    let mut lister = Peer::spawn_with("lister", &unused, "", &env);
    assert_eq!(lister.wait_for("streams="), "cam=closed");
    lister.assert_success();
}

#[test]
fn stream_stats_by_socket_path_and_closed_when_nobody_publishes() {
    let dir = TempDir::new("stream-stats");
    let name = dir.file("cam");
    let t0 = Instant::now();
    assert_err(stream_stats(&name, WAIT), Status::Closed, "");
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "Closed is answered at once"
    );
    let pool = shm_pool(4);
    let p = Publisher::new(&name, &PublisherOptions::default()).unwrap();
    publish(&p, &pool, 1..=3);
    let s = stream_stats(&name, WAIT).unwrap();
    assert_eq!((s.published, s.subscribers), (3, 0));
    assert_eq!(s, p.stats().unwrap());
    assert_eq!(stream_subscribers(&name, WAIT).unwrap(), []);
    assert_err(
        stream_subscribers(dir.file("absent"), WAIT),
        Status::Closed,
        "",
    );
    // More subscribers than stream_subscribers first makes room for (16).
    let subs: Vec<Subscriber> = (0..20).map(|_| in_thread_subscriber(&p, &name)).collect();
    publish(&p, &pool, [4]); // the table is as of the last publish or poll
    let rows = stream_subscribers(&name, WAIT).unwrap();
    assert_eq!(rows.len(), subs.len());
    for r in &rows {
        assert_eq!(
            (r.pid, r.in_flight, r.delivered),
            (u64::from(std::process::id()), 1, 1)
        );
    }
}

// ---- Polling, limits, bad input ---------------------------------------------------------------

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

#[test]
fn the_publisher_fd_wakes_for_a_joiner_and_the_subscriber_fd_for_a_frame() {
    let dir = TempDir::new("stream-fd");
    let name = dir.file("cam");
    let p = Publisher::new(&name, &PublisherOptions::default()).unwrap();
    assert!(!p.poll(Some(Duration::ZERO)).unwrap(), "nothing to do yet");
    assert!(!p.poll(Some(Duration::from_millis(20))).unwrap());
    let joiner = thread::spawn({
        let name = name.clone();
        move || Subscriber::new(name, WAIT)
    });
    assert!(
        readable(&p, 10_000),
        "a joining subscriber did not wake the publisher's fd"
    );
    eventually("admitted", || {
        p.poll(Some(Duration::ZERO)).unwrap();
        p.subscriber_count() == 1
    });
    let sub = joiner.join().unwrap().unwrap();
    assert!(sub.try_recv().unwrap().is_none());
    assert!(sub.as_raw_fd() >= 0);
    assert!(!readable(&sub, 0));
    let pool = shm_pool(2);
    publish(&p, &pool, [1]);
    assert!(
        readable(&sub, 10_000),
        "a frame did not wake the subscriber's fd"
    );
    assert_eq!(checked_seq(&sub.try_recv().unwrap().unwrap()), 1);
    assert_err(sub.recv(Some(Duration::ZERO)), Status::WouldBlock, "");
    assert_err(
        sub.recv(Some(Duration::from_millis(20))),
        Status::Timeout,
        "",
    );
}

#[test]
fn a_full_publisher_refuses_one_more_subscriber_with_busy() {
    let dir = TempDir::new("stream-full");
    let name = dir.file("cam");
    let mut o = PublisherOptions::default();
    o.max_subscribers = 1;
    let p = Publisher::new(&name, &o).unwrap();
    let _first = in_thread_subscriber(&p, &name);
    let second = thread::spawn({
        let name = name.clone();
        move || Subscriber::new(name, WAIT)
    });
    while !second.is_finished() {
        p.poll(Some(Duration::from_millis(10))).unwrap();
    }
    assert_err(second.join().unwrap(), Status::Busy, "full");
    assert_eq!(p.subscriber_count(), 1);
}

#[test]
fn bad_names_options_and_buffers_are_errors_that_say_what_was_wrong() {
    let dir = TempDir::new("stream-bad");
    let name = dir.file("cam");
    let defaults = PublisherOptions::default();
    assert_err(Publisher::new("", &defaults), Status::Invalid, "empty");
    assert_err(
        Publisher::new(".cam", &defaults),
        Status::Invalid,
        "starts with '.'",
    );
    assert_err(
        Publisher::new("a b", &defaults),
        Status::Invalid,
        "character",
    );
    assert_err(Publisher::new("c\0m", &defaults), Status::Invalid, "NUL");
    let long = dir.file(&"x".repeat(120));
    assert_err(
        Publisher::new(&long, &defaults),
        Status::Invalid,
        "socket path",
    );
    assert_err(Subscriber::new("", WAIT), Status::Invalid, "empty");

    for (field, set) in [
        (
            "max_in_flight",
            (|o: &mut PublisherOptions| o.max_in_flight = 0) as fn(&mut _),
        ),
        ("max_in_flight", |o| o.max_in_flight = 129),
        ("max_subscribers", |o| o.max_subscribers = 0),
        ("history", |o| o.history = 1025),
    ] {
        let mut o = PublisherOptions::default();
        set(&mut o);
        assert_err(Publisher::new(&name, &o), Status::Invalid, field);
    }

    let p = Publisher::new(&name, &defaults).unwrap();
    assert_err(Publisher::new(&name, &defaults), Status::Busy, "");
    let heap = Pool::heap(1, 64).unwrap();
    let buf = heap
        .loan()
        .unwrap()
        .into_buffer(8, &Metadata::default())
        .unwrap();
    assert_err(p.publish(&buf), Status::Unsupported, "shared-memory");
    // Nobody publishes there: a subscriber waits, then times out saying so.
    let t0 = Instant::now();
    let absent = dir.file("absent");
    assert_err(
        Subscriber::new(&absent, Some(Duration::from_millis(50))),
        Status::Timeout,
        "no publisher",
    );
    assert!(t0.elapsed() >= Duration::from_millis(40));
}

#[test]
fn handles_are_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Publisher>();
    shareable::<Subscriber>();
}

/// The streams example of bindings/rust/README.md, kept compiling and passing (the
/// subscribing "process" is a thread here, and the name a socket path).
#[test]
fn readme_streams_example() -> Result<(), parallax::Error> {
    let dir = TempDir::new("stream-readme");
    let name = dir.file("camera");
    let mut opts = PublisherOptions::default(); // the C defaults (DROP, 64 subscribers...)
    opts.slow_policy = SlowPolicy::Block; // or Drop (default) / Disconnect
    opts.history = 4; // a late joiner gets the 4 latest frames first
    let publisher = Publisher::new(&name, &opts)?;
    publisher.set_description("video/x-raw,format=RGB,width=640,height=480")?;
    let pool = Pool::shm(Some("frames"), 16, 640 * 480 * 3)?;
    let mut slot = pool.loan_timeout(None)?;
    slot[..3].copy_from_slice(b"RGB");
    publisher.publish(&slot.into_buffer(640 * 480 * 3, &Metadata::with_sequence(0))?)?;
    publisher.poll(Some(Duration::from_millis(10)))?; // an idle publisher polls: joins happen here

    let subscriber = thread::spawn(move || -> Result<Vec<String>, parallax::Error> {
        let sub = Subscriber::new(&name, Some(Duration::from_secs(5)))?;
        let mut seen = Vec::new();
        for frame in sub.iter() {
            // ends when the publisher has gone
            let frame = frame?; // read-only view of the publisher's memory
            seen.push(format!("{} bytes, {}", frame.len(), sub.description()?));
        }
        Ok(seen)
    });
    wait_for_subscribers(&publisher, 1); // it got frame 0 from the history
    drop(publisher);
    let seen = subscriber.join().unwrap()?;
    assert_eq!(
        seen,
        ["921600 bytes, video/x-raw,format=RGB,width=640,height=480"]
    );
    Ok(())
}
