// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What iceoryx2 leaves behind. Its nodes keep shared memory in /dev/shm and node and service
//! records under /tmp/iceoryx2; a process killed mid-run (a stuck case, Ctrl-C) leaves them
//! there. This benchmark's nodes name every such file with their own prefix
//! ([`iox::FILE_PREFIX`]), so removing those before and after a run touches no other program's.
//! The Python benchmark uses the same prefix and the same lock.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::iox::FILE_PREFIX;

const SHM_DIR: &str = "/dev/shm";
const ICEORYX2_ROOT: &str = "/tmp/iceoryx2";
const LOCK_PATH: &str = "/tmp/px-bench-iceoryx2.lock";

/// Removes every file and directory named with the prefix; returns how many.
pub fn remove_leftovers() -> usize {
    remove_prefixed(Path::new(SHM_DIR), false) + remove_prefixed(Path::new(ICEORYX2_ROOT), true)
}

fn remove_prefixed(dir: &Path, recurse: bool) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if entry.file_name().to_string_lossy().starts_with(FILE_PREFIX) {
            let gone = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed += gone.is_ok() as usize;
        } else if is_dir && recurse {
            removed += remove_prefixed(&path, true);
        }
    }
    removed
}

/// Held for the whole run: a second benchmark at the same time would remove this one's files
/// as leftovers (and halve both figures).
pub struct RunLock {
    _file: File,
}

pub fn lock_run() -> Result<RunLock, String> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .map_err(|e| format!("{LOCK_PATH}: {e}"))?;
    // SAFETY: a valid open fd.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "another iceoryx2 benchmark is running (it holds {LOCK_PATH}); wait for it to finish"
        ));
    }
    Ok(RunLock { _file: file })
}
