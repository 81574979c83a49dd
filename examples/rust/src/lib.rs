// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the producer and consumer examples share: the frame pattern and the clock.

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
