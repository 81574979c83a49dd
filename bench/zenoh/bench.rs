// SPDX-License-Identifier: Apache-2.0 OR MIT
//! px_bridge_bench: frames/s of a stream carried through `parallax-bridge export` and
//! `import` on loopback, against plain Zenoh put -> subscribe of the same bytes, same run
//! (issue 17). Built with the bridge (`cargo build --release -p parallax-bridge`):
//!
//!     target/release/px_bridge_bench [--seconds S] [--reps N] [--sizes 4096,8388608]
//!
//! Each repetition runs, for each frame size, the plain pair then the bridged chain, each for
//! S seconds after a warm-up, and counts frames at the far subscriber:
//! - plain: a Zenoh publisher process putting one prepared payload (zero-copy, `Bytes`) in a
//!   loop, and a Zenoh subscriber process receiving samples from Zenoh's default handler (a
//!   FifoChannel of 256) on its main thread;
//! - bridged: a parallax publisher process (slot from a shared pool, policy block) -> export
//!   bridge -> import bridge -> a parallax subscriber process counting frames; the publisher
//!   and the importer let a subscriber have 256 KiB of frames in flight (8 to 128 frames: 64
//!   of 4 KiB, 8 of 8 MiB; see `in_flight`).
//!
//! Like for like: both publish with the bridge's (reliable) settings, which are Zenoh's
//! defaults but for congestion control: reliability Reliable, congestion control Block,
//! express off (Zenoh batches), priority Data; TCP on 127.0.0.1, multicast scouting off; and
//! both have the bridge's Data queue of 8 batches (Zenoh's default is 2).
//! Besides frames/s, each run reports the CPU time (user + system, every thread) all its
//! processes spent per frame in the counting window: on a shared machine frames/s follows the
//! load, CPU per frame much less; and, process by process, user and system CPU and voluntary
//! and involuntary context switches (every thread's) per frame. PX_BENCH_IMPORT_ARGS adds
//! options to the import bridge's command line (e.g. "--policy drop"), PX_BENCH_BRIDGE_ARGS to
//! both bridges' (e.g. "--sched normal": the bridges run as SCHED_BATCH by default, the plain
//! pair as any program does); PX_BENCH_ZENOH="PATH=JSON5;..." sets Zenoh configuration on both
//! sides of the comparison (the plain pair and both bridges). Prints each run with the load
//! average, then the medians and the ratio bridged/plain per size. The roles below are this
//! same binary run again.
//!
//! `--latency-interval-us N`: the publishers send one frame every N us instead of as fast as
//! they can, stamped with CLOCK_MONOTONIC (the plain payload's first 8 bytes; the parallax
//! frame's pts, which the bridges carry), and each run also prints the one-way latency at the
//! far subscriber, p50 and p99.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parallax::{Metadata, Pool, Publisher, PublisherOptions, SlowPolicy, Subscriber};
use zenoh::bytes::ZBytes;
use zenoh::qos::CongestionControl;
use zenoh::Wait;

const WARMUP: Duration = Duration::from_millis(700);
const KEY: &str = "px-bench/frames";

fn zenoh_config(listen: Option<u16>, connect: Option<u16>) -> zenoh::Config {
    let mut c = zenoh::Config::default();
    let ep = |p: u16| format!("[\"tcp/127.0.0.1:{p}\"]");
    c.insert_json5("mode", "\"peer\"").unwrap();
    c.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    same_as_bridge(&mut c);
    c.insert_json5("listen/endpoints", &listen.map_or("[]".into(), ep))
        .unwrap();
    if let Some(p) = connect {
        c.insert_json5("connect/endpoints", &ep(p)).unwrap();
    }
    apply_settings(&mut c);
    c
}

/// What the bridge changes in Zenoh's defaults when it has no --config file, the plain pair
/// gets too: 8 batches queued at priority Data instead of 2 (parallax-bridge's
/// net::DATA_QUEUE_BATCHES).
fn same_as_bridge(c: &mut zenoh::Config) {
    c.insert_json5("transport/link/tx/queue/size/data", "8")
        .unwrap();
}

/// Zenoh settings to compare, applied to both sides (the plain pair and both bridges):
/// PX_BENCH_ZENOH="PATH=JSON5;..." e.g. "transport/link/tx/queue/batching/time_limit=100".
fn settings() -> Vec<(String, String)> {
    let spec = std::env::var("PX_BENCH_ZENOH").unwrap_or_default();
    spec.split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let (k, v) = s.split_once('=').expect("PX_BENCH_ZENOH: PATH=JSON5;...");
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

fn apply_settings(c: &mut zenoh::Config) {
    for (k, v) in settings() {
        c.insert_json5(&k, &v)
            .unwrap_or_else(|e| panic!("PX_BENCH_ZENOH {k}={v}: {e}"));
    }
}

/// The bridges' --config when PX_BENCH_ZENOH sets anything: a peer listening nowhere (as the
/// bridge's own default) with those settings; their --listen/--connect add the endpoints.
fn bridge_config() -> Option<std::path::PathBuf> {
    if settings().is_empty() {
        return None;
    }
    let mut c = zenoh::Config::default();
    c.insert_json5("mode", "\"peer\"").unwrap();
    c.insert_json5("listen/endpoints", "[]").unwrap();
    same_as_bridge(&mut c);
    apply_settings(&mut c);
    let path = std::env::temp_dir().join(format!("px-bench-zenoh-{}.json5", std::process::id()));
    std::fs::write(&path, c.to_string()).unwrap();
    Some(path)
}

/// Counts events from the first one on: `WARMUP`, then `seconds` of counting. Prints "window"
/// when counting starts (the parent reads every process's CPU time then) and, at the end,
/// "done COUNTED SECONDS" (when it reads them again).
struct Meter {
    start: Option<Instant>,
    counted: u64,
    seconds: f64,
}

impl Meter {
    fn new(seconds: f64) -> Meter {
        Meter {
            start: None,
            counted: 0,
            seconds,
        }
    }
    /// One event; true once the window is over (and reported).
    fn tick(&mut self) -> bool {
        let now = Instant::now();
        let start = *self.start.get_or_insert(now);
        let since = now.duration_since(start);
        if since < WARMUP {
            return false;
        }
        if self.counted == 0 {
            println!("window");
        }
        self.counted += 1;
        let window = (since - WARMUP).as_secs_f64();
        if window < self.seconds {
            return false;
        }
        println!("done {} {window}", self.counted);
        true
    }
}

/// CLOCK_MONOTONIC in ns: the stamp a paced frame carries (one clock for every process here).
fn mono_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Paced publishing (`interval_us` > 0, the latency phase): sleeps until the next tick.
struct Pace {
    interval: Duration,
    next: Instant,
}

impl Pace {
    fn new(interval_us: u64) -> Option<Pace> {
        (interval_us > 0).then(|| Pace {
            interval: Duration::from_micros(interval_us),
            next: Instant::now(),
        })
    }
    fn wait(&mut self) {
        self.next += self.interval;
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        } else {
            self.next = now;
        }
    }
}

fn plain_pub(port: u16, size: usize, interval_us: u64) {
    let session = zenoh::open(zenoh_config(Some(port), None)).wait().unwrap();
    let publisher = session
        .declare_publisher(KEY)
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    let payload = bytes::Bytes::from(vec![0x5au8; size]);
    let mut pace = Pace::new(interval_us);
    loop {
        match pace.as_mut() {
            None => publisher.put(ZBytes::from(payload.clone())).wait().unwrap(),
            Some(p) => {
                p.wait();
                // The send time in the payload's first 8 bytes.
                let mut stamped = vec![0x5au8; size.max(8)];
                stamped[..8].copy_from_slice(&mono_ns().to_le_bytes());
                publisher.put(ZBytes::from(stamped)).wait().unwrap();
            }
        }
    }
}

/// One-way latencies (ns) of the frames counted, for the latency phase: printed as
/// "latency P50_US P99_US" after "done".
#[derive(Default)]
struct Latencies(Vec<i64>);

impl Latencies {
    fn report(mut self) {
        if self.0.is_empty() {
            return;
        }
        self.0.sort_unstable();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q) as usize] as f64 / 1e3;
        println!("latency {:.1} {:.1}", at(0.5), at(0.99));
    }
}

fn plain_sub(port: u16, seconds: f64, paced: bool) {
    let session = zenoh::open(zenoh_config(None, Some(port))).wait().unwrap();
    // Zenoh's default handler (a FifoChannel of 256 samples), received on this thread: what a
    // user of the ordinary API writes.
    let sub = session.declare_subscriber(KEY).wait().unwrap();
    println!("ready");
    let mut meter = Meter::new(seconds);
    let mut lat = Latencies::default();
    while let Ok(sample) = sub.recv() {
        let payload = sample.payload();
        std::hint::black_box(payload.len());
        if paced && meter.counted > 0 {
            let mut stamp = [0u8; 8];
            let mut reader = payload.reader();
            if std::io::Read::read_exact(&mut reader, &mut stamp).is_ok() {
                lat.0.push(mono_ns() - i64::from_le_bytes(stamp));
            }
        }
        if meter.tick() {
            return lat.report();
        }
    }
}

fn px_pub(stream: &str, size: usize, interval_us: u64) {
    let mut opts = PublisherOptions::default();
    opts.slow_policy = SlowPolicy::Block;
    opts.block_timeout = None;
    opts.max_in_flight = in_flight(size);
    let publisher = Publisher::new(stream, &opts).unwrap();
    // Room for what the exporter may hold and as many again being filled.
    let slots = (2 * opts.max_in_flight as usize).max(16);
    let pool = Pool::shm(Some("bench"), slots, size).unwrap();
    let mut seq = 0u64;
    let mut pace = Pace::new(interval_us);
    loop {
        if publisher.subscriber_count() == 0 {
            publisher.poll(Some(Duration::from_millis(10))).unwrap();
            continue;
        }
        let mut slot = pool.loan_timeout(None).unwrap();
        slot[0] = seq as u8;
        seq += 1;
        let mut meta = Metadata::with_sequence(seq);
        if let Some(p) = pace.as_mut() {
            p.wait();
            meta.pts_ns = Some(mono_ns()); // the send time, carried by the bridges
        }
        publisher
            .publish(&slot.into_buffer(size, &meta).unwrap())
            .unwrap();
    }
}

/// The parallax publisher's and the importer's max_in_flight (what a subscriber may hold plus
/// what is queued for it): PX_BENCH_IN_FLIGHT, else 256 KiB worth of frames, between the
/// library's default (8, frames from 32 KiB on) and its limit (128): 64 frames of 4 KiB. With
/// 8 of 4 KiB the publisher and the importer slept every 8 frames waiting for credit (0.25
/// context switches per frame each) and the exporter could put no more than 8 frames in a
/// Zenoh message; 8 -> 64 cut the chain's CPU per frame ~10 -> ~7 us (interleaved runs, load
/// 6-7). Plain Zenoh's publisher queues 2 batches of 64 KiB before congestion control blocks
/// it, and both sides have the TCP socket's buffers.
fn in_flight(size: usize) -> u32 {
    match std::env::var("PX_BENCH_IN_FLIGHT") {
        Ok(v) => v.parse().expect("PX_BENCH_IN_FLIGHT: a number"),
        Err(_) => ((256usize << 10) / size.max(1)).clamp(8, 128) as u32,
    }
}

fn px_sub(stream: &str, seconds: f64, paced: bool) {
    let sub = Subscriber::new(stream, Some(Duration::from_secs(30))).unwrap();
    println!("ready");
    let mut meter = Meter::new(seconds);
    let mut lat = Latencies::default();
    loop {
        let frame = sub.recv(Some(Duration::from_secs(30))).unwrap();
        std::hint::black_box(frame.len());
        if paced && meter.counted > 0 {
            if let Some(sent) = frame.metadata().pts_ns {
                lat.0.push(mono_ns() - sent);
            }
        }
        drop(frame);
        if meter.tick() {
            return lat.report();
        }
    }
}

fn me() -> std::path::PathBuf {
    std::env::current_exe().unwrap()
}

fn spawn(exe: &std::path::Path, args: &[String]) -> Child {
    Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a process has used so far: user and system CPU seconds (all its threads) and its
/// threads' voluntary and involuntary context switches, from /proc.
#[derive(Clone, Copy, Default)]
struct Usage {
    user: f64,
    sys: f64,
    voluntary: u64,
    involuntary: u64,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut u = Usage {
            user: f.first().copied().unwrap_or(0) as f64 / tick,
            sys: f.get(1).copied().unwrap_or(0) as f64 / tick,
            ..Usage::default()
        };
        // /proc/PID/status counts the main thread's switches only: every thread's are summed.
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            for line in status.lines() {
                let count = |prefix: &str| {
                    line.strip_prefix(prefix)
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                if let Some(n) = count("voluntary_ctxt_switches:") {
                    u.voluntary += n;
                } else if let Some(n) = count("nonvoluntary_ctxt_switches:") {
                    u.involuntary += n;
                }
            }
        }
        u
    }

    fn cpu(&self) -> f64 {
        self.user + self.sys
    }

    fn since(&self, before: &Usage) -> Usage {
        // A thread that ended in the window takes its switches with it: never below zero.
        Usage {
            user: (self.user - before.user).max(0.0),
            sys: (self.sys - before.sys).max(0.0),
            voluntary: self.voluntary.saturating_sub(before.voluntary),
            involuntary: self.involuntary.saturating_sub(before.involuntary),
        }
    }
}

/// One run: frames/s at the far subscriber, and the CPU time all the run's processes spent
/// per frame in the same window (microseconds): the cost, whatever else the machine runs.
/// `detail` says it process by process, per frame: where the time goes.
#[derive(Clone)]
struct Run {
    rate: f64,
    cpu_us: f64,
    detail: String,
    /// The latency phase's one-way latency at the far subscriber, p50 and p99 (us).
    latency: Option<(f64, f64)>,
}

/// Reads the subscriber's window (the usage of every process sampled at its start and end),
/// then stops the others. `roles` names the processes: the others', then the subscriber's.
fn rate_of(mut sub: Child, others: Vec<Child>, roles: &[&str]) -> Run {
    let pids: Vec<u32> = others.iter().map(Child::id).chain([sub.id()]).collect();
    let usage = || pids.iter().map(|&p| Usage::of(p)).collect::<Vec<_>>();
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    let mut run = Run {
        rate: f64::NAN,
        cpu_us: f64::NAN,
        detail: String::new(),
        latency: None,
    };
    let mut at_start = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "window" {
            at_start = usage();
        } else if let Some(rest) = line.strip_prefix("done ") {
            let used: Vec<Usage> = usage()
                .iter()
                .zip(&at_start)
                .map(|(end, start)| end.since(start))
                .collect();
            let mut v = rest.split_whitespace().map(|x| x.parse::<f64>().unwrap());
            let (counted, seconds) = (v.next().unwrap(), v.next().unwrap());
            let per = |x: f64| x / counted;
            run = Run {
                rate: counted / seconds,
                cpu_us: used.iter().map(Usage::cpu).sum::<f64>() * 1e6 / counted,
                detail: roles
                    .iter()
                    .zip(&used)
                    .map(|(role, u)| {
                        format!(
                            "{role} {:.1}+{:.1} us {:.2}+{:.2} cs",
                            per(u.user * 1e6),
                            per(u.sys * 1e6),
                            per(u.voluntary as f64),
                            per(u.involuntary as f64)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                latency: None,
            };
        } else if let Some(rest) = line.strip_prefix("latency ") {
            let mut v = rest.split_whitespace().map(|x| x.parse::<f64>().unwrap());
            run.latency = Some((v.next().unwrap(), v.next().unwrap()));
        }
    }
    let _ = sub.wait();
    for mut c in others {
        // SAFETY: signalling a child of ours by its pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    run
}

fn run_plain(size: usize, seconds: f64, port: u16, interval_us: u64) -> Run {
    let exe = me();
    let publisher = spawn(
        &exe,
        &[
            "plain-pub".into(),
            port.to_string(),
            size.to_string(),
            interval_us.to_string(),
        ],
    );
    let sub = spawn(
        &exe,
        &[
            "plain-sub".into(),
            port.to_string(),
            seconds.to_string(),
            (interval_us > 0).to_string(),
        ],
    );
    rate_of(sub, vec![publisher], &["pub", "sub"])
}

fn run_bridged(size: usize, seconds: f64, port: u16, tag: &str, interval_us: u64) -> Run {
    let exe = me();
    let bridge = exe.with_file_name("parallax-bridge");
    let (a, b) = (format!("px-bench-{tag}-a"), format!("px-bench-{tag}-b"));
    let ep = format!("tcp/127.0.0.1:{port}");
    let publisher = spawn(
        &exe,
        &[
            "px-pub".into(),
            a.clone(),
            size.to_string(),
            interval_us.to_string(),
        ],
    );
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut import_args = s(&[
        "import",
        "--key",
        KEY,
        &b,
        "--connect",
        &ep,
        "--policy",
        "block",
    ]);
    import_args.extend(["--max-in-flight".to_string(), in_flight(size).to_string()]);
    // Extra importer options to compare settings (e.g. PX_BENCH_IMPORT_ARGS="--queue 64").
    if let Ok(extra) = std::env::var("PX_BENCH_IMPORT_ARGS") {
        import_args.extend(extra.split_whitespace().map(String::from));
    }
    let mut export_args = s(&["export", &a, "--key", KEY, "--listen", &ep]);
    // Options for both bridges (e.g. PX_BENCH_BRIDGE_ARGS="--sched normal").
    if let Ok(extra) = std::env::var("PX_BENCH_BRIDGE_ARGS") {
        import_args.extend(extra.split_whitespace().map(String::from));
        export_args.extend(extra.split_whitespace().map(String::from));
    }
    let config = bridge_config();
    if let Some(path) = &config {
        let option = ["--config".to_string(), path.display().to_string()];
        import_args.extend(option.clone());
        export_args.extend(option);
    }
    let importer = spawn(&bridge, &import_args);
    let exporter = spawn(&bridge, &export_args);
    let sub = spawn(
        &exe,
        &[
            "px-sub".into(),
            b,
            seconds.to_string(),
            (interval_us > 0).to_string(),
        ],
    );
    let run = rate_of(
        sub,
        vec![publisher, exporter, importer],
        &["pub", "export", "import", "sub"],
    );
    if let Some(path) = config {
        let _ = std::fs::remove_file(path); // the bridges read it when they started
    }
    run
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| argv[i].clone();
    match argv.first().map(String::as_str) {
        Some("plain-pub") => {
            return plain_pub(arg(1).parse().unwrap(), arg(2).parse().unwrap(), arg(3).parse().unwrap())
        }
        Some("plain-sub") => {
            return plain_sub(arg(1).parse().unwrap(), arg(2).parse().unwrap(), arg(3).parse().unwrap())
        }
        Some("px-pub") => return px_pub(&arg(1), arg(2).parse().unwrap(), arg(3).parse().unwrap()),
        Some("px-sub") => return px_sub(&arg(1), arg(2).parse().unwrap(), arg(3).parse().unwrap()),
        _ => {}
    }
    let (mut seconds, mut reps, mut sizes) = (3.0f64, 3usize, vec![4096usize, 8 << 20]);
    let mut interval_us = 0u64;
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let v = it.next().expect("every option takes a value");
        match a.as_str() {
            "--seconds" => seconds = v.parse().unwrap(),
            "--reps" => reps = v.parse().unwrap(),
            "--sizes" => sizes = v.split(',').map(|s| s.parse().unwrap()).collect(),
            "--latency-interval-us" => interval_us = v.parse().unwrap(),
            _ => panic!("unknown option {a}"),
        }
    }
    let port = 17000 + (std::process::id() % 20000) as u16;
    println!(
        "px_bridge_bench: {reps} interleaved repetitions of {seconds} s per run, TCP 127.0.0.1"
    );
    for &size in &sizes {
        let (mut plain, mut bridged) = (Vec::new(), Vec::new());
        let (mut plain_cpu, mut bridged_cpu) = (Vec::new(), Vec::new());
        for rep in 0..reps {
            let p = run_plain(size, seconds, port + (rep as u16) * 2, interval_us);
            let b = run_bridged(
                size,
                seconds,
                port + (rep as u16) * 2 + 1,
                &format!("{rep}"),
                interval_us,
            );
            if let (Some((p50, p99)), Some((b50, b99))) = (p.latency, b.latency) {
                println!(
                    "  {size:>9} B rep {rep}: one frame every {interval_us} us, one-way latency \
                     p50/p99: plain zenoh {p50:.1}/{p99:.1} us, bridged {b50:.1}/{b99:.1} us"
                );
            }
            println!(
                "  {size:>9} B rep {rep}: plain zenoh {:>8.0} frames/s {:>7.1} us CPU/frame, \
                 bridged {:>8.0} frames/s {:>7.1} us CPU/frame, ratio {:.2}, load {}",
                p.rate,
                p.cpu_us,
                b.rate,
                b.cpu_us,
                b.rate / p.rate,
                load()
            );
            println!(
                "    plain (per frame, user+sys CPU, voluntary+involuntary switches): {}",
                p.detail
            );
            println!("    bridged: {}", b.detail);
            plain.push(p.rate);
            bridged.push(b.rate);
            plain_cpu.push(p.cpu_us);
            bridged_cpu.push(b.cpu_us);
        }
        let (p, b) = (median(&mut plain), median(&mut bridged));
        let (pc, bc) = (median(&mut plain_cpu), median(&mut bridged_cpu));
        println!(
            "{size:>9} B: plain zenoh {p:.0} frames/s ({:.1} MB/s, {pc:.1} us CPU/frame), \
             bridged {b:.0} frames/s ({:.1} MB/s, {bc:.1} us CPU/frame), ratio {:.2} (medians)",
            p * size as f64 / 1e6,
            b * size as f64 / 1e6,
            b / p
        );
    }
}

/// The 1-minute load average, to print beside each figure.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}
