// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `export`: a local stream's frames onto a Zenoh key.
//!
//! The frame's memory goes to Zenoh as is (a `bytes::Bytes` that owns the received
//! [`Buffer`]): the only copy on this side is Zenoh's own, into its transmit batches. The local
//! slot returns to the publisher's pool when Zenoh drops the payload.
//!
//! Frames already waiting when one is taken go in the same Zenoh message (see `wire`), up to
//! [`AGGREGATE_BYTES`]: with 4 KiB frames, one put, one wake-up of Zenoh's sending thread and one
//! callback at the importer per message instead of per frame were most of both bridges' CPU
//! time. Nothing waits for a frame to come: a lone frame goes at once, alone.
//!
//! A frame that fits in such a message is copied into it (the one copy this side makes): a
//! message of small frames is then one buffer (one allocation, where each frame took four as a
//! header and a payload of its own), and each frame's slot goes back to the local publisher at
//! once rather than after Zenoh's sending thread has written it. A larger frame goes alone, as
//! its own memory.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parallax::{Buffer, Status, Subscriber};
use zenoh::bytes::ZBytes;
use zenoh::Wait;

use crate::cli::Args;
use crate::wire::{self, Header};
use crate::{log, net, raw, stopping};

/// Descriptions up to this long are sent with every frame (typical caps or JSON are shorter).
const INLINE_DESCRIPTION_MAX: usize = 512;

/// A message of several frames stays within this (headers and payloads): under Zenoh's 64 KiB
/// batch, so that it is never fragmented; a frame that does not fit waits for the next message,
/// and a larger frame always goes alone.
const AGGREGATE_BYTES: usize = 60 << 10;

/// The description in force at the exporter: answered to importers that missed its change.
#[derive(Default)]
struct Current {
    version: u64,
    text: Vec<u8>,
}

/// A large received frame as the payload of a Zenoh message, without a copy.
struct Frame(Buffer);

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Default, Debug)]
struct Counts {
    frames: u64,
    /// Zenoh messages put (several frames in one when they were waiting).
    messages: u64,
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

    let mut state = State {
        epoch,
        current,
        counts: Counts::default(),
        position: 0,
        seen: None,
        text: Vec::new(),
        text_version: 0,
        missed_before: 0,
    };
    let mut message = Message::default(); // the next Zenoh message
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
        state.counts.joins += 1;
        state.missed_before = 0;
        state.text_version = 0; // a new subscriber numbers its descriptions from 1 again
        log(&format!("subscribed to {}", args.stream));
        let mut next: Option<Buffer> = None; // a frame that did not fit in the last message
        loop {
            if stopping() {
                break;
            }
            let buf = match next
                .take()
                .map_or_else(|| sub.recv(Some(Duration::from_millis(100))), Ok)
            {
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
            let mut bytes = state.add(&sub, buf, &mut message)?;
            // Frames already waiting join a message of small ones while they fit; an error is
            // left for the blocking receive above to report.
            while message.large.is_none() && bytes < AGGREGATE_BYTES {
                let Ok(Some(buf)) = sub.try_recv() else { break };
                if bytes + wire::FIXED_LEN + buf.len() > AGGREGATE_BYTES {
                    next = Some(buf);
                    break;
                }
                bytes += state.add(&sub, buf, &mut message)?;
            }
            if message.frames != 0 {
                message.put(&publisher)?;
                state.counts.messages += 1;
            }
        }
    }
    log(&format!("export stopped: {:?}", state.counts));
    session
        .close()
        .wait()
        .map_err(|e| format!("closing the zenoh session: {e}"))
}

/// The exporter's side of the numbering and of the description, across local publishers.
struct State {
    epoch: u64,
    current: Arc<Mutex<Current>>,
    counts: Counts,
    /// This run's numbering, kept across local publishers.
    position: u64,
    /// The description last sent.
    seen: Option<Vec<u8>>,
    /// The subscriber's description, read into this when its version changes.
    text: Vec<u8>,
    /// The subscriber's description version `text` was read at (0: not yet).
    text_version: u64,
    /// The local subscriber's `missed` at the last frame.
    missed_before: u64,
}

impl State {
    /// Numbers a received frame and appends it, with its header, to `message`; the bytes it
    /// adds to the message (0 for an empty frame, which is not carried). A frame too large to
    /// share a message must come to an empty one.
    fn add(&mut self, sub: &Subscriber, buf: Buffer, message: &mut Message) -> Result<usize, String> {
        // Frames the local publisher had no room for are gaps at the importer too.
        let missed = sub.stats().map(|s| s.missed).unwrap_or(self.missed_before);
        let lost = missed.saturating_sub(self.missed_before);
        self.position += 1 + lost;
        self.counts.missed += lost;
        self.missed_before = missed;
        if buf.is_empty() {
            self.counts.empty += 1; // nothing to carry (slots hold at least one byte)
            return Ok(0);
        }
        let version = raw::description_version(sub);
        if version != self.text_version {
            raw::description_into(sub, &mut self.text)?;
            self.text_version = version;
        }
        let changed = self.seen.as_deref() != Some(&self.text[..]);
        let mut header = Header {
            epoch: self.epoch,
            position: self.position,
            description_version: 0,
            payload_len: buf.len() as u64,
            metadata: buf.metadata(),
            format: raw::format(&buf),
            description: None,
            more: false,
        };
        {
            let mut c = self.current.lock().unwrap();
            if changed {
                c.version += 1;
                c.text.clone_from(&self.text);
                self.seen = Some(self.text.clone());
            }
            // A short description rides on every frame, so an importer that joins late
            // or restarts has it at once; a long one only on change (or when asked).
            // (Lent to the header while it is encoded, not copied.)
            if changed || self.text.len() <= INLINE_DESCRIPTION_MAX {
                header.description = Some(std::mem::take(&mut self.text));
            }
            header.description_version = c.version;
        }
        self.counts.frames += 1;
        let bytes = header.encoded_len() + buf.len();
        message.push(&mut header, buf);
        if let Some(text) = header.description.take() {
            self.text = text;
        }
        Ok(bytes)
    }
}

/// The next Zenoh message: small frames (headers and payloads) back to back in one buffer, or
/// one large frame, its header and its own memory.
#[derive(Default)]
struct Message {
    bytes: Vec<u8>,
    /// Where the last small frame's header starts in `bytes` (its flags get FLAG_MORE when
    /// another frame follows).
    last_header: Option<usize>,
    large: Option<(Vec<u8>, Buffer)>,
    frames: usize,
}

impl Message {
    fn push(&mut self, header: &mut Header, buf: Buffer) {
        self.frames += 1;
        header.more = false;
        // Large: alone. (The caller lets a frame join others only when it fits, counting its
        // header as FIXED_LEN: one with a format or a description may overrun a little.)
        if self.frames == 1 && header.encoded_len() + buf.len() > AGGREGATE_BYTES {
            let mut head = Vec::with_capacity(header.encoded_len());
            header.encode(&mut head);
            self.large = Some((head, buf));
            return;
        }
        if let Some(at) = self.last_header {
            self.bytes[at + wire::FLAGS_AT] |= wire::FLAG_MORE as u8;
        }
        self.last_header = Some(self.bytes.len());
        if self.bytes.capacity() == 0 {
            self.bytes.reserve(AGGREGATE_BYTES.max(header.encoded_len() + buf.len()));
        }
        header.encode(&mut self.bytes);
        self.bytes.extend_from_slice(&buf); // the copy; its slot returns when buf drops here
    }

    /// Puts the message and leaves this empty.
    fn put(&mut self, publisher: &zenoh::pubsub::Publisher<'_>) -> Result<(), String> {
        let payload = match self.large.take() {
            Some((head, buf)) => {
                let mut writer = ZBytes::writer();
                writer.append(ZBytes::from(head));
                writer.append(ZBytes::from(bytes::Bytes::from_owner(Frame(buf))));
                writer.finish()
            }
            None => ZBytes::from(std::mem::take(&mut self.bytes)),
        };
        self.last_header = None;
        self.frames = 0;
        publisher
            .put(payload)
            .wait()
            .map_err(|e| format!("zenoh put: {e}"))
    }
}
