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
use parallax_examples::{first_bad_byte, now_ns, positive_arg};

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
    let mut latencies = Vec::with_capacity(frames as usize);
    let mut bytes = 0;
    let t0 = Instant::now();
    for k in 0..frames {
        let frame = channel
            .recv(Some(Duration::from_secs(10)))
            .map_err(|e| format!("frame {k}: {e}"))?;
        let meta = frame.metadata();
        if let Some(pts) = meta.pts_ns {
            latencies.push(now_ns() - pts);
        }
        if k == 0 {
            bytes = frame.len();
        }
        if meta.sequence != k || frame.len() != bytes {
            return Err(format!(
                "frame {k}: sequence {} and {} bytes",
                meta.sequence,
                frame.len()
            ));
        }
        if let Some(j) = first_bad_byte(&frame, k) {
            return Err(format!("frame {k} is not intact at byte {j}"));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: usize| {
        latencies
            .get(latencies.len() * p / 100)
            .map_or(f64::NAN, |&ns| ns as f64 / 1e3)
    };
    println!(
        "parallax-rust frames={frames} bytes={bytes} seconds={secs:.4} frames_per_s={:.1} \
         GB_per_s={:.3} p50_latency_us={:.1} p99_latency_us={:.1} verified=all",
        frames as f64 / secs,
        frames as f64 * bytes as f64 / secs / 1e9,
        pct(50),
        pct(99)
    );
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
