// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod peer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use parallax::{Error, Status};

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
