// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Medians, paired ratios and the tables (markdown, printed and written to a file), and the CSV
//! of every run.

use std::fmt::Write as _;

use crate::case::{Kind, Lib, Mode, Placement};

/// One measurement of the report: a kind of run at a frame size.
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    pub key: &'static str,
    pub kind: Kind,
    pub payload: usize,
    pub title: &'static str,
}

pub const MEASURES: [Measure; 3] = [
    Measure {
        key: "latency",
        kind: Kind::Latency,
        payload: 4096,
        title: "One-way latency, 4 KiB frames (ping-pong between two processes: median round \
                trip / 2; lower is better, so a ratio above 1 means libparallax is slower)",
    },
    Measure {
        key: "frames-4k",
        kind: Kind::Stream,
        payload: 4096,
        title: "Frames per second, 4 KiB frames (consumer reads the first and the last byte of \
                each frame; higher is better, so a ratio above 1 means libparallax is faster)",
    },
    Measure {
        key: "frames-8m",
        kind: Kind::Stream,
        payload: 8 << 20,
        title: "Frames per second, 8 MiB frames (consumer reads the first and the last byte of \
                each frame; higher is better, so a ratio above 1 means libparallax is faster)",
    },
];

/// What one run gave.
#[derive(Clone, Debug)]
pub struct Figures {
    pub value: f64,
    pub p99: f64,
    pub count: u64,
    pub elapsed_s: f64,
    pub overlap: f64,
}

#[derive(Clone, Debug)]
pub struct Record {
    pub measure: usize, // index into MEASURES
    pub mode: Mode,
    pub placement: Placement,
    pub rep: usize,
    pub lib: Lib,
    pub result: Result<Figures, String>,
}

pub fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

pub fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1} k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0} /s")
    }
}

/// Two decimals where that says something; a small ratio as a fraction ("1/1800x").
pub fn fmt_ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}x")
    } else if x >= 0.1 {
        format!("{x:.2}x")
    } else if x > 0.0 {
        format!("1/{:.0}x", 1.0 / x)
    } else {
        format!("{x}x")
    }
}

fn fmt_value(kind: Kind, v: f64) -> String {
    match kind {
        Kind::Latency => fmt_ns(v),
        Kind::Stream => fmt_rate(v),
    }
}

/// Where the scheduler ran an unpinned pair (median overlap of the runs).
fn placed(overlaps: &[f64]) -> &'static str {
    match median(
        &overlaps
            .iter()
            .copied()
            .filter(|o| *o >= 0.0)
            .collect::<Vec<_>>(),
    ) {
        None => "?",
        Some(o) if o >= 0.8 => "1 core",
        Some(o) if o <= 0.2 => "2 cores",
        Some(_) => "mixed",
    }
}

/// The summary of one row: a libparallax setting against iceoryx2 in one mode and placement.
pub struct Row {
    pub mode: Mode,
    pub placement: Placement,
    pub lib: Lib,
    pub ours: Option<f64>,
    pub theirs: Option<f64>,
    pub ours_p99: Option<f64>,
    pub theirs_p99: Option<f64>,
    pub paired: Vec<f64>,
    pub where_ours: &'static str,
    pub where_theirs: &'static str,
    pub errors: Vec<String>,
}

impl Row {
    pub fn ratio_of_medians(&self) -> Option<f64> {
        Some(self.ours? / self.theirs?)
    }
}

pub fn rows(records: &[Record], measure: usize, modes: &[Mode], places: &[Placement]) -> Vec<Row> {
    let mut out = Vec::new();
    for &mode in modes {
        for &placement in places {
            let cell: Vec<&Record> = records
                .iter()
                .filter(|r| r.measure == measure && r.mode == mode && r.placement == placement)
                .collect();
            let of = |lib: Lib| -> Vec<&Record> {
                cell.iter().copied().filter(|r| r.lib == lib).collect()
            };
            let ok = |rs: &[&Record], f: fn(&Figures) -> f64| -> Vec<f64> {
                rs.iter()
                    .filter_map(|r| r.result.as_ref().ok().map(f))
                    .collect()
            };
            let theirs = of(Lib::Iceoryx2);
            for &lib in Lib::for_mode(mode).iter().filter(|l| **l != Lib::Iceoryx2) {
                let ours = of(lib);
                // Paired: this setting and iceoryx2 in the same repetition (adjacent in time).
                let paired = ours
                    .iter()
                    .filter_map(|o| {
                        let a = o.result.as_ref().ok()?;
                        let b = theirs
                            .iter()
                            .find(|t| t.rep == o.rep)?
                            .result
                            .as_ref()
                            .ok()?;
                        Some(a.value / b.value)
                    })
                    .collect();
                let mut errors: Vec<String> = Vec::new();
                for r in ours.iter().chain(theirs.iter()) {
                    if let Err(e) = &r.result {
                        let e = format!("{}: {e}", r.lib.label());
                        if !errors.contains(&e) {
                            errors.push(e);
                        }
                    }
                }
                out.push(Row {
                    mode,
                    placement,
                    lib,
                    ours: median(&ok(&ours, |f| f.value)),
                    theirs: median(&ok(&theirs, |f| f.value)),
                    ours_p99: median(&ok(&ours, |f| f.p99)),
                    theirs_p99: median(&ok(&theirs, |f| f.p99)),
                    paired,
                    where_ours: placed(&ok(&ours, |f| f.overlap)),
                    where_theirs: placed(&ok(&theirs, |f| f.overlap)),
                    errors,
                });
            }
        }
    }
    out
}

fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Busy => "busy-poll",
        Mode::WaitSet => "WaitSet / spin 0",
    }
}

/// One markdown table for a measure; `notes` collects the errors it refers to.
pub fn table(measure: &Measure, rows: &[Row], reps: usize) -> String {
    let mut s = String::new();
    let latency = measure.kind == Kind::Latency;
    let _ = writeln!(s, "#### {}\n", measure.title);
    let _ = writeln!(
        s,
        "Medians of {reps} interleaved repetitions; *paired* = median over repetitions of \
         (libparallax / iceoryx2 of the same repetition), with its range.\n"
    );
    let _ = writeln!(
        s,
        "| mode | placement | libparallax setting | libparallax{p} | iceoryx2{p} | ratio of \
         medians | paired ratio [min - max] |",
        p = if latency { " (p99)" } else { "" }
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|");
    let mut notes: Vec<String> = Vec::new();
    let mut note = |errs: &[String]| -> String {
        let mut marks = Vec::new();
        for e in errs {
            let i = match notes.iter().position(|n| n == e) {
                Some(i) => i,
                None => {
                    notes.push(e.clone());
                    notes.len() - 1
                }
            };
            marks.push(format!("[{}]", i + 1));
        }
        marks.join("")
    };
    for r in rows {
        let cell = |v: Option<f64>, p99: Option<f64>, placed: &str| -> String {
            let mut c = match v {
                Some(v) => fmt_value(measure.kind, v),
                None => "n/a".into(),
            };
            if let (true, Some(p)) = (latency, p99) {
                let _ = write!(c, " ({})", fmt_ns(p));
            }
            if r.placement == Placement::Unpinned && v.is_some() {
                let _ = write!(c, " [{placed}]");
            }
            c
        };
        let ratio = r.ratio_of_medians().map_or("-".into(), fmt_ratio);
        let paired = match median(&r.paired) {
            Some(m) => {
                let lo = r.paired.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.paired.iter().copied().fold(0.0, f64::max);
                format!(
                    "**{}** [{} - {}]",
                    fmt_ratio(m),
                    fmt_ratio(lo),
                    fmt_ratio(hi)
                )
            }
            None => "-".into(),
        };
        let marks = note(&r.errors);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {ratio} | {paired}{marks} |",
            mode_label(r.mode),
            r.placement.label(),
            r.lib.label(),
            cell(r.ours, r.ours_p99, r.where_ours),
            cell(r.theirs, r.theirs_p99, r.where_theirs),
        );
    }
    for (i, n) in notes.iter().enumerate() {
        let _ = writeln!(s, "\n[{}] {n}", i + 1);
    }
    s.push('\n');
    s
}

pub fn csv_runs_header() -> &'static str {
    "language,measure,kind,payload,mode,placement,rep,library,value,unit,p99_ns,count,elapsed_s,overlap,error\n"
}

fn csv_safe(s: &str) -> String {
    s.replace([',', '\n'], ";")
}

pub fn csv_run(r: &Record) -> String {
    let m = &MEASURES[r.measure];
    let unit = match m.kind {
        Kind::Latency => "one_way_ns",
        Kind::Stream => "frames_per_s",
    };
    let (fig, err) = match &r.result {
        Ok(f) => (
            format!(
                "{},{unit},{},{},{},{}",
                f.value, f.p99, f.count, f.elapsed_s, f.overlap
            ),
            String::new(),
        ),
        Err(e) => (format!(",{unit},,,,"), csv_safe(e)),
    };
    format!(
        "rust,{},{},{},{},{},{},{},{fig},{err}\n",
        m.key,
        m.kind.name(),
        m.payload,
        r.mode.name(),
        r.placement.name(),
        r.rep,
        r.lib.name()
    )
}

pub fn csv_summary_header() -> &'static str {
    "language,measure,mode,placement,library,median,iceoryx2_median,ratio_of_medians,\
     paired_ratio_median,paired_ratio_min,paired_ratio_max,pairs\n"
}

pub fn csv_summary(measure: &Measure, r: &Row) -> String {
    let f = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x}"));
    let lo = r.paired.iter().copied().reduce(f64::min);
    let hi = r.paired.iter().copied().reduce(f64::max);
    format!(
        "rust,{},{},{},{},{},{},{},{},{},{},{}\n",
        measure.key,
        r.mode.name(),
        r.placement.name(),
        r.lib.name(),
        f(r.ours),
        f(r.theirs),
        f(r.ratio_of_medians()),
        f(median(&r.paired)),
        f(lo),
        f(hi),
        r.paired.len()
    )
}
