// SPDX-License-Identifier: Apache-2.0 OR MIT
//! A Rust process receiving frames from the C producer example (examples/c/producer.c):
//! `px_producer <socket_path> <frames> <frame_bytes>` listens on the path and sends `frames`
//! frames; byte j of frame k is `(k + j) & 0xff` and metadata.sequence is k. It exits once the
//! consumer hangs up.
mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{pattern, TempDir};
use parallax::{Channel, Status};

const FRAMES: u64 = 40;
const FRAME_BYTES: usize = 256 << 10;

/// The producer binary, or the reason it cannot be used.
fn producer() -> Result<PathBuf, String> {
    let dir = std::env::var_os("PARALLAX_BUILD_DIR")
        .ok_or("PARALLAX_BUILD_DIR is not set (run bindings/rust/run_tests.sh <build-dir>)")?;
    let exe = PathBuf::from(dir).join("examples/c/px_producer");
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "{} does not exist (examples/c/producer.c not built)",
            exe.display()
        ))
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn rust_receives_frames_from_the_c_producer() {
    let exe = match producer() {
        Ok(exe) => exe,
        Err(why) => {
            // Straight to stderr: libtest captures println! of passing tests, and a skip
            // must be seen.
            let msg = format!("SKIPPED rust_receives_frames_from_the_c_producer: {why}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
            return;
        }
    };
    let dir = TempDir::new("c-producer");
    let socket = dir.file("producer.sock");
    let mut child = KillOnDrop(
        Command::new(&exe)
            .arg(&socket)
            .arg(FRAMES.to_string())
            .arg(FRAME_BYTES.to_string())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display())),
    );

    // The producer creates the socket when it is ready; retry until then.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ch = loop {
        match Channel::connect(&socket, Some(Duration::from_secs(1))) {
            Ok(ch) => break ch,
            Err(e) => {
                if let Some(status) = child.0.try_wait().unwrap() {
                    panic!(
                        "px_producer exited ({status}) before accepting: last connect error {e}"
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "could not connect to px_producer: {e}"
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    };

    let mut previous_pts = None;
    for seq in 0..FRAMES {
        let buf = ch.recv(Some(Duration::from_secs(10))).unwrap();
        assert!(
            buf.is_readonly(),
            "frames from another process are mapped read-only"
        );
        assert_eq!(buf.len(), FRAME_BYTES);
        let meta = buf.metadata();
        assert_eq!(meta.sequence, seq);
        let pts = meta.pts_ns.expect("the producer stamps pts_ns");
        assert!(previous_pts.is_none_or(|p| pts >= p), "pts went backwards");
        previous_pts = Some(pts);
        if let Some(j) = (0..FRAME_BYTES).find(|&j| buf[j] != pattern(seq, j)) {
            panic!(
                "frame {seq}: byte {j} is {} instead of {}",
                buf[j],
                pattern(seq, j)
            );
        }
    }
    // Nothing more: the producer waits for us to hang up.
    assert_eq!(
        ch.recv(Some(Duration::from_millis(100)))
            .unwrap_err()
            .status(),
        Status::Timeout
    );
    drop(ch);

    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "px_producer did not exit after the consumer hung up"
        );
        thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "px_producer failed ({status}): {err}");
}
