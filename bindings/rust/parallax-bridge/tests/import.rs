// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The import bridge against a hand-made exporter: a Zenoh session in this test puts frames
//! (good, malformed, out of order, with gaps) on the key and answers description queries, and
//! a parallax subscriber in this test reads the import bridge's local stream.
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parallax::{Metadata, Subscriber};
use zenoh::bytes::ZBytes;
use zenoh::{Session, Wait};

#[allow(dead_code)]
#[path = "../src/wire.rs"]
mod wire;

use wire::{Format, Header};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A unique stream path in a fresh directory (names with '/' are socket paths).
fn stream_path(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("px-bridge-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("s")
}

struct Bridge {
    child: Child,
}

impl Bridge {
    fn import(key: &str, stream: &std::path::Path, port: u16, extra: &[&str]) -> Bridge {
        let child = Command::new(env!("CARGO_BIN_EXE_parallax-bridge"))
            .args(["import", "--key", key])
            .arg(stream)
            .args(extra)
            .args(["--listen", &format!("tcp/127.0.0.1:{port}")])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Bridge { child }
    }

    /// SIGTERM, then its whole log (it must exit 0).
    fn stop(mut self) -> String {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "import bridge exited {status}: {log}");
        log
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A counter from the bridge's last line ("import stopped: Counts { frames: 3, gaps: 2, ... }").
fn count(log: &str, name: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.contains("import stopped"))
        .expect("no final counts");
    let at = line.find(&format!(" {name}: ")).expect(name) + name.len() + 3;
    line[at..]
        .split([',', ' '])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn session(port: u16) -> Session {
    let mut c = zenoh::Config::default();
    c.insert_json5("mode", "\"peer\"").unwrap();
    c.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    c.insert_json5("listen/endpoints", "[]").unwrap();
    c.insert_json5("connect/endpoints", &format!("[\"tcp/127.0.0.1:{port}\"]"))
        .unwrap();
    zenoh::open(c).wait().unwrap()
}

fn header(epoch: u64, position: u64, payload: &[u8]) -> Header {
    let mut metadata = Metadata::with_sequence(position * 10);
    metadata.pts_ns = Some(position as i64);
    metadata.set_user(b"from-test").unwrap();
    Header {
        epoch,
        position,
        description_version: 1,
        payload_len: payload.len() as u64,
        metadata,
        format: None,
        description: None,
        more: false,
    }
}

fn message(h: &Header, payload: &[u8]) -> ZBytes {
    let mut v = Vec::new();
    h.encode(&mut v);
    v.extend_from_slice(payload);
    ZBytes::from(v)
}

/// Puts `msg` until the bridge's subscription has reached this session (a put before that
/// goes nowhere): the first frame is resent until the local subscriber sees it.
fn put_until_received(s: &Session, key: &str, msg: ZBytes, sub: &Subscriber) -> parallax::Buffer {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        s.put(key, msg.clone()).wait().unwrap();
        if let Ok(b) = sub.recv(Some(Duration::from_millis(200))) {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "the import bridge never republished"
        );
    }
}

#[test]
fn bad_headers_are_counted_and_skipped_gaps_counted_descriptions_queried() {
    let port = free_port();
    let key = "px/itest/import";
    let path = stream_path("import");
    let bridge = Bridge::import(key, &path, port, &[]);
    let sub = Subscriber::new(&path, Some(Duration::from_secs(20))).unwrap();
    let s = session(port);
    // The "exporter" answers description queries with (epoch, version, text).
    let epoch = 0x1234u64;
    let _q = s
        .declare_queryable(format!("{key}/@description"))
        .callback(move |q| {
            let mut v = epoch.to_le_bytes().to_vec();
            v.extend_from_slice(&1u64.to_le_bytes());
            v.extend_from_slice(b"queried-description");
            q.reply(q.key_expr().clone(), v).wait().unwrap();
        })
        .wait()
        .unwrap();

    // Every frame carries version 1 without the text: the bridge must ask for it, and
    // republish nothing until it has it (frames put before its subscription reached this
    // session are lost as well, so this puts new positions until one comes through).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pos = 0;
    let first = loop {
        pos += 1;
        s.put(key, message(&header(epoch, pos, b"one"), b"one"))
            .wait()
            .unwrap();
        if let Ok(b) = sub.recv(Some(Duration::from_millis(200))) {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "the import bridge never republished"
        );
    };
    assert_eq!(&first[..], b"one");
    assert_eq!(sub.description().unwrap(), "queried-description");
    assert_eq!(first.metadata().sequence, pos * 10);
    assert_eq!(first.metadata().pts_ns, Some(pos as i64));
    assert_eq!(first.metadata().user(), b"from-test");

    // Malformed messages: none may crash the bridge or reach the stream.
    let good = {
        let mut v = Vec::new();
        header(epoch, pos + 1, b"xx").encode(&mut v);
        v
    };
    let mut bad_version = good.clone();
    bad_version[4] = 9;
    let mut short_payload = good.clone();
    short_payload.extend_from_slice(b"x"); // says 2 bytes, carries 1
    let mut bad_format = header(epoch, pos + 1, b"xx");
    let mut f = Format {
        dtype: 1,
        ndim: 1,
        ..Format::default()
    };
    f.shape[0] = 3; // 3 elements in a 2-byte frame
    bad_format.format = Some(f);
    for junk in [
        ZBytes::from(b"not a parallax-bridge frame".to_vec()),
        ZBytes::from(b"short".to_vec()),
        ZBytes::from(Vec::new()),
        ZBytes::from(good[..100].to_vec()),
        ZBytes::from(bad_version),
        ZBytes::from(short_payload),
        message(&bad_format, b"xx"),
    ] {
        s.put(key, junk).wait().unwrap();
    }
    // The refused format took the next position; then the one after and 3 further on (a gap
    // of 2), and one of the gap late (stale).
    for (at, body) in [
        (pos + 2, &b"three"[..]),
        (pos + 5, b"six"),
        (pos + 4, b"five"),
    ] {
        s.put(key, message(&header(epoch, at, body), body))
            .wait()
            .unwrap();
    }
    let mut got = Vec::new();
    while let Ok(b) = sub.recv(Some(Duration::from_secs(2))) {
        got.push(b.to_vec());
    }
    let stats = sub.stats().unwrap();
    let log = bridge.stop();
    assert_eq!(got, vec![b"three".to_vec(), b"six".to_vec()], "{log}");
    // Asked for, and in force for every frame republished (none went out without it).
    assert_eq!(sub.description().unwrap(), "queried-description");
    assert_eq!(count(&log, "gaps"), 2, "{log}");
    // Every frame of the exporter's that did not come out shows at the local subscriber as
    // missed, as it would at the exporter's host: the gap (2), the frame of the refused format
    // (1) and those held back while the description was asked for (at least 1).
    let held_back = count(&log, "no_description");
    assert!(held_back >= 1, "{log}");
    assert_eq!(
        (stats.received, stats.missed),
        (3, 2 + 1 + held_back),
        "{log}"
    );
    assert_eq!(count(&log, "bad"), 7, "{log}");
    assert!(log.contains("shorter than any header"), "{log}");
    assert_eq!(count(&log, "frames"), 3, "{log}");
    assert!(log.contains("bad magic"), "{log}");
    assert!(log.contains("unsupported header version 9"), "{log}");
    assert!(log.contains("format does not fit"), "{log}");
    assert_eq!(count(&log, "stale"), 1, "{log}");
    drop(s);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// Whether this libparallax's streams carry a buffer's format (stream wire protocol 5): a
/// publisher and a subscriber in this process, one typed frame.
fn streams_carry_formats() -> bool {
    let path = stream_path("probe");
    let publisher =
        parallax::Publisher::new(&path, &parallax::PublisherOptions::default()).unwrap();
    let joiner = std::thread::spawn({
        let path = path.clone();
        move || {
            let sub = Subscriber::new(&path, Some(Duration::from_secs(10))).unwrap();
            let b = sub.recv(Some(Duration::from_secs(10))).unwrap();
            let mut f = parallax::sys::px_format_t::default();
            // SAFETY: live buffer; valid out-pointer.
            unsafe { parallax::sys::px_buffer_format(b.as_raw(), &mut f) };
            f.ndim == 1
        }
    });
    while publisher.subscriber_count() == 0 {
        publisher.poll(Some(Duration::from_millis(10))).unwrap();
    }
    let pool = parallax::Pool::shm(None, 2, 4096).unwrap();
    let b = pool
        .loan()
        .unwrap()
        .into_buffer(4, &Metadata::default())
        .unwrap();
    let mut f = parallax::sys::px_format_t {
        dtype: 1,
        ndim: 1,
        ..Default::default()
    };
    f.shape[0] = 4;
    // SAFETY: live buffer we own; valid format.
    assert_eq!(
        unsafe { parallax::sys::px_buffer_set_format(b.as_raw(), &f) },
        0
    );
    publisher.publish(&b).unwrap();
    let carried = joiner.join().unwrap();
    drop(publisher);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    carried
}

#[test]
fn a_format_reaches_local_subscribers() {
    let carried = streams_carry_formats();
    let port = free_port();
    let key = "px/itest/format";
    let path = stream_path("format");
    // Best-effort: the other queue (a ring) between Zenoh and the local stream.
    let bridge = Bridge::import(key, &path, port, &["--reliability", "best-effort"]);
    let sub = Subscriber::new(&path, Some(Duration::from_secs(20))).unwrap();
    let s = session(port);
    let mut h = header(7, 1, &[0; 12]);
    h.description = Some(b"rgb 2x2".to_vec());
    let mut f = Format {
        dtype: 1,
        ndim: 3,
        fourcc: 0x3342_4752,
        ..Format::default()
    };
    f.shape[..3].copy_from_slice(&[2, 2, 3]);
    h.format = Some(f);
    let b = put_until_received(&s, key, message(&h, &[9; 12]), &sub);
    assert_eq!(sub.description().unwrap(), "rgb 2x2");
    assert_eq!(&b[..], &[9; 12]);
    let log = bridge.stop();
    assert_eq!(count(&log, "bad"), 0, "{log}");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    if !carried {
        eprintln!("SKIPPED: the format part: this libparallax's streams do not carry formats yet");
        return;
    }
    let mut got = parallax::sys::px_format_t::default();
    // SAFETY: live buffer; valid out-pointer.
    assert_eq!(
        unsafe { parallax::sys::px_buffer_format(b.as_raw(), &mut got) },
        0
    );
    assert_eq!((got.dtype, got.ndim, got.fourcc), (1, 3, 0x3342_4752));
    assert_eq!(&got.shape[..3], &[2, 2, 3]);
}

/// Frames back to back in one message, the way an exporter puts those it found waiting: each
/// flagged "more" but the last.
fn several(frames: &[(&Header, &[u8])]) -> ZBytes {
    let mut v = Vec::new();
    for (i, (h, payload)) in frames.iter().enumerate() {
        let mut h = (*h).clone();
        h.more = i + 1 < frames.len();
        h.encode(&mut v);
        v.extend_from_slice(payload);
    }
    ZBytes::from(v)
}

#[test]
fn a_message_of_several_frames_is_republished_frame_by_frame() {
    let port = free_port();
    let key = "px/itest/several";
    let path = stream_path("several");
    let bridge = Bridge::import(key, &path, port, &[]);
    let sub = Subscriber::new(&path, Some(Duration::from_secs(20))).unwrap();
    let s = session(port);
    let epoch = 0x5eu64;
    let h = |position: u64, body: &[u8]| {
        let mut h = header(epoch, position, body);
        h.description = Some(b"several".to_vec());
        h
    };
    let (h1, h2, h3) = (h(1, b"a"), h(2, b"bb"), h(3, b"ccc"));
    let first = put_until_received(
        &s,
        key,
        several(&[(&h1, b"a"), (&h2, b"bb"), (&h3, b"ccc")]),
        &sub,
    );
    let mut got = vec![(first.to_vec(), first.metadata().sequence)];
    // A stale frame between two new ones: its payload is not read, the next frame still found.
    let (h6, h7) = (h(6, b"six"), h(7, b"seven"));
    s.put(
        key,
        several(&[(&h6, b"six"), (&h2, b"bb"), (&h7, b"seven")]),
    )
    .wait()
    .unwrap();
    // A good frame, then a header that is not one: the first goes, the rest is refused.
    let h8 = h(8, b"eight");
    let mut m = several(&[(&h8, b"eight"), (&h(9, b"x"), b"x")])
        .to_bytes()
        .to_vec();
    let second = h8.encoded_len() + 5;
    m[second..second + 4].copy_from_slice(b"XXXX");
    s.put(key, ZBytes::from(m)).wait().unwrap();
    while let Ok(b) = sub.recv(Some(Duration::from_secs(2))) {
        got.push((b.to_vec(), b.metadata().sequence));
    }
    let stats = sub.stats().unwrap();
    let log = bridge.stop();
    let want: Vec<(Vec<u8>, u64)> = [
        (&b"a"[..], 1u64),
        (b"bb", 2),
        (b"ccc", 3),
        (b"six", 6),
        (b"seven", 7),
        (b"eight", 8),
    ]
    .iter()
    .map(|(p, n)| (p.to_vec(), n * 10))
    .collect();
    // The first message may have been put again before its frames came out: the copies are
    // stale, and so is frame 2 in the middle of the second message.
    assert_eq!(got, want, "{log}");
    assert_eq!(sub.description().unwrap(), "several");
    assert!(count(&log, "stale") >= 1, "{log}");
    assert_eq!(count(&log, "bad"), 1, "{log}");
    assert!(log.contains("bad magic"), "{log}");
    // Frames 4 and 5 never came: missed at the local subscriber.
    assert_eq!((stats.received, stats.missed), (6, 2), "{log}");
    drop(s);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
