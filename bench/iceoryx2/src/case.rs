// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What one measurement ("run") is, and how it travels on the command line of the two processes
//! that make it (the leader measures, the follower answers or consumes).

use std::fmt;

/// What a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The leader sends a frame, the follower answers with a frame of the same size; the leader
    /// times the round trip. Figure: one-way latency = median round trip / 2.
    Latency,
    /// The leader produces frames as fast as the transport takes them (`slots` in flight), the
    /// follower consumes them. Figure: frames per second between two drains.
    Stream,
}

/// How the receiving side waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// iceoryx2 busy-polls `receive()`; libparallax `recv` spins (spin -1, or its default).
    Busy,
    /// iceoryx2 sleeps in a WaitSet woken by an event notifier; libparallax `recv` with spin 0.
    WaitSet,
}

/// Which library, and for libparallax which spin setting of `recv` (`px_channel_set_spin_ns`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lib {
    /// spin -1: recv never sleeps.
    ParallaxSpin,
    /// spin not set: PX_CHANNEL_DEFAULT_SPIN_NS of spinning, then sleep.
    ParallaxDefault,
    /// spin 0: recv sleeps at once.
    ParallaxBlocking,
    Iceoryx2,
}

impl Lib {
    pub fn name(self) -> &'static str {
        match self {
            Lib::ParallaxSpin => "parallax-spin",
            Lib::ParallaxDefault => "parallax-default",
            Lib::ParallaxBlocking => "parallax-blocking",
            Lib::Iceoryx2 => "iceoryx2",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Lib::ParallaxSpin => "parallax (spin -1)",
            Lib::ParallaxDefault => "parallax (default spin)",
            Lib::ParallaxBlocking => "parallax (spin 0)",
            Lib::Iceoryx2 => "iceoryx2",
        }
    }

    fn parse(s: &str) -> Option<Lib> {
        [
            Lib::ParallaxSpin,
            Lib::ParallaxDefault,
            Lib::ParallaxBlocking,
            Lib::Iceoryx2,
        ]
        .into_iter()
        .find(|l| l.name() == s)
    }

    /// The libraries compared in a mode: every libparallax setting first, iceoryx2 last.
    pub fn for_mode(mode: Mode) -> &'static [Lib] {
        match mode {
            Mode::Busy => &[Lib::ParallaxSpin, Lib::ParallaxDefault, Lib::Iceoryx2],
            Mode::WaitSet => &[Lib::ParallaxBlocking, Lib::Iceoryx2],
        }
    }
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Busy => "busy",
            Mode::WaitSet => "waitset",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Busy, Mode::WaitSet]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Latency => "latency",
            Kind::Stream => "stream",
        }
    }
}

/// Where the two processes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Placement {
    /// Left to the scheduler (allowed on every online CPU).
    Unpinned,
    /// Both on CPU 0.
    SameCore,
    /// Leader on CPU 0, follower on CPU 1.
    CrossCore,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Unpinned => "unpinned",
            Placement::SameCore => "same",
            Placement::CrossCore => "cross",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Placement::Unpinned => "unpinned",
            Placement::SameCore => "same core (0)",
            Placement::CrossCore => "cross-core (0, 1)",
        }
    }

    pub fn parse(s: &str) -> Option<Placement> {
        [
            Placement::Unpinned,
            Placement::SameCore,
            Placement::CrossCore,
        ]
        .into_iter()
        .find(|p| p.name() == s)
    }

    /// (leader CPU, follower CPU); -1 = not pinned.
    pub fn cpus(self) -> (i32, i32) {
        match self {
            Placement::Unpinned => (-1, -1),
            Placement::SameCore => (0, 0),
            Placement::CrossCore => (0, 1),
        }
    }
}

/// One run: everything both processes need to know.
#[derive(Clone, Debug)]
pub struct Case {
    pub kind: Kind,
    pub mode: Mode,
    pub lib: Lib,
    pub payload: usize,
    pub leader_cpu: i32,
    pub follower_cpu: i32,
    /// Measuring budget, after the warm-up.
    pub seconds: f64,
    /// Frames in flight when streaming: pool slots (libparallax), subscriber buffer (iceoryx2).
    pub slots: usize,
    /// Unique per run: iceoryx2's service names are derived from it.
    pub name: String,
}

/// Bytes every frame needs: the 8-byte sequence number and a distinct last byte.
pub const MIN_PAYLOAD: usize = 16;

impl Case {
    pub fn to_args(&self) -> Vec<String> {
        [
            ("--kind", self.kind.name().to_string()),
            ("--mode", self.mode.name().to_string()),
            ("--lib", self.lib.name().to_string()),
            ("--payload", self.payload.to_string()),
            ("--leader-cpu", self.leader_cpu.to_string()),
            ("--follower-cpu", self.follower_cpu.to_string()),
            ("--seconds", format!("{:.6}", self.seconds)),
            ("--slots", self.slots.to_string()),
            ("--name", self.name.clone()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }

    /// The inverse of `to_args`; names what was wrong.
    pub fn from_args(args: &[String]) -> Result<Case, String> {
        let mut c = Case {
            kind: Kind::Latency,
            mode: Mode::Busy,
            lib: Lib::Iceoryx2,
            payload: 4096,
            leader_cpu: -1,
            follower_cpu: -1,
            seconds: 0.25,
            slots: 8,
            name: String::new(),
        };
        let bad = |k: &str, v: &str| format!("bad value {v:?} for {k}");
        for pair in args.chunks(2) {
            let (k, v) = match pair {
                [k, v] => (k.as_str(), v.as_str()),
                _ => return Err(format!("option {:?} has no value", pair[0])),
            };
            match k {
                "--kind" => {
                    c.kind = match v {
                        "latency" => Kind::Latency,
                        "stream" => Kind::Stream,
                        _ => return Err(bad(k, v)),
                    }
                }
                "--mode" => c.mode = Mode::parse(v).ok_or_else(|| bad(k, v))?,
                "--lib" => c.lib = Lib::parse(v).ok_or_else(|| bad(k, v))?,
                "--payload" => c.payload = v.parse().map_err(|_| bad(k, v))?,
                "--leader-cpu" => c.leader_cpu = v.parse().map_err(|_| bad(k, v))?,
                "--follower-cpu" => c.follower_cpu = v.parse().map_err(|_| bad(k, v))?,
                "--seconds" => c.seconds = v.parse().map_err(|_| bad(k, v))?,
                "--slots" => c.slots = v.parse().map_err(|_| bad(k, v))?,
                "--name" => c.name = v.to_string(),
                _ => return Err(format!("unknown option {k}")),
            }
        }
        if c.payload < MIN_PAYLOAD {
            return Err(format!("--payload {} is below {MIN_PAYLOAD}", c.payload));
        }
        if c.slots == 0 || c.name.is_empty() || c.seconds.is_nan() || c.seconds <= 0.0 {
            return Err("--slots, --name and --seconds must be given and positive".into());
        }
        Ok(c)
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} B, cpus {}/{}",
            self.lib.name(),
            self.mode.name(),
            self.kind.name(),
            self.payload,
            self.leader_cpu,
            self.follower_cpu
        )
    }
}
