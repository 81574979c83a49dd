// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Receives a stream's frames by name and checks every byte: the Rust counterpart of
//! examples/c/stream_subscriber.c, with the same command line, for the same publishers
//! (examples/c/stream_publisher.c, or any that writes frames.h's pattern):
//!
//!     px_rust_stream_subscriber <name> <frames> [--hold K] [--delay-ms MS]
//!
//! Starts before or after the publisher (it waits up to 30 s for it). Verifies each frame
//! against the pattern for its metadata.sequence, until it has received frame <frames>-1 or the
//! publisher has gone (the iterator ends after everything sent was received). --hold K keeps
//! the latest K frames instead of dropping each at once (they stay valid however long they are
//! kept, even after the publisher has gone); --delay-ms makes it slow, which is what the
//! publisher's policy is for. Prints a summary; exits 0 when no frame was damaged.
use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::Duration;

use parallax::{Buffer, Subscriber};
use parallax_examples::first_bad_byte;

const USAGE: &str = "usage: px_rust_stream_subscriber <name> <frames> [--hold K] [--delay-ms MS]";
const MAX_HOLD: u64 = 64;

struct Config {
    name: String,
    frames: u64,
    hold: usize,
    delay: Duration,
}

/// A whole number in `min..=max`, or a message naming the argument.
fn number(what: &str, value: Option<String>, min: u64, max: u64) -> Result<u64, String> {
    match value.as_deref().map(str::parse::<u64>) {
        Some(Ok(n)) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{what} must be a whole number in {min}..={max}")),
    }
}

fn parse_args() -> Result<Config, String> {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .ok_or("a name and a frame count (> 0) are needed")?;
    let frames = number("<frames>", args.next(), 1, 1_000_000_000)?;
    let mut cfg = Config {
        name,
        frames,
        hold: 0,
        delay: Duration::ZERO,
    };
    while let Some(opt) = args.next() {
        match opt.as_str() {
            "--hold" => cfg.hold = number("--hold", args.next(), 0, MAX_HOLD)? as usize,
            "--delay-ms" => {
                cfg.delay = Duration::from_millis(number("--delay-ms", args.next(), 0, 60_000)?)
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(cfg)
}

/// What came: frames received and damaged, the first and last sequence.
#[derive(Default)]
struct Tally {
    received: u64,
    damaged: u64,
    first: Option<u64>,
    last: u64,
}

impl Tally {
    fn check(&mut self, frame: &Buffer) {
        let k = frame.metadata().sequence;
        if let Some(j) = first_bad_byte(frame, k) {
            eprintln!("px_rust_stream_subscriber: frame {k} damaged at byte {j}");
            self.damaged += 1;
        }
        self.received += 1;
        self.first.get_or_insert(k);
        self.last = k;
    }
}

fn run(cfg: &Config) -> Result<Tally, parallax::Error> {
    let sub = Subscriber::new(&cfg.name, Some(Duration::from_secs(30)))?;
    let mut held = VecDeque::with_capacity(cfg.hold);
    let mut tally = Tally::default();
    for frame in sub.iter() {
        let frame = frame?;
        tally.check(&frame);
        let last = frame.metadata().sequence;
        if cfg.hold > 0 {
            if held.len() == cfg.hold {
                held.pop_front(); // its slot goes back to the publisher's pool
            }
            held.push_back(frame);
        }
        std::thread::sleep(cfg.delay);
        if last + 1 >= cfg.frames {
            break;
        }
    }
    let missed = sub.stats()?.missed;
    let description = sub.description()?;
    println!(
        "px_rust_stream_subscriber {}: received {} frames ({}..{}), missed {missed}, damaged {}; \
         description \"{description}\"",
        std::process::id(),
        tally.received,
        tally.first.unwrap_or(0),
        tally.last,
        tally.damaged,
    );
    Ok(tally)
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(why) => {
            eprintln!("px_rust_stream_subscriber: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&cfg) {
        Ok(t) if t.damaged == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("px_rust_stream_subscriber: {e}");
            ExitCode::FAILURE
        }
    }
}
