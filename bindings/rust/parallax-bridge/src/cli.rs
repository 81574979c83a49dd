// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The command line: `export STREAM --key KEY [options]` and `import --key KEY STREAM [options]`.
use std::path::PathBuf;

use parallax::{PublisherOptions, SlowPolicy};

pub const USAGE: &str = "\
usage: parallax-bridge export STREAM --key KEY [zenoh options]
       parallax-bridge import --key KEY STREAM [zenoh options] [import options]

  export: subscribes to the local stream STREAM and puts each frame on Zenoh key KEY
  import: subscribes to KEY and republishes each frame into the local stream STREAM

zenoh options:
  --listen ENDPOINT     listen on ENDPOINT (Zenoh syntax, e.g. tcp/127.0.0.1:7447); repeatable
  --connect ENDPOINT    connect to ENDPOINT; repeatable (retried until it answers)
  --config FILE         a Zenoh configuration file (json5); --listen/--connect add to it
  --multicast-scouting  look for peers by UDP multicast (off unless given, even with --config)
  --reliability reliable|best-effort
                        reliable (default): a slow network or importer holds the exporter back;
                        best-effort: frames are dropped instead (they show as gaps)

bridge options:
  --sched batch|normal  the scheduling policy of the bridge's threads (Zenoh's included).
                        batch (default): SCHED_BATCH, a thread woken by another (a frame to
                        send, a batch received) does not preempt the bridge's running work
                        but waits for its CPU's next turn, or runs at once on an idle one:
                        on a busy machine frames go in fuller batches, at a fifth of the
                        context switches and 1.3-1.5x the frames/s of normal, for latency
                        that then grows by up to a time slice (idle CPUs: none). normal: the
                        default policy (SCHED_OTHER), as any other program.

import options:
  --slot-size BYTES     initial slot size of the import pool (grown to the largest frame seen)
  --slots N             slots in the import pool (default: max-in-flight + history + 4)
  --policy drop|block|disconnect
                        the local publisher's slow-subscriber policy (default drop)
  --max-in-flight N     frames one local subscriber may hold or have queued (default 8)
  --history N           frames a joining local subscriber gets first (default 0)
  --queue N             best-effort: frames buffered between Zenoh and the local publisher,
                        the oldest dropped when full (default 4); reliable frames are
                        republished as Zenoh receives them
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Export,
    Import,
}

#[derive(Clone, Debug)]
pub struct Args {
    pub mode: Mode,
    pub stream: String,
    pub key: String,
    pub listen: Vec<String>,
    pub connect: Vec<String>,
    pub config: Option<PathBuf>,
    pub multicast_scouting: bool,
    pub best_effort: bool,
    pub slot_size: usize,
    pub slots: Option<usize>,
    pub queue: usize,
    pub publisher: PublisherOptions,
    /// --sched batch (the default): SCHED_BATCH for every thread.
    pub sched_batch: bool,
}

fn number<T>(opt: &str, value: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match value.parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(format!(
            "{opt}: '{value}' is not a whole number in {min}..={max}"
        )),
    }
}

fn policy(value: &str) -> Result<SlowPolicy, String> {
    match value {
        "drop" => Ok(SlowPolicy::Drop),
        "block" => Ok(SlowPolicy::Block),
        "disconnect" => Ok(SlowPolicy::Disconnect),
        _ => Err(format!(
            "--policy: '{value}' is not drop, block or disconnect"
        )),
    }
}

/// A key the bridge can publish on and query beside: no wildcards, no empty chunk, no '@'
/// chunk (the bridge uses `KEY/@description` for itself).
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.split('/').any(|c| c.is_empty() || c.starts_with('@')) {
        return Err(format!(
            "--key '{key}': empty chunks and chunks starting with '@' are not allowed"
        ));
    }
    if key.contains(['*', '$', '?', '#']) {
        return Err(format!(
            "--key '{key}': one concrete key is needed (no '*', '$', '?', '#')"
        ));
    }
    Ok(())
}

/// Parses `argv[1..]`. `Err` holds a message for the user (usage errors exit 2).
pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mode = match argv.first().map(String::as_str) {
        Some("export") => Mode::Export,
        Some("import") => Mode::Import,
        Some(other) => return Err(format!("unknown command '{other}' (export or import)")),
        None => return Err("a command is needed: export or import".into()),
    };
    let mut a = Args {
        mode,
        stream: String::new(),
        key: String::new(),
        listen: Vec::new(),
        connect: Vec::new(),
        config: None,
        multicast_scouting: false,
        best_effort: false,
        slot_size: 0,
        slots: None,
        queue: 4,
        publisher: PublisherOptions::default(),
        sched_batch: true,
    };
    let mut stream = None;
    let mut it = argv[1..].iter();
    while let Some(arg) = it.next() {
        let mut value = |opt: &str| -> Result<String, String> {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{opt} needs a value"))
        };
        let import_only = |opt: &str| -> Result<(), String> {
            (mode == Mode::Import)
                .then_some(())
                .ok_or_else(|| format!("{opt} is an import option"))
        };
        match arg.as_str() {
            "--key" => a.key = value("--key")?,
            "--listen" => a.listen.push(value("--listen")?),
            "--connect" => a.connect.push(value("--connect")?),
            "--config" => a.config = Some(PathBuf::from(value("--config")?)),
            "--multicast-scouting" => a.multicast_scouting = true,
            "--sched" => {
                a.sched_batch = match value("--sched")?.as_str() {
                    "batch" => true,
                    "normal" => false,
                    v => return Err(format!("--sched: '{v}' is not batch or normal")),
                }
            }
            "--reliability" => {
                a.best_effort = match value("--reliability")?.as_str() {
                    "reliable" => false,
                    "best-effort" => true,
                    v => {
                        return Err(format!(
                            "--reliability: '{v}' is not reliable or best-effort"
                        ))
                    }
                }
            }
            "--slot-size" => {
                import_only(arg)?;
                a.slot_size = number(arg, &value(arg)?, 1, 1usize << 40)?;
            }
            "--slots" => {
                import_only(arg)?;
                a.slots = Some(number(arg, &value(arg)?, 2, 4096)?);
            }
            "--queue" => {
                import_only(arg)?;
                a.queue = number(arg, &value(arg)?, 1, 1024)?;
            }
            "--policy" => {
                import_only(arg)?;
                a.publisher.slow_policy = policy(&value(arg)?)?;
            }
            "--max-in-flight" => {
                import_only(arg)?;
                a.publisher.max_in_flight = number(arg, &value(arg)?, 1, 128)?;
            }
            "--history" => {
                import_only(arg)?;
                a.publisher.history = number(arg, &value(arg)?, 0, 1024)?;
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option '{s}'")),
            s if stream.is_none() => stream = Some(s.to_string()),
            s => return Err(format!("one stream only ('{s}' is a second one)")),
        }
    }
    a.stream = stream.ok_or("a STREAM name is needed")?;
    if a.key.is_empty() {
        return Err("--key KEY is needed".into());
    }
    check_key(&a.key)?;
    Ok(a)
}

impl Args {
    /// Slots of the import pool: what local subscribers can hold, plus room to fill the next.
    pub fn pool_slots(&self) -> usize {
        self.slots
            .unwrap_or(self.publisher.max_in_flight as usize + self.publisher.history as usize + 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn both_commands_parse_in_any_order() {
        let e = args("export cam --key a/b --listen tcp/127.0.0.1:7447 --listen tcp/[::1]:7447")
            .unwrap();
        assert_eq!(
            (e.mode, e.stream.as_str(), e.key.as_str()),
            (Mode::Export, "cam", "a/b")
        );
        assert_eq!(e.listen.len(), 2);
        assert!(!e.multicast_scouting && !e.best_effort && e.sched_batch);
        assert!(!args("export cam --key a --sched normal").unwrap().sched_batch);
        let i = args(
            "import --key a/b cam2 --connect tcp/127.0.0.1:7447 --policy block \
                      --history 2 --reliability best-effort --slot-size 4096",
        )
        .unwrap();
        assert_eq!((i.mode, i.stream.as_str()), (Mode::Import, "cam2"));
        assert_eq!(i.publisher.slow_policy, SlowPolicy::Block);
        assert_eq!(
            (i.publisher.history, i.slot_size, i.best_effort),
            (2, 4096, true)
        );
        assert_eq!(i.pool_slots(), 8 + 2 + 4);
    }

    #[test]
    fn mistakes_are_named() {
        for (line, what) in [
            ("", "a command"),
            ("send x --key k", "unknown command 'send'"),
            ("export --key k", "STREAM"),
            ("export s", "--key"),
            ("export s --key a/*", "concrete"),
            ("export s --key a//b", "empty chunks"),
            ("export s --key a/@description", "'@'"),
            ("export s --key k --slots 4", "import option"),
            ("import s --key k --policy fast", "'fast'"),
            ("import s --key k --history -1", "--history"),
            ("import s --key k --reliability maybe", "maybe"),
            ("export s --key k --sched fifo", "'fifo' is not batch or normal"),
            ("import s t --key k", "second"),
            ("import s --key k --bogus", "'--bogus'"),
            ("import s --key", "needs a value"),
        ] {
            let e = args(line).unwrap_err();
            assert!(e.contains(what), "{line}: {e}");
        }
    }
}
