// SPDX-License-Identifier: Apache-2.0 OR MIT
//! parallax-bridge: a libparallax stream across hosts over Zenoh (issue 17). See docs/bridge.md.
//!
//! `export STREAM --key KEY` subscribes to a local stream and puts every frame (payload,
//! metadata, format and, on change, the description) on a Zenoh key; `import --key KEY STREAM`
//! republishes them into a local stream. Exits 0 on SIGINT/SIGTERM after closing its session,
//! 2 on a usage error, 1 on any other failure, naming it.
use std::sync::atomic::{AtomicBool, Ordering};

mod cli;
mod export;
mod import;
mod net;
mod raw;
mod wire;

static STOP: AtomicBool = AtomicBool::new(false);

/// Whether SIGINT or SIGTERM came: every loop of the bridge looks at least every 200 ms.
pub fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed); // async-signal-safe: one atomic store
}

fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a handler that only stores an atomic; sigaction is given a zeroed struct
        // with the handler and an empty mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// SCHED_BATCH for this thread, before any other starts: Zenoh's threads inherit it (see
/// `--sched` in cli::USAGE). Any user may choose it; a refusal is logged, never fatal.
fn sched_batch() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` only; pid 0 is this thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        log(&format!(
            "--sched batch: {} (going on with the default policy)",
            std::io::Error::last_os_error()
        ));
    }
}

/// One line on stderr, named, so that logs of two bridges can be told apart.
pub fn log(msg: &str) {
    eprintln!("parallax-bridge[{}]: {msg}", std::process::id());
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match cli::parse(&argv) {
        Ok(a) => a,
        Err(msg) if msg.is_empty() => {
            print!("{}", cli::USAGE);
            return;
        }
        Err(msg) => {
            eprintln!("parallax-bridge: {msg}\n{}", cli::USAGE);
            std::process::exit(2);
        }
    };
    catch_signals();
    if args.sched_batch {
        sched_batch();
    }
    let result = match args.mode {
        cli::Mode::Export => export::run(&args),
        cli::Mode::Import => import::run(&args),
    };
    if let Err(msg) = result {
        log(&msg);
        std::process::exit(1);
    }
}
