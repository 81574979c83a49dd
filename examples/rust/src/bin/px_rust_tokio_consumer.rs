// SPDX-License-Identifier: Apache-2.0 OR MIT
//! px_rust_consumer on a Tokio runtime: takes frames from a producer (examples/c/producer.c or
//! px_rust_producer) with `recv().await`, checks every byte and the sequence numbers, and
//! reports what the transport achieved, in the same line format:
//!
//!     px_rust_tokio_consumer <socket_path> <frames>
//!
//! The channel's fd is watched by the Tokio reactor (no thread blocked in recv); a ticker task
//! runs beside it on the same runtime to show that waiting for frames holds nothing up. Needs
//! the `tokio` feature of this crate (`cargo run --features tokio --bin px_rust_tokio_consumer`).
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use parallax::{AsyncChannel, Channel};
use parallax_examples::{positive_arg, Received};

/// Connects, retrying while the producer is not listening yet (it creates the socket when it
/// is ready). Connecting may wait, so it runs off the runtime's threads.
async fn connect(path: String) -> Result<AsyncChannel, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = path.clone();
        let attempt =
            tokio::task::spawn_blocking(move || Channel::connect(p, Some(Duration::from_secs(1))));
        match attempt.await.map_err(|e| format!("connect: {e}"))? {
            Ok(ch) => return AsyncChannel::new(ch).map_err(|e| format!("register: {e}")),
            Err(e) if Instant::now() >= deadline => return Err(format!("connect: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn run(path: String, frames: u64) -> Result<(), String> {
    let mut channel = connect(path).await?;
    // Something else the runtime does meanwhile.
    let ticker = tokio::spawn(async {
        let mut every = tokio::time::interval(Duration::from_millis(1));
        loop {
            every.tick().await;
        }
    });
    let mut received = Received::new(frames);
    for k in 0..frames {
        // The stream's end (the producer gone) before all frames came is an error here.
        let frame = match channel.next().await {
            Some(frame) => frame.map_err(|e| format!("frame {k}: {e}"))?,
            None => return Err(format!("the producer hung up after {k} frames")),
        };
        received.check(k, &frame)?;
    }
    ticker.abort();
    received.report("parallax-rust-tokio");
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: px_rust_tokio_consumer <socket_path> <frames>");
        return ExitCode::from(2);
    };
    let frames = positive_arg("frames", args.next());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("px_rust_tokio_consumer: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(path, frames)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("px_rust_tokio_consumer: {e}");
            ExitCode::FAILURE
        }
    }
}
