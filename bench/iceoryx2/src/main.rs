// SPDX-License-Identifier: Apache-2.0 OR MIT
//! px-bench-iceoryx2: libparallax against iceoryx2 in the same run (issue 14).
//!
//! One binary, three roles. Without a role it is the orchestrator: it runs every case as a
//! fresh pair of processes (this binary as "leader", which starts this binary as "follower"),
//! interleaving the libraries repetition by repetition, and prints a table per measurement with
//! both figures and their ratios (see `bench/README.md`, section iceoryx2).

mod case;
mod cleanup;
mod iox;
mod orchestrate;
mod px;
mod report;
mod roles;

use case::{Case, Lib};
use roles::pin_to;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("leader") => leader_main(&args[1..]),
        Some("follower") => follower_main(&args[1..]),
        _ => orchestrate::main(&args),
    };
    std::process::exit(code);
}

/// Runs one case and writes one line for the orchestrator on stdout: `RESULT ok key=value...`
/// or `RESULT error <why>`. Exits 0 either way: the line is the answer.
fn leader_main(args: &[String]) -> i32 {
    iceoryx2::prelude::set_log_level(iceoryx2::prelude::LogLevel::Error);
    let result = Case::from_args(args).and_then(|case| {
        pin_to(case.leader_cpu)?;
        match case.lib {
            Lib::Iceoryx2 => iox::run_leader(&case),
            _ => px::run_leader(&case),
        }
    });
    match result {
        Ok((o, mine, theirs)) => println!(
            "RESULT ok value={} p99={} count={} elapsed={} overlap={}",
            o.value,
            o.p99,
            o.count,
            o.elapsed_s,
            mine.overlap(&theirs)
        ),
        Err(e) => println!("RESULT error {}", e.replace('\n', " ")),
    }
    0
}

/// Answers its leader until told to stop, then writes where it ran (`CpuTally::encode`).
fn follower_main(args: &[String]) -> i32 {
    iceoryx2::prelude::set_log_level(iceoryx2::prelude::LogLevel::Error);
    let result = Case::from_args(args).and_then(|case| {
        pin_to(case.follower_cpu)?;
        match case.lib {
            Lib::Iceoryx2 => iox::run_follower(&case),
            _ => px::run_follower(&case),
        }
    });
    match result {
        Ok(tally) => {
            println!("{}", tally.encode());
            0
        }
        Err(e) => {
            eprintln!("px-bench-iceoryx2 follower: {e}");
            1
        }
    }
}
