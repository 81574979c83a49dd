// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The two processes of a run and what they do, whatever the library: the leader measures, the
//! follower echoes (latency) or consumes (stream). Each library only provides a [`Link`]; the
//! loops, the frames, the clock and the placement are the same code for both, so the two
//! libraries are measured by the same instructions.

use std::io::Read;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::case::{Case, Kind};

/// "Answer when you get here": the stream's drain (every frame sent so far has been consumed).
pub const MARK: u64 = u64::MAX - 1;
/// "Exit".
pub const STOP: u64 = u64::MAX;
/// A step that takes longer than this is a failure (a dead or stuck peer), not a slow figure.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// The fd at which a follower finds what its leader handed it (libparallax: its socket end).
pub const INHERITED_FD: RawFd = 3;

/// One side of a two-way link between the leader and the follower.
pub trait Link {
    /// Loans a frame of this side's outgoing size, writes `seq` into its first 8 bytes and its
    /// last byte, and sends it (waking the peer where the mode needs it).
    fn send(&mut self, seq: u64) -> Result<(), String>;
    /// Waits, as the mode says, for the peer's next frame, reads its first 8 bytes and its last
    /// byte, releases it and returns the sequence number. `None`: the peer has gone.
    fn recv(&mut self) -> Result<Option<u64>, String>;
}

// ---- frames ----------------------------------------------------------------------------------
// A frame carries its sequence number in its first 8 bytes and the number's low byte in its last
// byte: the consumer reads both (the first and the last cache line of the frame, as a consumer
// that looks at a header and a trailer does) and checks they agree. The rest is never touched,
// by either library's producer or consumer.

pub fn write_frame(frame: &mut [u8], seq: u64) {
    let n = frame.len();
    frame[..8].copy_from_slice(&seq.to_le_bytes());
    frame[n - 1] = seq as u8;
}

/// For loans whose memory Rust calls uninitialised (iceoryx2's `loan_slice_uninit`): the same
/// two writes without pretending the rest was written.
pub fn write_frame_uninit(frame: &mut [MaybeUninit<u8>], seq: u64) {
    let n = frame.len();
    for (dst, b) in frame[..8].iter_mut().zip(seq.to_le_bytes()) {
        dst.write(b);
    }
    frame[n - 1].write(seq as u8);
}

pub fn read_frame(frame: &[u8]) -> Result<u64, String> {
    if frame.len() < 9 {
        return Err(format!("a frame of {} bytes arrived", frame.len()));
    }
    let seq = u64::from_le_bytes(frame[..8].try_into().expect("8 bytes"));
    let last = frame[frame.len() - 1];
    if last != seq as u8 {
        return Err(format!(
            "frame {seq}: its last byte is {last}, not {}",
            seq as u8
        ));
    }
    Ok(seq)
}

// ---- placement -------------------------------------------------------------------------------

/// Pins the calling process to `cpu` (-1: every online CPU, whatever the parent had).
pub fn pin_to(cpu: i32) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; the CPU_* helpers index within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu < 0 {
            let n = libc::sysconf(libc::_SC_NPROCESSORS_ONLN).clamp(1, 1024) as usize;
            for i in 0..n {
                libc::CPU_SET(i, &mut set);
            }
        } else {
            libc::CPU_SET(cpu as usize, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            return Err(format!(
                "sched_setaffinity(cpu {cpu}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Where a process ran: every 16th message it notes its CPU, so that an unpinned result can say
/// whether the scheduler kept both processes on one core or spread them over two.
#[derive(Clone, Debug, Default)]
pub struct CpuTally {
    counts: Vec<u64>,
    calls: u64,
}

impl CpuTally {
    pub fn note(&mut self) {
        self.calls += 1;
        if self.calls % 16 != 1 {
            return;
        }
        // SAFETY: no arguments; returns -1 on failure.
        let cpu = unsafe { libc::sched_getcpu() };
        if (0..1024).contains(&cpu) {
            let cpu = cpu as usize;
            if self.counts.len() <= cpu {
                self.counts.resize(cpu + 1, 0);
            }
            self.counts[cpu] += 1;
        }
    }

    /// "CPUS 12,0,3" (counts per CPU), for the follower's one line to its leader.
    pub fn encode(&self) -> String {
        let v: Vec<String> = self.counts.iter().map(u64::to_string).collect();
        format!("CPUS {}", v.join(","))
    }

    pub fn decode(line: &str) -> Option<CpuTally> {
        let list = line.trim().strip_prefix("CPUS ")?;
        let counts = if list.is_empty() {
            Vec::new()
        } else {
            list.split(',')
                .map(|s| s.parse().ok())
                .collect::<Option<Vec<u64>>>()?
        };
        Some(CpuTally { counts, calls: 0 })
    }

    /// Sum over CPUs of the smaller share: 1 = both always on the same single CPU, 0 = never on
    /// a common one; -1 when either side noted nothing.
    pub fn overlap(&self, other: &CpuTally) -> f64 {
        let (a, b): (u64, u64) = (self.counts.iter().sum(), other.counts.iter().sum());
        if a == 0 || b == 0 {
            return -1.0;
        }
        let share = |v: &[u64], i: usize, total: u64| *v.get(i).unwrap_or(&0) as f64 / total as f64;
        (0..self.counts.len().max(other.counts.len()))
            .map(|i| share(&self.counts, i, a).min(share(&other.counts, i, b)))
            .sum()
    }
}

// ---- the follower process ---------------------------------------------------------------------

/// A follower started by its leader: this same binary with the role "follower".
pub struct Follower {
    child: Child,
}

impl Follower {
    /// Starts the follower of `case`, handing it `fd` (if any) at [`INHERITED_FD`]; the fd
    /// stays open here too.
    pub fn spawn(case: &Case, fd: Option<RawFd>) -> Result<Follower, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("follower")
            .args(case.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if let Some(fd) = fd {
            // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl).
            unsafe {
                cmd.pre_exec(move || {
                    if fd == INHERITED_FD {
                        // dup2 onto itself keeps FD_CLOEXEC: clear it by hand.
                        if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    } else if libc::dup2(fd, INHERITED_FD) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting the follower: {e}"))?;
        Ok(Follower { child })
    }

    /// Waits for the follower to exit (killing it after [`PATIENCE`]) and returns where it ran.
    pub fn finish(mut self) -> Result<CpuTally, String> {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("the follower did not exit; killed".into());
                }
                Err(e) => return Err(format!("waiting for the follower: {e}")),
            }
        };
        let mut out = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            let _ = pipe.read_to_string(&mut out);
        }
        if !status.success() {
            return Err(format!("the follower failed ({status}); see its stderr"));
        }
        Ok(out.lines().find_map(CpuTally::decode).unwrap_or_default())
    }
}

// ---- the loops ---------------------------------------------------------------------------------

/// What the leader measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Latency: median one-way ns (round trip / 2). Stream: frames per second.
    pub value: f64,
    /// Latency: 99th percentile one-way ns. Stream: 0.
    pub p99: f64,
    /// Round trips timed, or frames streamed.
    pub count: u64,
    pub elapsed_s: f64,
}

/// The leader's side of a run: warm-up, then the measurement the case asks for.
pub fn lead(case: &Case, link: &mut dyn Link, tally: &mut CpuTally) -> Result<Outcome, String> {
    match case.kind {
        Kind::Latency => time_round_trips(case, link, tally),
        Kind::Stream => stream(case, link, tally),
    }
}

fn expect(link: &mut dyn Link, seq: u64) -> Result<(), String> {
    match link.recv()? {
        Some(got) if got == seq => Ok(()),
        Some(got) => Err(format!("expected frame {seq} back, got {got}")),
        None => Err("the follower went away".into()),
    }
}

fn time_round_trips(
    case: &Case,
    link: &mut dyn Link,
    tally: &mut CpuTally,
) -> Result<Outcome, String> {
    let mut seq = 0u64;
    // Warm-up: page faults, first mappings and registrations, caches; at most 20 ms.
    let warm_end = Instant::now() + Duration::from_millis(20);
    for _ in 0..2000 {
        if Instant::now() >= warm_end {
            break;
        }
        link.send(seq)?;
        expect(link, seq)?;
        tally.note();
        seq += 1;
    }
    let mut rtts: Vec<u64> = Vec::with_capacity(1 << 16);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(case.seconds);
    let mut t0 = start;
    while t0 < deadline && rtts.len() < (1 << 22) {
        link.send(seq)?;
        expect(link, seq)?;
        tally.note();
        let t1 = Instant::now();
        rtts.push((t1 - t0).as_nanos() as u64);
        t0 = t1;
        seq += 1;
    }
    if rtts.is_empty() {
        return Err("no round trip completed within the budget".into());
    }
    rtts.sort_unstable();
    let at = |q: f64| rtts[(q * (rtts.len() - 1) as f64) as usize] as f64 / 2.0;
    Ok(Outcome {
        value: at(0.5),
        p99: at(0.99),
        count: rtts.len() as u64,
        elapsed_s: (t0 - start).as_secs_f64(),
    })
}

fn stream(case: &Case, link: &mut dyn Link, tally: &mut CpuTally) -> Result<Outcome, String> {
    let mut seq = 0u64;
    let drain = |link: &mut dyn Link| -> Result<(), String> {
        link.send(MARK)?;
        expect(link, MARK)
    };
    // Warm-up: a tenth of the budget, and every slot used at least twice.
    let warm_end = Instant::now() + Duration::from_secs_f64(case.seconds * 0.1);
    while Instant::now() < warm_end || seq < 2 * case.slots as u64 {
        link.send(seq)?;
        tally.note();
        seq += 1;
    }
    drain(link)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(case.seconds);
    let mut frames = 0u64;
    loop {
        link.send(seq)?;
        tally.note();
        seq += 1;
        frames += 1;
        // The clock every 8 frames: at 8 MiB a frame costs less than reading it.
        if frames.is_multiple_of(8) && Instant::now() >= deadline {
            break;
        }
    }
    drain(link)?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Outcome {
        value: frames as f64 / elapsed,
        p99: 0.0,
        count: frames,
        elapsed_s: elapsed,
    })
}

/// The follower's side: echo every frame (latency) or consume it (stream; only the drain mark
/// is answered), until STOP or the peer goes away.
pub fn follow(case: &Case, link: &mut dyn Link, tally: &mut CpuTally) -> Result<(), String> {
    loop {
        match link.recv()? {
            None | Some(STOP) => return Ok(()),
            Some(seq) => {
                tally.note();
                if case.kind == Kind::Latency || seq == MARK {
                    link.send(seq)?;
                }
            }
        }
    }
}
