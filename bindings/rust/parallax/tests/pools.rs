// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Pools and slots: capacity, exhaustion, waiting loans, RAII return, into_buffer, threads.
mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_err, TempDir};
use parallax::{HugePageSize, MemoryType, Metadata, Pool, Segment, Status};

fn pool(seg_size: usize, slot_size: usize) -> Pool {
    Pool::heap(seg_size / slot_size, slot_size).unwrap()
}

/// `Duration::MAX` (longer than the C API counts) waits forever: the loan returns the slot
/// another thread gives back 200 ms later.
#[test]
fn loan_timeout_beyond_i64_nanoseconds_waits_for_a_release() {
    let pool = pool(4096, 4096);
    let held = pool.loan().unwrap();
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        drop(held);
    });
    let t0 = Instant::now();
    let slot = pool.loan_timeout(Some(Duration::MAX));
    let waited = t0.elapsed();
    releaser.join().unwrap();
    assert!(slot.is_ok(), "{:?}", slot.err());
    assert!(
        waited >= Duration::from_millis(150),
        "returned after {waited:?}"
    );
}

#[test]
fn the_seeds_pool_has_16_slots_and_slots_go_back_on_drop() {
    let pool = pool(1 << 20, 64 << 10);
    assert_eq!(pool.capacity(), 16);
    assert_eq!(pool.slot_size(), 64 << 10);
    assert_eq!(pool.segment().len(), 1 << 20);
    let base = pool.segment().as_ptr();
    let mut slots: Vec<_> = (0..16).map(|_| pool.loan().unwrap()).collect();
    let mut indices: Vec<usize> = slots.iter().map(|s| s.index()).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..16).collect::<Vec<_>>());
    for s in &slots {
        assert_eq!(s.len(), 64 << 10);
        assert_eq!(s.as_ptr(), base.wrapping_add(s.index() * (64 << 10)));
    }
    assert_eq!(pool.available(), 0);
    let e = assert_err(pool.loan(), Status::WouldBlock, "16 slots is out");
    assert!(e.message().starts_with("px_pool_loan"));
    assert_err(
        pool.loan_timeout(Some(Duration::ZERO)),
        Status::WouldBlock,
        "",
    );
    let t0 = Instant::now();
    assert_err(
        pool.loan_timeout(Some(Duration::from_millis(20))),
        Status::Timeout,
        "",
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(15),
        "timed out too early: {:?}",
        t0.elapsed()
    );
    slots.pop();
    assert_eq!(pool.available(), 1);
    drop(slots);
    assert_eq!(pool.available(), 16);
}

#[test]
fn slot_memory_is_writable_and_exclusive() {
    let pool = pool(4096, 1024);
    let mut a = pool.loan().unwrap();
    let mut b = pool.loan().unwrap();
    assert_ne!(a.index(), b.index());
    a.fill(0xAA);
    b.fill(0xBB);
    assert!(a.iter().all(|&x| x == 0xAA));
    assert!(b.iter().all(|&x| x == 0xBB));
    assert!(format!("{a:?}").contains("index"));
}

#[test]
fn into_buffer_carries_the_bytes_and_returns_the_slot_with_the_last_buffer() {
    let pool = pool(4096, 1024);
    let mut slot = pool.loan().unwrap();
    let index = slot.index();
    slot[..4].copy_from_slice(b"data");
    let mut meta = Metadata::with_sequence(5);
    meta.pts_ns = Some(123);
    let buf = slot.into_buffer(4, &meta).unwrap();
    assert_eq!(&buf[..], b"data");
    assert_eq!(buf.offset(), index * 1024);
    assert_eq!(buf.metadata(), meta);
    assert_eq!(pool.available(), 3, "the buffer holds the slot");
    let clone = buf.clone();
    let slice = buf.slice(1, 2).unwrap();
    drop(buf);
    drop(clone);
    assert_eq!(pool.available(), 3, "the slice still holds it");
    assert_eq!(&slice[..], b"at");
    drop(slice);
    assert_eq!(pool.available(), 4);
}

#[test]
fn into_buffer_with_a_bad_length_still_consumes_the_slot() {
    let pool = pool(4096, 1024);
    let slot = pool.loan().unwrap();
    assert_err(
        slot.into_buffer(0, &Metadata::default()),
        Status::Invalid,
        "",
    );
    assert_eq!(pool.available(), 4, "the refused slot went back");
    let slot = pool.loan().unwrap();
    assert_err(
        slot.into_buffer(1025, &Metadata::default()),
        Status::Invalid,
        "",
    );
    assert_eq!(pool.available(), 4);
}

#[test]
fn pool_bad_input() {
    assert_err(Pool::heap(4, 0), Status::Invalid, "");
    assert_err(Pool::heap(0, 64), Status::Invalid, "");
    assert_err(Pool::shm(None, usize::MAX, 2), Status::Invalid, "overflow");
    assert_err(Pool::shm(Some("a\0b"), 1, 64), Status::Invalid, "NUL");
    let seg = Segment::heap(4096).unwrap();
    // SAFETY (all below): these pools are refused, or the only users of their segment.
    assert_err(
        unsafe { Pool::new(&seg, 0) },
        Status::Invalid,
        "slot_size is 0",
    );
    assert_err(unsafe { Pool::new(&seg, 4097) }, Status::Invalid, "");
    assert_err(unsafe { Pool::new(&seg, usize::MAX) }, Status::Invalid, "");
    let dir = TempDir::new("pool");
    let path = dir.file("ro");
    std::fs::write(&path, [0u8; 4096]).unwrap();
    let ro = Segment::file_open_readonly(&path).unwrap();
    assert_err(
        unsafe { Pool::new(&ro, 64) },
        Status::Unsupported,
        "read-only",
    );
    // Over a file this process alone controls, a pool is fine.
    let rw = Segment::file_open(&path).unwrap();
    let file_pool = unsafe { Pool::new(&rw, 1024) }.unwrap();
    let mut slot = file_pool.loan().unwrap();
    slot[..4].copy_from_slice(b"disk");
    drop(slot);
    drop(file_pool);
    rw.flush().unwrap();
    assert_eq!(&std::fs::read(&path).unwrap()[..4], b"disk");
}

#[test]
fn safe_constructors_make_their_own_memory() {
    let heap = Pool::heap(3, 100).unwrap();
    assert_eq!((heap.capacity(), heap.slot_size()), (3, 100));
    assert_eq!(heap.segment().memory_type(), MemoryType::Heap);
    let shm = Pool::shm(Some("frames"), 4, 4096).unwrap();
    assert_eq!(shm.segment().memory_type(), MemoryType::Shared);
    assert!(shm.capacity() >= 1 && shm.capacity() <= 4);
    let huge = Pool::hugepage(HugePageSize::Size2MiB, 2, 4096, true).unwrap();
    assert!(
        huge.capacity() >= 2,
        "rounded up to whole pages: {}",
        huge.capacity()
    );
    assert_ne!(heap.segment().as_ptr(), shm.segment().as_ptr());
}

#[test]
fn pool_keeps_its_segment_and_slots_keep_the_pool() {
    let pool = Pool::shm(Some("keep"), 2, 4096).unwrap();
    let seg = pool.segment();
    let mut slot = pool.loan().unwrap();
    let other = pool.clone();
    drop(pool);
    assert_eq!(other.available(), other.capacity() - 1);
    drop(other);
    drop(seg);
    slot[4095] = 1; // pool and segment are alive while the slot is out
    let buf = slot.into_buffer(4096, &Metadata::default()).unwrap();
    assert_eq!(buf[4095], 1);
    assert_eq!(buf.segment().len(), 8192);
}

#[test]
fn a_waiting_loan_wakes_when_another_thread_returns_a_slot() {
    let pool = Arc::new(pool(2048, 1024));
    let a = pool.loan().unwrap();
    let b = pool.loan().unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let waiter = {
        let (pool, barrier) = (pool.clone(), barrier.clone());
        thread::spawn(move || {
            barrier.wait();
            let t0 = Instant::now();
            let s = pool.loan_timeout(Some(Duration::from_secs(10))).unwrap();
            (s.index(), t0.elapsed())
        })
    };
    barrier.wait();
    thread::sleep(Duration::from_millis(30));
    let returned = a.index();
    drop(a); // a slot moves between threads: Slot is Send
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got, returned);
    assert!(waited < Duration::from_secs(5), "woken late: {waited:?}");
    drop(b);
    // Forever-waiting loan with a free slot returns at once.
    assert!(pool.loan_timeout(None).is_ok());
}

#[test]
fn threads_loan_and_return_without_losing_slots() {
    let pool = Arc::new(pool(64 * 256, 256));
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                for i in 0..2000u32 {
                    let mut s = pool.loan_timeout(None).unwrap();
                    s.fill(t);
                    assert!(s.iter().all(|&x| x == t), "another thread wrote my slot");
                    if i % 3 == 0 {
                        let b = s
                            .into_buffer(256, &Metadata::with_sequence(u64::from(i)))
                            .unwrap();
                        assert!(b.iter().all(|&x| x == t));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(pool.available(), 64);
}
