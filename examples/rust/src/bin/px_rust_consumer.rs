// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Takes frames from a producer (examples/c/producer.c or px_rust_producer), checks every byte
//! and the sequence numbers, and reports what the transport achieved:
//!
//!     px_rust_consumer <socket_path> <frames>
//!
//! Frames are read in place in the producer's memory (mapped read-only); dropping each one
//! returns its slot to the producer's pool.
use std::process::ExitCode;
use std::time::{Duration, Instant};

use parallax::Channel;
use parallax_examples::{positive_arg, Received};

fn run(path: &str, frames: u64) -> Result<(), String> {
    // The producer creates the socket when it is ready: retry for a while.
    let deadline = Instant::now() + Duration::from_secs(10);
    let channel = loop {
        match Channel::connect(path, Some(Duration::from_secs(1))) {
            Ok(ch) => break ch,
            Err(e) if Instant::now() >= deadline => return Err(format!("connect: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let mut received = Received::new(frames);
    for k in 0..frames {
        let frame = channel
            .recv(Some(Duration::from_secs(10)))
            .map_err(|e| format!("frame {k}: {e}"))?;
        received.check(k, &frame)?;
    }
    received.report("parallax-rust");
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: px_rust_consumer <socket_path> <frames>");
        return ExitCode::from(2);
    };
    let frames = positive_arg("frames", args.next());
    match run(&path, frames) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("px_rust_consumer: {e}");
            ExitCode::FAILURE
        }
    }
}
