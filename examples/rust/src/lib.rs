// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the producer and consumer examples share: the frame pattern, the clock, and the
//! consumers' checks and report.

use std::time::Instant;

/// Byte `j` of frame `k`.
pub fn pattern(k: u64, j: usize) -> u8 {
    (k as usize).wrapping_add(j) as u8
}

/// Fills `frame` with the pattern of frame `k`.
pub fn fill_pattern(frame: &mut [u8], k: u64) {
    for (j, b) in frame.iter_mut().enumerate() {
        *b = pattern(k, j);
    }
}

/// Index of the first byte of `frame` that breaks the pattern of frame `k`.
pub fn first_bad_byte(frame: &[u8], k: u64) -> Option<usize> {
    frame
        .iter()
        .enumerate()
        .position(|(j, &b)| b != pattern(k, j))
}

/// CLOCK_MONOTONIC in nanoseconds: the clock the C examples stamp `pts_ns` with, so latencies
/// compare across processes and languages.
#[allow(clippy::useless_conversion)] // time_t and c_long are 32-bit on some targets
pub fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_nsec)
}

/// Parses a positive number argument, or exits with usage status 2 and a message.
pub fn positive_arg(name: &str, value: Option<String>) -> u64 {
    match value.as_deref().map(str::parse::<u64>) {
        Some(Ok(n)) if n > 0 => n,
        _ => {
            eprintln!("{name} must be a number > 0");
            std::process::exit(2);
        }
    }
}

/// What a consumer checks of each frame it takes, and the line it prints at the end.
pub struct Received {
    frames: u64,
    bytes: usize,
    latencies: Vec<i64>,
    start: Instant,
}

impl Received {
    /// Expecting `frames` frames; the clock starts now.
    pub fn new(frames: u64) -> Received {
        Received {
            frames,
            bytes: 0,
            latencies: Vec::with_capacity(frames as usize),
            start: Instant::now(),
        }
    }

    /// Frame `k`: its sequence is `k`, its length that of frame 0, every byte the pattern's;
    /// notes its latency from `pts_ns`.
    pub fn check(&mut self, k: u64, frame: &parallax::Buffer) -> Result<(), String> {
        let meta = frame.metadata();
        if let Some(pts) = meta.pts_ns {
            self.latencies.push(now_ns() - pts);
        }
        if k == 0 {
            self.bytes = frame.len();
        }
        if meta.sequence != k || frame.len() != self.bytes {
            return Err(format!(
                "frame {k}: sequence {} and {} bytes",
                meta.sequence,
                frame.len()
            ));
        }
        if let Some(j) = first_bad_byte(frame, k) {
            return Err(format!("frame {k} is not intact at byte {j}"));
        }
        Ok(())
    }

    /// Prints `<label> frames=... bytes=... seconds=... frames_per_s=... GB_per_s=...
    /// p50_latency_us=... p99_latency_us=... verified=all` (the C consumer's format).
    pub fn report(mut self, label: &str) {
        let secs = self.start.elapsed().as_secs_f64();
        self.latencies.sort_unstable();
        let pct = |p: usize| {
            self.latencies
                .get(self.latencies.len() * p / 100)
                .map_or(f64::NAN, |&ns| ns as f64 / 1e3)
        };
        let (frames, bytes) = (self.frames, self.bytes);
        println!(
            "{label} frames={frames} bytes={bytes} seconds={secs:.4} frames_per_s={:.1} \
             GB_per_s={:.3} p50_latency_us={:.1} p99_latency_us={:.1} verified=all",
            frames as f64 / secs,
            frames as f64 * bytes as f64 / secs / 1e9,
            pct(50),
            pct(99)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_wraps_and_checks() {
        let mut f = vec![0u8; 300];
        fill_pattern(&mut f, 255);
        assert_eq!((f[0], f[1], f[299]), (255, 0, 42));
        assert_eq!(first_bad_byte(&f, 255), None);
        f[7] ^= 1;
        assert_eq!(first_bad_byte(&f, 255), Some(7));
        assert_eq!(first_bad_byte(&f, 254), Some(0));
    }

    #[test]
    fn clock_moves_forward() {
        let a = now_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(now_ns() - a >= 1_000_000);
    }
}
