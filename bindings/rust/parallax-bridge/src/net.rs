// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The Zenoh side: a session configured from the command line, and what both directions share.
use zenoh::qos::CongestionControl;
use zenoh::{Config, Session, Wait};

use crate::cli::Args;
use crate::{log, stopping};

/// The key on which an exporter answers queries for its current description, beside the
/// frames' key (a '@' chunk: wildcards on the frames' key never match it).
pub fn description_key(key: &str) -> String {
    format!("{key}/@description")
}

/// Batches Zenoh may queue for sending at priority Data (Zenoh's default is 2). The exporter
/// puts messages of up to 60 KiB, one to a 64 KiB batch: with 2, its put waited for room
/// (a sleep and a wake-up) every other message. 8 (512 KiB) measured fewer context switches and
/// less CPU per frame through the bridges (4 KiB frames: 12.6 -> 9.6 us, interleaved runs at
/// load 7-10); the benchmark gives plain Zenoh the same.
pub const DATA_QUEUE_BATCHES: usize = 8;

fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{:?}", s)).collect();
    format!("[{}]", quoted.join(","))
}

fn set(config: &mut Config, path: &str, json5: &str) -> Result<(), String> {
    config
        .insert_json5(path, json5)
        .map_err(|e| format!("zenoh config {path} = {json5}: {e}"))
}

/// The Zenoh configuration: the file if given, else a peer with a deeper Data queue
/// ([`DATA_QUEUE_BATCHES`]); then the endpoints given. Without
/// --listen a bridge listens nowhere (Zenoh's default would be every interface), and multicast
/// scouting stays off unless asked, so nothing leaves the addresses on the command line.
pub fn config(args: &Args) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => {
            Config::from_file(path).map_err(|e| format!("--config {}: {e}", path.display()))?
        }
        None => {
            let mut c = Config::default();
            set(&mut c, "mode", "\"peer\"")?;
            set(&mut c, "listen/endpoints", "[]")?;
            set(
                &mut c,
                "transport/link/tx/queue/size/data",
                &DATA_QUEUE_BATCHES.to_string(),
            )?;
            c
        }
    };
    if !args.listen.is_empty() {
        set(&mut config, "listen/endpoints", &json_list(&args.listen))?;
    }
    if !args.connect.is_empty() {
        set(&mut config, "connect/endpoints", &json_list(&args.connect))?;
        // Keep trying until the other side answers (open() waits for it: see `open`), and
        // again whenever the link drops; soon, so that a restarted peer is found within 1 s.
        set(&mut config, "connect/timeout_ms", "-1")?;
        set(&mut config, "connect/exit_on_failure", "false")?;
        set(
            &mut config,
            "connect/retry",
            "{period_init_ms: 100, period_max_ms: 1000, period_increase_factor: 2}",
        )?;
    }
    set(
        &mut config,
        "scouting/multicast/enabled",
        &args.multicast_scouting.to_string(),
    )?;
    Ok(config)
}

/// Opens the session. With --connect, Zenoh returns only once a peer answered, which may be
/// never: so it opens on a thread while `idle` runs every 10 ms (the importer admits local
/// subscribers there) and a SIGINT/SIGTERM ends the process as a clean stop.
pub fn open(args: &Args, mut idle: impl FnMut()) -> Result<Session, String> {
    let config = config(args)?;
    let opening = std::thread::spawn(move || zenoh::open(config).wait());
    let mut waited = 0u32;
    while !opening.is_finished() {
        if stopping() {
            log("stopped before any peer answered");
            std::process::exit(0);
        }
        idle();
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
        if waited == 300 {
            log(&format!(
                "waiting for a peer at {}",
                args.connect.join(", ")
            ));
        }
    }
    let session = opening
        .join()
        .map_err(|_| "the zenoh session panicked while opening")?;
    session.map_err(|e| format!("cannot open the zenoh session: {e}"))
}

/// Reliable: the publisher waits for room in Zenoh's queues rather than drop a frame.
pub fn congestion(args: &Args) -> CongestionControl {
    if args.best_effort {
        CongestionControl::Drop
    } else {
        CongestionControl::Block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        crate::cli::parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>()).unwrap()
    }

    fn data_queue(config: &Config) -> String {
        config
            .get_json("transport/link/tx/queue/size/data")
            .unwrap()
    }

    #[test]
    fn without_a_file_zenoh_queues_more_data_batches() {
        let c = config(&args("export cam --key a/b --listen tcp/127.0.0.1:7447")).unwrap();
        assert_eq!(data_queue(&c), DATA_QUEUE_BATCHES.to_string());
        // Zenoh's own default, which the bridge's replaces.
        assert_eq!(data_queue(&Config::default()), "2");
    }

    #[test]
    fn a_config_file_is_taken_as_it_is() {
        let path = std::env::temp_dir().join(format!("px-bridge-net-{}.json5", std::process::id()));
        std::fs::write(
            &path,
            "{ transport: { link: { tx: { queue: { size: { data: 3 } } } } } }",
        )
        .unwrap();
        let c = config(&args(&format!(
            "import --key a/b cam --config {}",
            path.display()
        )));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(data_queue(&c.unwrap()), "3");
    }
}
