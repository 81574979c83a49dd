// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Serves frames to one consumer over a socket path, zero-copy (like examples/c/producer.c):
//!
//!     px_rust_producer <socket_path> <frames> <frame_bytes>
//!
//! Each frame is written into a slot of a 4-slot shared-memory pool and sent over a channel;
//! when every slot is out it waits for the consumer to release one (backpressure). It exits
//! once the consumer hangs up, so that every frame was taken.
use std::process::ExitCode;
use std::time::Duration;

use parallax::{Listener, Metadata, Pool, Status};
use parallax_examples::{fill_pattern, now_ns, positive_arg};

const SLOTS: usize = 4;

fn run(path: &str, frames: u64, bytes: usize) -> Result<(), parallax::Error> {
    let pool = Pool::shm(Some("px_rust_producer"), SLOTS, bytes)?;
    let listener = Listener::bind(path)?;
    let channel = listener.accept(Some(Duration::from_secs(30)))?;
    for k in 0..frames {
        let mut slot = pool.loan_timeout(Some(Duration::from_secs(10)))?;
        fill_pattern(&mut slot[..bytes], k);
        let mut meta = Metadata::with_sequence(k);
        meta.pts_ns = Some(now_ns());
        let frame = slot.into_buffer(bytes, &meta)?;
        channel.send(&frame)?;
        // Dropping our reference here: the consumer's keeps the slot out until it is done.
    }
    // Wait for the consumer to hang up.
    match channel.recv(Some(Duration::from_secs(30))) {
        Err(e) if e.status() == Status::Closed => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Ok(()), // the consumer sent something back: not part of this protocol, ignore
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: px_rust_producer <socket_path> <frames> <frame_bytes>");
        return ExitCode::from(2);
    };
    let frames = positive_arg("frames", args.next());
    let bytes = positive_arg("frame_bytes", args.next()) as usize;
    match run(&path, frames, bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("px_rust_producer: {e}");
            ExitCode::FAILURE
        }
    }
}
