// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Buffers: range checks, clone and slice aliasing, metadata per buffer, lifetimes, read-only.
mod common;

use common::{assert_err, TempDir};
use parallax::{Buffer, Metadata, Segment, Status};

fn filled_shm(len: usize) -> Segment {
    let seg = Segment::shm(Some("buffers"), len).unwrap();
    // SAFETY: no buffer or slot exists over it yet.
    let bytes = unsafe { seg.as_mut_slice().unwrap() };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = i as u8;
    }
    seg
}

#[test]
fn buffer_new_checks_the_range_and_names_it() {
    let seg = Segment::heap(4096).unwrap();
    let meta = Metadata::default();
    // SAFETY (all below): nothing writes this segment while the buffers live.
    let e = assert_err(
        unsafe { Buffer::new(&seg, 4090, 16, &meta) },
        Status::Invalid,
        "",
    );
    assert_eq!(
        e.message(),
        "px_buffer_new: range [4090, +16) exceeds segment length 4096"
    );
    assert_err(
        unsafe { Buffer::new(&seg, usize::MAX, 2, &meta) },
        Status::Invalid,
        "",
    );
    assert_err(
        unsafe { Buffer::new(&seg, 2, usize::MAX, &meta) },
        Status::Invalid,
        "",
    );
    let empty = unsafe { Buffer::new(&seg, 4096, 0, &meta) }.unwrap();
    assert_eq!(empty.len(), 0);
    assert!(empty.is_empty());
    assert_eq!(&empty[..], b"");
    let whole = unsafe { Buffer::from_segment(&seg, &meta) }.unwrap();
    assert_eq!(whole.len(), 4096);
    assert!(!whole.is_readonly());
}

#[test]
fn metadata_with_too_much_user_data_never_reaches_the_library() {
    let mut m = Metadata::default();
    assert_err(m.set_user(&[0; 65]), Status::Invalid, "65 bytes");
}

#[test]
fn clone_and_slice_alias_memory_and_metadata_is_per_buffer() {
    let seg = filled_shm(8192);
    let mut meta = Metadata::with_sequence(1);
    meta.pts_ns = Some(1000);
    meta.set_user(b"abc").unwrap();
    // SAFETY: nothing writes the segment any more.
    let whole = unsafe { Buffer::from_segment(&seg, &meta) }.unwrap();
    drop(seg); // the buffer keeps the segment alive
    assert_eq!(whole.len(), 8192);
    assert_eq!(whole[300], 300u16 as u8);

    let slice = whole.slice(100, 50).unwrap();
    assert_eq!(slice.offset(), 100);
    assert_eq!(slice.as_ptr(), whole.as_ptr().wrapping_add(100));
    assert_eq!(slice.metadata(), meta, "a slice keeps the metadata");
    let sub = slice.slice(10, 40).unwrap();
    assert_eq!(sub.offset(), 110);
    assert_eq!(sub[0], 110);
    let e = assert_err(slice.slice(10, 41), Status::Invalid, "");
    assert_eq!(
        e.message(),
        "px_buffer_slice: range [10, +41) exceeds buffer length 50"
    );
    assert_err(slice.slice(usize::MAX, 1), Status::Invalid, "");

    let mut clone = whole.clone();
    assert_eq!(
        clone.as_ptr(),
        whole.as_ptr(),
        "a clone is the same memory, no copy"
    );
    clone.set_metadata(&Metadata::with_sequence(99)).unwrap();
    assert_eq!(clone.metadata().sequence, 99);
    assert_eq!(
        whole.metadata().sequence,
        1,
        "the original keeps its metadata"
    );
    assert_eq!(whole.metadata().user(), b"abc");
    assert_eq!(whole.metadata().pts_ns, Some(1000));
    let tried = whole.try_clone().unwrap();
    assert_eq!(tried.metadata(), meta);
    drop(whole);
    drop(clone);
    drop(tried);
    assert_eq!(
        &sub[..3],
        &[110, 111, 112],
        "slices outlive the buffer they came from"
    );
    assert_eq!(sub.segment().len(), 8192);
    assert!(format!("{sub:?}").contains("offset: 110"));
}

#[test]
fn buffers_of_read_only_files_say_so() {
    let dir = TempDir::new("ro-buffer");
    let path = dir.file("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let seg = Segment::file_open_readonly(&path).unwrap();
    // SAFETY: nothing writes the file during the test.
    let buf = unsafe { Buffer::from_segment(&seg, &Metadata::default()) }.unwrap();
    assert!(buf.is_readonly());
    assert_eq!(&buf[..], b"0123456789");
}

#[test]
fn raw_handles_round_trip() {
    let seg = Segment::heap(64).unwrap();
    // SAFETY: nothing writes the segment.
    let buf = unsafe { Buffer::new(&seg, 8, 8, &Metadata::with_sequence(3)) }.unwrap();
    let raw = buf.into_raw();
    // SAFETY: we got ownership from into_raw and give it back.
    let back = unsafe { Buffer::from_raw(raw) };
    assert_eq!(
        (back.offset(), back.len(), back.metadata().sequence),
        (8, 8, 3)
    );
    assert_eq!(back.as_raw(), raw.as_ptr());
}

#[test]
fn buffers_move_and_are_shared_between_threads() {
    let seg = filled_shm(4096);
    // SAFETY: nothing writes the segment any more.
    let buf =
        std::sync::Arc::new(unsafe { Buffer::from_segment(&seg, &Metadata::default()) }.unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let buf = buf.clone();
            std::thread::spawn(move || {
                let mine = (*buf).clone();
                (0..4096).all(|i| mine[i] == i as u8)
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
}
