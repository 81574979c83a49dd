// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The orchestrator: runs every case as a fresh leader process (which starts its follower),
//! interleaved so that drift on a shared VM hits both libraries alike, then prints the tables and
//! writes the CSV.
//!
//! Order: for each repetition, every cell (measure x mode x placement) in turn, and within a
//! cell the libraries one after the other, in an order that rotates with the repetition
//! (A B, B A, ...). A repetition of libparallax and the iceoryx2 run next to it form a pair.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::case::{Case, Lib, Mode, Placement};
use crate::cleanup;
use crate::report::{self, Figures, Record, MEASURES};

/// The crate version pinned in Cargo.toml (`=`) and Cargo.lock.
const ICEORYX2_VERSION: &str = "0.10.0";

const HELP: &str = "\
px-bench-iceoryx2: libparallax against iceoryx2, same run, same harness

Options:
  --quick               3 repetitions of 0.08 s (a smoke run of about a minute)
  --reps N              repetitions of every case (default 7)
  --seconds S           measuring budget of one run, after its warm-up (default 0.25)
  --measures LIST       latency,frames-4k,frames-8m (default: all)
  --modes LIST          busy,waitset (default: both)
  --placements LIST     unpinned,same,cross (default: all three)
  --slots N             frames in flight when streaming (default 8)
  --out DIR             where the CSV and markdown go (default bench/results)
  --label TEXT          names what was measured (e.g. the commit) in the output
";

struct Options {
    reps: usize,
    seconds: f64,
    measures: Vec<usize>,
    modes: Vec<Mode>,
    placements: Vec<Placement>,
    slots: usize,
    out: String,
    label: String,
}

fn parse_list<T>(v: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    v.split(',')
        .map(|s| parse(s.trim()).ok_or_else(|| format!("unknown {what} {s:?}")))
        .collect()
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            reps: 7,
            seconds: 0.25,
            measures: (0..MEASURES.len()).collect(),
            modes: vec![Mode::Busy, Mode::WaitSet],
            placements: vec![
                Placement::Unpinned,
                Placement::SameCore,
                Placement::CrossCore,
            ],
            slots: 8,
            out: "bench/results".into(),
            label: String::new(),
        };
        let mut it = args.iter();
        while let Some(k) = it.next() {
            if k == "--help" || k == "-h" {
                return Err(String::new());
            }
            if k == "--quick" {
                o.reps = 3;
                o.seconds = 0.08;
                continue;
            }
            let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
            let num = |what: &str| format!("{what} wants a positive number, not {v:?}");
            match k.as_str() {
                "--reps" => o.reps = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| num(k))?,
                "--seconds" => {
                    o.seconds = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0)
                        .ok_or_else(|| num(k))?
                }
                "--slots" => o.slots = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| num(k))?,
                "--measures" => {
                    o.measures =
                        parse_list(v, "measure", |s| MEASURES.iter().position(|m| m.key == s))?
                }
                "--modes" => o.modes = parse_list(v, "mode", Mode::parse)?,
                "--placements" => o.placements = parse_list(v, "placement", Placement::parse)?,
                "--out" => o.out = v.clone(),
                "--label" => o.label = v.clone(),
                _ => return Err(format!("unknown option {k}")),
            }
        }
        Ok(o)
    }
}

/// Runs one case in a fresh leader process (its own process group, so that a stuck case is
/// killed with its follower) and parses its one line.
fn run_case(case: &Case) -> Result<Figures, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .arg("leader")
        .args(case.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the leader: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs_f64(30.0 + 4.0 * case.seconds);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let stuck = describe_group(child.id());
                // SAFETY: signals the leader's own process group (leader and follower).
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return Err(format!("timed out; killed ({stuck})"));
            }
            Err(e) => return Err(format!("waiting for the leader: {e}")),
        }
    }
    let mut out = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut out);
    }
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| "the leader died without a result".to_string())?;
    if let Some(e) = line.strip_prefix("error ") {
        return Err(e.to_string());
    }
    let field = |k: &str| -> Result<f64, String> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {k} in the leader's line {line:?}"))
    };
    Ok(Figures {
        value: field("value")?,
        p99: field("p99")?,
        count: field("count")? as u64,
        elapsed_s: field("elapsed")?,
        overlap: field("overlap")?,
    })
}

/// Where the processes of a stuck case were: "pid state wchan" of each member of the group
/// (the leader's pid is its group id), so that a hang says which side waited on what.
fn describe_group(pgid: u32) -> String {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command (which may hold spaces): state ppid pgrp ...
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |r| r.1)
            .split_whitespace()
            .collect();
        if rest.get(2).and_then(|g| g.parse::<u32>().ok()) != Some(pgid) {
            continue;
        }
        let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        let role = if pid == pgid { "leader" } else { "follower" };
        found.push(format!("{role} {pid} {} {}", rest[0], wchan.trim()));
    }
    if found.is_empty() {
        "no process of the case was left".into()
    } else {
        found.join("; ")
    }
}

fn first_line(path: &str, prefix: &str) -> String {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(prefix))
                .map(|l| l.split_once(':').map_or(l, |(_, v)| v).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn context(o: &Options) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load: String = first_line("/proc/loadavg", "").chars().take(14).collect();
    format!(
        "{}, {cpus} CPUs, Linux {}; libparallax {}{}; iceoryx2 {ICEORYX2_VERSION} (Rust); \
         load average {load}",
        first_line("/proc/cpuinfo", "model name"),
        kernel.trim(),
        parallax::version_string(),
        if o.label.is_empty() {
            String::new()
        } else {
            format!(" ({})", o.label)
        },
    )
}

pub fn main(args: &[String]) -> i32 {
    let o = match Options::parse(args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{HELP}");
            return 0;
        }
        Err(e) => {
            eprintln!("px-bench-iceoryx2: {e}\n\n{HELP}");
            return 2;
        }
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 && o.placements.contains(&Placement::CrossCore) {
        eprintln!("px-bench-iceoryx2: the cross-core placement needs 2 CPUs; this machine has 1");
        return 2;
    }
    let _lock = match cleanup::lock_run() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("px-bench-iceoryx2: {e}");
            return 2;
        }
    };
    let left = cleanup::remove_leftovers();
    if left > 0 {
        println!("removed {left} file(s) an earlier run of this benchmark left behind");
    }
    let ctx = context(&o);
    println!("px-bench-iceoryx2: {ctx}");
    if cfg!(debug_assertions) {
        println!("WARNING: a debug build; the figures mean little (cargo build --release)");
    }
    let mut cells: Vec<(usize, Mode, Placement)> = Vec::new();
    for &m in &o.measures {
        for &mode in &o.modes {
            for &p in &o.placements {
                cells.push((m, mode, p));
            }
        }
    }
    let per_rep: usize = cells.iter().map(|c| Lib::for_mode(c.1).len()).sum();
    println!(
        "{} runs per repetition, {} repetitions of {:.2} s (+ warm-up and process start)\n",
        per_rep, o.reps, o.seconds
    );
    let started = Instant::now();
    let mut records: Vec<Record> = Vec::new();
    let mut counter = 0usize;
    for rep in 0..o.reps {
        let t = Instant::now();
        for &(measure, mode, placement) in &cells {
            let libs = Lib::for_mode(mode);
            for i in 0..libs.len() {
                let lib = libs[(i + rep) % libs.len()]; // rotates the order with the repetition
                counter += 1;
                let (leader_cpu, follower_cpu) = placement.cpus();
                let case = Case {
                    kind: MEASURES[measure].kind,
                    mode,
                    lib,
                    payload: MEASURES[measure].payload,
                    leader_cpu,
                    follower_cpu,
                    seconds: o.seconds,
                    slots: o.slots,
                    name: format!("{}-{counter}", std::process::id()),
                };
                let result = run_case(&case);
                if let Err(e) = &result {
                    eprintln!("  {case}: {e}");
                }
                records.push(Record {
                    measure,
                    mode,
                    placement,
                    rep,
                    lib,
                    result,
                });
            }
        }
        println!(
            "repetition {}/{} done in {:.1} s",
            rep + 1,
            o.reps,
            t.elapsed().as_secs_f64()
        );
    }
    let left = cleanup::remove_leftovers();
    if left > 0 {
        println!("removed {left} file(s) iceoryx2 left in /dev/shm and /tmp/iceoryx2");
    }
    write_outputs(&o, &ctx, &records, started.elapsed().as_secs_f64())
}

fn write_outputs(o: &Options, ctx: &str, records: &[Record], seconds: f64) -> i32 {
    let mut md = format!(
        "<!-- generated by bench/run_iceoryx2_benchmarks.sh (px-bench-iceoryx2) -->\n\
         ### libparallax against iceoryx2 from Rust\n\nMeasured on: {ctx}\n\n"
    );
    let mut summary = String::from(report::csv_summary_header());
    for &m in &o.measures {
        let rows = report::rows(records, m, &o.modes, &o.placements);
        md.push_str(&report::table(&MEASURES[m], &rows, o.reps));
        for r in &rows {
            summary.push_str(&report::csv_summary(&MEASURES[m], r));
        }
    }
    let load: String = first_line("/proc/loadavg", "").chars().take(14).collect();
    let tail = format!(
        "{} runs in {seconds:.0} s; load average at the end {load}\n",
        records.len()
    );
    println!("\n{md}{tail}");
    let mut runs = String::from(report::csv_runs_header());
    for r in records {
        runs.push_str(&report::csv_run(r));
    }
    let files = [
        ("iceoryx2_rust_runs.csv", runs),
        ("iceoryx2_rust_summary.csv", summary),
        ("iceoryx2_rust_summary.md", md + &tail),
    ];
    if let Err(e) = fs::create_dir_all(&o.out) {
        eprintln!("px-bench-iceoryx2: {}: {e}", o.out);
        return 1;
    }
    for (name, text) in files {
        let path = format!("{}/{name}", o.out);
        if let Err(e) = fs::File::create(&path).and_then(|mut f| f.write_all(text.as_bytes())) {
            eprintln!("px-bench-iceoryx2: {path}: {e}");
            return 1;
        }
    }
    println!(
        "results: {0}/iceoryx2_rust_{{runs,summary}}.csv, {0}/iceoryx2_rust_summary.md",
        o.out
    );
    let failed = records.iter().filter(|r| r.result.is_err()).count();
    if failed > 0 {
        println!("{failed} run(s) failed; their reasons are under the tables");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_group_is_described_by_its_members() {
        // A group of two: `sh` (its leader) waiting for a `sleep` it started.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 5; true"])
            .process_group(0)
            .spawn()
            .expect("sh");
        std::thread::sleep(Duration::from_millis(200));
        let text = describe_group(child.id());
        // SAFETY: the group we just made.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
        assert!(text.contains(&format!("leader {} S", child.id())), "{text}");
        assert!(text.contains("follower "), "{text}");
        // Reaped: the leader is gone (its orphaned child may linger as a zombie a moment).
        assert!(!describe_group(child.id()).contains("leader"));
    }
}
