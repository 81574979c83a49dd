// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `export`: a local stream's frames onto a Zenoh key.
//!
//! The frame's memory goes to Zenoh as is (a `bytes::Bytes` that owns the received
//! [`Buffer`]): the only copy on this side is Zenoh's own, into its transmit batches. The local
//! slot returns to the publisher's pool when Zenoh drops the payload.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parallax::{Buffer, Status, Subscriber};
use zenoh::bytes::ZBytes;
use zenoh::Wait;

use crate::cli::Args;
use crate::wire::Header;
use crate::{log, net, raw, stopping};

/// Descriptions up to this long are sent with every frame (typical caps or JSON are shorter).
const INLINE_DESCRIPTION_MAX: usize = 512;

/// The description in force at the exporter: answered to importers that missed its change.
#[derive(Default)]
struct Current {
    version: u64,
    text: Vec<u8>,
}

/// A received frame as the payload of a Zenoh message, without a copy.
struct Frame(Buffer);

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Default, Debug)]
struct Counts {
    frames: u64,
    missed: u64,
    empty: u64,
    joins: u64,
}

/// One exporter run's numbering: a random epoch, so that an importer tells a restarted
/// exporter (numbering again from 1) from a gap.
fn epoch() -> u64 {
    let mut b = [0u8; 8];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if ok {
        u64::from_ne_bytes(b)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    let session = net::open(args, || {})?;
    let publisher = session
        .declare_publisher(args.key.clone())
        .congestion_control(net::congestion(args))
        .wait()
        .map_err(|e| format!("cannot declare a publisher on {}: {e}", args.key))?;
    // Says when importers come and go: an operator (or a test) knows frames will reach one.
    let _matching = publisher
        .matching_listener()
        .callback(|status| {
            log(if status.matching() {
                "an importer subscribes to the key"
            } else {
                "no importer subscribes to the key"
            })
        })
        .wait()
        .map_err(|e| format!("cannot declare a matching listener: {e}"))?;
    let epoch = epoch();
    let current = Arc::new(Mutex::new(Current::default()));
    let _queryable = session
        .declare_queryable(net::description_key(&args.key))
        .callback({
            let current = current.clone();
            move |query| {
                let reply = {
                    let c = current.lock().unwrap();
                    let mut v = Vec::with_capacity(16 + c.text.len());
                    v.extend_from_slice(&epoch.to_le_bytes());
                    v.extend_from_slice(&c.version.to_le_bytes());
                    v.extend_from_slice(&c.text);
                    v
                };
                let _ = query.reply(query.key_expr().clone(), reply).wait();
            }
        })
        .wait()
        .map_err(|e| format!("cannot declare the description queryable: {e}"))?;
    log(&format!(
        "export {} -> zenoh key {} (epoch {epoch:016x})",
        args.stream, args.key
    ));

    let mut counts = Counts::default();
    let mut position = 0u64; // this run's numbering, kept across local publishers
    let mut seen: Option<Vec<u8>> = None; // the description last sent
    let mut text = Vec::new();
    while !stopping() {
        let sub = match Subscriber::new(&args.stream, Some(Duration::from_millis(200))) {
            Ok(s) => s,
            Err(e) if matches!(e.status(), Status::Timeout | Status::Closed) => continue,
            Err(e) => {
                log(&format!(
                    "cannot subscribe to {}: {e}; retrying",
                    args.stream
                ));
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        counts.joins += 1;
        log(&format!("subscribed to {}", args.stream));
        let mut missed_before = 0u64;
        loop {
            if stopping() {
                break;
            }
            let buf = match sub.recv(Some(Duration::from_millis(100))) {
                Ok(b) => b,
                Err(e) if matches!(e.status(), Status::Timeout | Status::WouldBlock) => continue,
                Err(e) if e.status() == Status::Closed => {
                    log(&format!(
                        "stream {} ended; waiting for its publisher",
                        args.stream
                    ));
                    break;
                }
                Err(e) => {
                    log(&format!(
                        "receiving from {}: {e}; subscribing again",
                        args.stream
                    ));
                    break;
                }
            };
            // Frames the local publisher had no room for are gaps at the importer too.
            let missed = sub.stats().map(|s| s.missed).unwrap_or(missed_before);
            position += 1 + missed.saturating_sub(missed_before);
            counts.missed += missed.saturating_sub(missed_before);
            missed_before = missed;
            if buf.is_empty() {
                counts.empty += 1; // nothing to carry (slots hold at least one byte)
                continue;
            }
            raw::description_into(&sub, &mut text)?;
            let changed = seen.as_deref() != Some(&text[..]);
            let mut header = Header {
                epoch,
                position,
                description_version: 0,
                payload_len: buf.len() as u64,
                metadata: buf.metadata(),
                format: raw::format(&buf),
                description: None,
            };
            {
                let mut c = current.lock().unwrap();
                if changed {
                    c.version += 1;
                    c.text.clone_from(&text);
                    seen = Some(text.clone());
                }
                // A short description rides on every frame, so an importer that joins late
                // or restarts has it at once; a long one only on change (or when asked).
                if changed || text.len() <= INLINE_DESCRIPTION_MAX {
                    header.description = Some(text.clone());
                }
                header.description_version = c.version;
            }
            put(&publisher, &header, buf)?;
            counts.frames += 1;
        }
    }
    log(&format!("export stopped: {counts:?}"));
    session
        .close()
        .wait()
        .map_err(|e| format!("closing the zenoh session: {e}"))
}

/// Header and payload as one message of two slices: the payload is the frame's own memory.
fn put(
    publisher: &zenoh::pubsub::Publisher<'_>,
    header: &Header,
    buf: Buffer,
) -> Result<(), String> {
    let mut head = Vec::with_capacity(header.encoded_len());
    header.encode(&mut head);
    let mut writer = ZBytes::writer();
    writer.append(ZBytes::from(head));
    writer.append(ZBytes::from(bytes::Bytes::from_owner(Frame(buf))));
    publisher
        .put(writer.finish())
        .wait()
        .map_err(|e| format!("zenoh put: {e}"))
}
