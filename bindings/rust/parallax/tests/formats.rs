// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Typed frames: a buffer's format (set, read, kept by clones, dropped by slices, refused when it
//! does not fit), checked typed views (`Buffer::as_slice_of`, `Slot::as_mut_slice_of`), and the
//! format carried with the buffer to another process over a channel and a stream.
mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use common::peer::{say, Peer};
use common::{assert_err, TempDir};
use parallax::{
    fourcc, Buffer, Channel, Dtype, Format, Listener, Metadata, Pool, Publisher, PublisherOptions,
    Status, Subscriber,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));
const ROWS: usize = 3;
const COLS: usize = 4;

/// A 3x4 f32 frame in a slot of `pool`, element (r, c) = r * 10 + c + seq / 1000, typed.
fn f32_frame(pool: &Pool, seq: u64) -> Buffer {
    let mut slot = pool.loan_timeout(WAIT).unwrap();
    let values = &mut slot.as_mut_slice_of::<f32>().unwrap()[..ROWS * COLS];
    for (i, v) in values.iter_mut().enumerate() {
        *v = value(i, seq);
    }
    let mut frame = slot
        .into_buffer(ROWS * COLS * 4, &Metadata::with_sequence(seq))
        .unwrap();
    frame.set_format(&frame_format()).unwrap();
    frame
}

fn value(i: usize, seq: u64) -> f32 {
    ((i / COLS) * 10 + i % COLS) as f32 + seq as f32 / 1000.0
}

fn frame_format() -> Format {
    Format::new(Dtype::F32, &[ROWS, COLS])
        .unwrap()
        .with_fourcc(fourcc(b"R32F"))
}

/// Checks a received f32 frame: read-only, typed as sent, every element intact.
#[track_caller]
fn check_f32_frame(frame: &Buffer) {
    let seq = frame.metadata().sequence;
    assert!(frame.is_readonly());
    assert_eq!(frame.format(), Some(frame_format()), "frame {seq}");
    let values = frame.as_slice_of::<f32>().unwrap();
    assert_eq!(values.len(), ROWS * COLS);
    for (i, &v) in values.iter().enumerate() {
        assert_eq!(v, value(i, seq), "frame {seq} element {i}");
    }
}

#[test]
fn a_format_is_set_read_kept_by_clones_and_dropped_by_slices() {
    let pool = Pool::heap(2, 64).unwrap();
    let mut b = pool
        .loan()
        .unwrap()
        .into_buffer(48, &Metadata::default())
        .unwrap();
    assert_eq!(b.format(), None, "buffers start untyped");
    let f = Format::new(Dtype::U16, &[2, 3, 4])
        .unwrap()
        .with_fourcc(fourcc(b"Y16 "));
    b.set_format(&f).unwrap();
    let got = b.format().unwrap();
    assert_eq!(got, f);
    assert_eq!(
        (got.dtype(), got.shape(), got.strides()),
        (Dtype::U16, &[2, 3, 4][..], &[24, 8, 2][..])
    );
    assert_eq!(got.fourcc(), u32::from_le_bytes(*b"Y16 "));

    let clone = b.clone();
    assert_eq!(clone.format(), Some(f), "clones keep the format");
    assert_eq!(
        b.slice(0, 8).unwrap().format(),
        None,
        "slices are untyped bytes"
    );

    b.clear_format().unwrap();
    assert_eq!(b.format(), None);
    assert_eq!(clone.format(), Some(f), "a clone keeps its own format");

    // Padded rows: strides as given.
    let padded = Format::with_strides(Dtype::U8, &[3, 10], &[16, 1]).unwrap();
    b.set_format(&padded).unwrap();
    assert_eq!(b.format().unwrap().strides(), &[16, 1]);
}

#[test]
fn a_format_that_does_not_fit_is_refused_and_changes_nothing() {
    let pool = Pool::heap(1, 64).unwrap();
    let mut b = pool
        .loan()
        .unwrap()
        .into_buffer(48, &Metadata::default())
        .unwrap();
    let fits = Format::new(Dtype::F32, &[12]).unwrap();
    b.set_format(&fits).unwrap();
    // 13 f32 are 52 bytes: beyond the buffer's 48.
    let e = b
        .set_format(&Format::new(Dtype::F32, &[13]).unwrap())
        .unwrap_err();
    assert_eq!(e.status(), Status::Invalid, "{e}");
    assert!(e.message().contains("px_buffer_set_format"), "{e}");
    assert_eq!(b.format(), Some(fits), "a refused format changes nothing");
    // Strides that reach past the end, though the packed size would fit.
    let e = b.set_format(&Format::with_strides(Dtype::U8, &[2, 4], &[48, 1]).unwrap());
    assert_eq!(e.unwrap_err().status(), Status::Invalid);
    // Shapes whose byte count overflows.
    let huge = Format::new(Dtype::F64, &[1 << 40, 1 << 40]).unwrap();
    assert_eq!(b.set_format(&huge).unwrap_err().status(), Status::Invalid);
}

#[test]
fn typed_views_check_dtype_contiguity_size_and_alignment() {
    let pool = Pool::heap(1, 64).unwrap();
    let frame = f32_frame(&pool, 7);
    let values = frame.as_slice_of::<f32>().unwrap();
    assert_eq!(values[5], value(5, 7));
    assert_eq!(
        values.as_ptr().cast::<u8>(),
        frame.as_ptr(),
        "a view, not a copy"
    );

    assert_err(frame.as_slice_of::<u32>(), Status::Invalid, "dtype is F32");
    assert_err(frame.as_slice_of::<f64>(), Status::Invalid, "dtype is F32");

    // Untyped: the whole buffer, a whole number of T, aligned.
    let mut bytes = frame.clone();
    bytes.clear_format().unwrap();
    assert_eq!(bytes.as_slice_of::<u32>().unwrap().len(), 12);
    assert_eq!(bytes.as_slice_of::<u64>().unwrap().len(), 6);
    assert_eq!(bytes.as_slice_of::<u8>().unwrap(), &bytes[..]);
    assert_err(
        bytes.slice(0, 46).unwrap().as_slice_of::<u32>(),
        Status::Invalid,
        "whole number",
    );
    assert_err(
        bytes.slice(2, 40).unwrap().as_slice_of::<u32>(),
        Status::Invalid,
        "not aligned",
    );
    assert_eq!(
        bytes
            .slice(2, 40)
            .unwrap()
            .as_slice_of::<u16>()
            .unwrap()
            .len(),
        20
    );

    // A strided (padded) format has no slice view.
    let mut strided = frame.clone();
    strided
        .set_format(&Format::with_strides(Dtype::F32, &[2, 3], &[16, 4]).unwrap())
        .unwrap();
    assert_err(
        strided.as_slice_of::<f32>(),
        Status::Invalid,
        "not contiguous",
    );
    // A format smaller than the buffer: the view is its elements only.
    strided
        .set_format(&Format::new(Dtype::F32, &[2, 2]).unwrap())
        .unwrap();
    assert_eq!(strided.as_slice_of::<f32>().unwrap(), &values[..4]);

    // Half floats are viewed as their bits.
    let mut half = frame.clone();
    half.set_format(&Format::new(Dtype::BF16, &[24]).unwrap())
        .unwrap();
    assert_eq!(half.as_slice_of::<u16>().unwrap().len(), 24);
    assert_err(half.as_slice_of::<i16>(), Status::Invalid, "dtype is BF16");
}

#[test]
fn a_slot_is_written_as_typed_elements_in_place() {
    let pool = Pool::heap(2, 40).unwrap();
    let mut slot = pool.loan().unwrap();
    let doubles = slot.as_mut_slice_of::<f64>().unwrap();
    assert_eq!(doubles.len(), 5);
    doubles[1] = 1.5;
    assert_eq!(&slot[8..16], &1.5f64.to_ne_bytes());
    assert_eq!(slot.as_mut_slice_of::<u64>().unwrap().len(), 5);
    // 6-byte slots are not whole u32s.
    let odd = Pool::heap(3, 6).unwrap();
    let mut small = odd.loan().unwrap();
    assert_eq!(small.as_mut_slice_of::<u16>().unwrap().len(), 3);
    assert_err(
        small.as_mut_slice_of::<u32>().map(|s| s.len()),
        Status::Invalid,
        "whole number",
    );
}

// ---- Across processes ------------------------------------------------------------------------

const ROLE: &str = "PX_RUST_FORMAT_ROLE";
const PATH: &str = "PX_RUST_FORMAT_PATH";
const FRAMES: u64 = 5;

fn spawn(role: &str, path: &Path) -> Peer {
    Peer::run(
        "format_peer",
        &[(ROLE, OsStr::new(role)), (PATH, path.as_os_str())],
    )
}

/// The peer's side: receives FRAMES typed frames over a channel or a stream and checks each.
#[test]
#[ignore = "the peer process of the format tests; they run it"]
fn format_peer() {
    let (Ok(role), Some(path)) = (std::env::var(ROLE), std::env::var_os(PATH)) else {
        println!("format_peer: not spawned by a format test, nothing to do");
        return;
    };
    let frames: Vec<Buffer> = match role.as_str() {
        "channel" => {
            let ch = Channel::connect(&path, WAIT).unwrap();
            (0..FRAMES).map(|_| ch.recv(WAIT).unwrap()).collect()
        }
        "stream" => {
            let sub = Subscriber::new(&path, WAIT).unwrap();
            say("joined");
            sub.iter().map(Result::unwrap).collect()
        }
        other => panic!("unknown role {other}"),
    };
    assert_eq!(frames.len() as u64, FRAMES);
    for (seq, f) in frames.iter().enumerate() {
        assert_eq!(f.metadata().sequence, seq as u64);
        check_f32_frame(f);
    }
    say("verified");
}

#[test]
fn the_format_crosses_a_channel_to_another_process() {
    let dir = TempDir::new("format-channel");
    let path = dir.file("s");
    let listener = Listener::bind(&path).unwrap();
    let mut peer = spawn("channel", &path);
    let ch = listener.accept(WAIT).unwrap();
    let pool = Pool::shm(Some("rust-format"), 8, 64).unwrap();
    for seq in 0..FRAMES {
        ch.send(&f32_frame(&pool, seq)).unwrap();
    }
    peer.wait_for("verified");
    peer.assert_success();
}

#[test]
fn the_format_crosses_a_stream_to_another_process() {
    let dir = TempDir::new("format-stream");
    let name = dir.file("typed");
    let mut opts = PublisherOptions::default();
    opts.slow_policy = parallax::SlowPolicy::Block;
    opts.block_timeout = WAIT;
    let publisher = Publisher::new(&name, &opts).unwrap();
    let mut peer = spawn("stream", &name);
    // The publisher admits the subscriber inside poll.
    while publisher.subscriber_count() == 0 {
        publisher.poll(Some(Duration::from_millis(10))).unwrap();
    }
    peer.wait_for("joined");
    let pool = Pool::shm(Some("rust-format"), 8, 64).unwrap();
    for seq in 0..FRAMES {
        publisher.publish(&f32_frame(&pool, seq)).unwrap();
    }
    drop(publisher); // the end of the stream
    peer.wait_for("verified");
    peer.assert_success();
}

#[test]
fn the_format_crosses_a_channel_within_a_process_and_a_cleared_one_arrives_untyped() {
    let (a, b) = Channel::pair().unwrap();
    let pool = Pool::shm(Some("rust-format"), 8, 64).unwrap();
    let typed = f32_frame(&pool, 3);
    a.send(&typed).unwrap();
    check_f32_frame(&b.recv(WAIT).unwrap());
    let mut untyped = typed.clone();
    untyped.clear_format().unwrap();
    a.send(&untyped).unwrap();
    assert_eq!(b.recv(WAIT).unwrap().format(), None);
}
