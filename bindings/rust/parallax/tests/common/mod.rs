// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod peer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use parallax::{Buffer, Error, Metadata, Pool, Status};

/// A fresh directory under the system temp dir, removed with its files on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("px-rust-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Asserts that `result` failed with `status` and a message containing `needle`.
#[track_caller]
pub fn assert_err<T: std::fmt::Debug>(
    result: Result<T, Error>,
    status: Status,
    needle: &str,
) -> Error {
    match result {
        Ok(v) => panic!("expected {status} ({needle:?}), got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.status(), status, "wrong status; message: {}", e.message());
            assert!(
                e.message().contains(needle),
                "message {:?} lacks {needle:?}",
                e.message()
            );
            e
        }
    }
}

/// Byte j of frame `seq` in the producer/consumer examples.
pub fn pattern(seq: u64, j: usize) -> u8 {
    (seq as usize).wrapping_add(j) as u8
}

/// A frame filling one whole slot of `pool` with `pattern(seq, _)`, its `sequence` set to `seq`
/// (waits up to 10 s for a free slot).
pub fn pattern_frame(pool: &Pool, seq: u64) -> Buffer {
    let mut slot = pool.loan_timeout(Some(Duration::from_secs(10))).unwrap();
    for (j, b) in slot.iter_mut().enumerate() {
        *b = pattern(seq, j);
    }
    slot.into_buffer(pool.slot_size(), &Metadata::with_sequence(seq))
        .unwrap()
}

/// The user sequence of a received `pattern_frame`, after checking its length and every byte.
#[track_caller]
pub fn checked_pattern(buf: &Buffer, len: usize) -> u64 {
    let seq = buf.metadata().sequence;
    assert_eq!(buf.len(), len, "frame {seq}");
    if let Some(j) = (0..buf.len()).find(|&j| buf[j] != pattern(seq, j)) {
        panic!(
            "frame {seq}: byte {j} is {} instead of {}",
            buf[j],
            pattern(seq, j)
        );
    }
    seq
}
