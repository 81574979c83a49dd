// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `import`: a Zenoh key's frames into a local stream, from a pool of the bridge's own.
//!
//! The local publisher starts first, so local subscribers can join before any exporter is up
//! and stay joined while exporters come and go. Each payload is copied once, from Zenoh's
//! receive buffer into a slot of the pool; that slot is what local subscribers map.
//!
//! Reliable frames are republished on Zenoh's receiving thread, in the subscriber's callback:
//! handing each one to another thread through a queue cost a wake-up and two context switches
//! per frame, most of the importer's CPU time with 4 KiB frames. A slow local side holds that
//! thread back, and through it (TCP) the exporter, as a full queue did. Best-effort frames go
//! through a ring of `--queue` frames, whose oldest is dropped when the local side lags.
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parallax::{Pool, Publisher, Status};
use zenoh::bytes::ZBytesReader;
use zenoh::handlers::RingChannel;
use zenoh::sample::Sample;
use zenoh::{Session, Wait};

use crate::cli::Args;
use crate::wire::{self, Header};
use crate::{log, net, raw, stopping};

/// What became of the exporter's frames. Every frame of its numbering that is not republished
/// (`gaps`, `no_slot`, `no_description`, a refused format among `bad`) is left out of the local
/// stream's numbering as well, so that local subscribers count it in their `missed`.
#[derive(Default, Debug)]
pub struct Counts {
    /// Frames published into the local stream.
    pub frames: u64,
    /// Frames the numbering says never arrived (dropped at the exporter's side or on the way).
    pub gaps: u64,
    /// Messages refused: a header that is not a bridge header, or a format that does not fit.
    pub bad: u64,
    /// Frames that came after a later one of the same exporter run (never republished).
    pub stale: u64,
    /// Frames dropped because every slot was held by local subscribers for a second.
    pub no_slot: u64,
    /// Frames the local publisher could not deliver (`--policy block` timed out).
    pub publish_failed: u64,
    /// Frames not republished while their description was asked for (a long one this
    /// importer missed the change of).
    pub no_description: u64,
    /// Exporter runs seen (a restarted exporter is a new one).
    pub exporters: u64,
}

/// Where the last exporter run is: its epoch, the position of its last frame, and the
/// version of its description already set on the local stream.
struct Upstream {
    epoch: u64,
    position: u64,
    description_version: u64,
}

struct Importer {
    args: Args,
    session: Session,
    publisher: Publisher,
    pool: Option<Pool>,
    upstream: Option<Upstream>,
    /// The latest answer to a description query (epoch, version, text), set by Zenoh.
    answer: Arc<Mutex<Option<Answer>>>,
    /// When the unanswered query went out.
    asked: Option<Instant>,
    counts: Counts,
}

/// Bad messages logged in full; after that only counted (a flood must not flood the log).
const BAD_LOGGED: u64 = 10;

pub fn run(args: &Args) -> Result<(), String> {
    let publisher = Publisher::new(&args.stream, &args.publisher)
        .map_err(|e| format!("cannot publish stream {}: {e}", args.stream))?;
    let session = net::open(args, || {
        let _ = publisher.poll(Some(Duration::ZERO));
    })?;
    log(&format!("import zenoh key {} -> {}", args.key, args.stream));
    let imp = Arc::new(Mutex::new(Importer {
        args: args.clone(),
        session: session.clone(),
        publisher,
        pool: None,
        upstream: None,
        answer: Arc::default(),
        asked: None,
        counts: Counts::default(),
    }));
    let declared = session.declare_subscriber(args.key.clone());
    let result = if args.best_effort {
        let sub = declared
            .with(RingChannel::new(args.queue))
            .wait()
            .map_err(declare_failed)?;
        pump(&imp, |t| sub.recv_timeout(t))
    } else {
        let sub = declared
            .callback({
                let imp = imp.clone();
                move |sample| lock(&imp).handle(&sample)
            })
            .wait()
            .map_err(declare_failed)?;
        idle(&imp);
        // Undeclared before the counts are read: no callback runs after this.
        sub.undeclare()
            .wait()
            .map_err(|e| format!("undeclaring the zenoh subscriber: {e}"))
    };
    let imp = lock(&imp);
    log(&format!("import stopped: {:?}", imp.counts));
    drop(imp);
    result?;
    session
        .close()
        .wait()
        .map_err(|e| format!("closing the zenoh session: {e}"))
}

/// The importer, from the callback's thread or the main one. A panic while it was held (a bug)
/// has already been reported; the counts are still worth logging at the end.
fn lock(imp: &Mutex<Importer>) -> std::sync::MutexGuard<'_, Importer> {
    imp.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn declare_failed(e: zenoh::Error) -> String {
    format!("cannot subscribe to the zenoh key: {e}")
}

/// Best-effort: frames from Zenoh's ring into the local stream until SIGINT/SIGTERM.
fn pump<F>(imp: &Mutex<Importer>, mut recv: F) -> Result<(), String>
where
    F: FnMut(Duration) -> zenoh::Result<Option<Sample>>,
{
    while !stopping() {
        match recv(Duration::from_millis(20)) {
            Ok(Some(sample)) => lock(imp).handle(&sample),
            // Idle: admit joining local subscribers (no library thread does it).
            Ok(None) => {
                let _ = lock(imp).publisher.poll(Some(Duration::ZERO));
            }
            Err(e) => return Err(format!("zenoh subscriber: {e}")),
        }
    }
    Ok(())
}

/// Reliable: Zenoh's thread republishes; this one admits joining local subscribers every 20 ms
/// (publishing admits them too, but the stream may be idle) until SIGINT/SIGTERM.
fn idle(imp: &Mutex<Importer>) {
    while !stopping() {
        std::thread::sleep(Duration::from_millis(20));
        let _ = lock(imp).publisher.poll(Some(Duration::ZERO));
    }
}

/// The whole header at the reader's place in a message, or why not.
fn read_header(reader: &mut ZBytesReader) -> Result<Header, String> {
    let left = reader.remaining();
    let mut prefix = [0u8; 12];
    reader
        .read_exact(&mut prefix)
        .map_err(|_| format!("a message of {left} bytes is shorter than any header"))?;
    let len = wire::header_len(&prefix)?;
    let mut head = vec![0u8; len];
    head[..12].copy_from_slice(&prefix);
    reader
        .read_exact(&mut head[12..])
        .map_err(|_| format!("header of {len} bytes in a message of {left}"))?;
    wire::decode(&head, left as u64)
}

impl Importer {
    fn bad(&mut self, why: &str) {
        self.counts.bad += 1;
        if self.counts.bad <= BAD_LOGGED {
            log(&format!("skipped a message on {}: {why}", self.args.key));
        }
    }

    /// Every frame of a message, in order (a bad header ends it: what follows cannot be found).
    fn handle(&mut self, sample: &Sample) {
        let payload = sample.payload();
        let mut reader = payload.reader();
        loop {
            let at = (payload.len() - reader.remaining()) as u64;
            let header = match read_header(&mut reader) {
                Ok(h) => h,
                Err(why) => return self.bad(&why),
            };
            self.frame(&header, &mut reader);
            if !header.more {
                return;
            }
            // The next header, after this payload whether it was read or not (decode checked
            // that it lies inside the message).
            let next = at + header.encoded_len() as u64 + header.payload_len;
            if let Err(e) = reader.seek(SeekFrom::Start(next)) {
                return self.bad(&format!("cannot reach the next frame at {next}: {e}"));
            }
        }
    }

    /// One frame whose header was read; `reader` is at its payload.
    fn frame(&mut self, header: &Header, reader: &mut ZBytesReader) {
        if !self.advance(header) {
            return;
        }
        if !self.update_description(header) {
            return;
        }
        if let Err(why) = self.republish(header, reader) {
            log(&why);
            self.skip(1);
        }
    }

    /// Checks the frame's place in its exporter's numbering and counts the gap before it;
    /// false for a frame that must not be republished (older than one already out).
    fn advance(&mut self, h: &Header) -> bool {
        match &mut self.upstream {
            Some(u) if u.epoch == h.epoch => {
                if h.position <= u.position {
                    self.counts.stale += 1;
                    if self.counts.stale <= BAD_LOGGED {
                        log(&format!(
                            "frame {} came after {}: not republished",
                            h.position, u.position
                        ));
                    }
                    return false;
                }
                // The frames that never arrived are left out of the local numbering too, so
                // that local subscribers count them as missed, as they would on the exporter's
                // host.
                let gap = h.position - u.position - 1;
                self.counts.gaps += gap;
                u.position = h.position;
                self.skip(gap);
            }
            _ => {
                // A new exporter run (or the first): its numbering starts here, no gap.
                self.counts.exporters += 1;
                log(&format!(
                    "exporter run {:016x} from position {}",
                    h.epoch, h.position
                ));
                self.upstream = Some(Upstream {
                    epoch: h.epoch,
                    position: h.position,
                    description_version: 0,
                });
            }
        }
        true
    }

    /// Leaves `count` numbers out of the local stream's numbering: frames of the exporter's that
    /// local subscribers will not get (lost on the way, or held back here) count as missed
    /// there, as they would on the exporter's host.
    fn skip(&mut self, count: u64) {
        if let Err(e) = self.publisher.skip(count) {
            // Only a numbering run out (2^64 frames): the frames still go.
            log(&format!(
                "cannot show {count} lost frames to local subscribers: {e}"
            ));
        }
    }

    /// Sets the local description when the exporter's changed: from the frame when it carries
    /// it, else (this importer missed the frame that did) from the exporter's answer to a
    /// query. False while the answer is awaited: the frame is not republished, rather than go
    /// out under the wrong description. The wait is never a blocking one: Zenoh delivers the
    /// answer on its receiving thread, which may be the very one running this.
    fn update_description(&mut self, h: &Header) -> bool {
        let u = self.upstream.as_ref().expect("advance set it");
        if h.description_version == u.description_version {
            return true;
        }
        let text = match &h.description {
            Some(t) => Some(t.clone()),
            None => self.answered(h),
        };
        let Some(text) = text else {
            self.ask();
            self.counts.no_description += 1;
            self.skip(1);
            return false;
        };
        match raw::set_description(&self.publisher, &text) {
            Ok(()) => {
                self.upstream.as_mut().unwrap().description_version = h.description_version;
                self.asked = None;
            }
            // Refused by the library (e.g. longer than it takes): the frames still go.
            Err(e) => log(&format!("cannot set the description: {e}")),
        }
        true
    }

    /// The exporter's answer, if it came for this run and at least the frame's version.
    fn answered(&self, h: &Header) -> Option<Vec<u8>> {
        match &*self.answer.lock().unwrap() {
            Some((epoch, version, text))
                if *epoch == h.epoch && *version >= h.description_version =>
            {
                Some(text.clone())
            }
            _ => None,
        }
    }

    /// Asks the exporter for its description: at most once a second while unanswered.
    fn ask(&mut self) {
        if self
            .asked
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.asked = Some(Instant::now());
        let answer = self.answer.clone();
        let asked = self
            .session
            .get(net::description_key(&self.args.key))
            .timeout(Duration::from_secs(1))
            .callback(move |reply| {
                if let Some(a) = reply
                    .result()
                    .ok()
                    .and_then(|s| parse_answer(&s.payload().to_bytes()))
                {
                    *answer.lock().unwrap() = Some(a);
                }
            })
            .wait();
        if let Err(e) = asked {
            log(&format!("cannot ask the exporter for its description: {e}"));
        }
    }

    /// A pool whose slots hold `len` bytes: the current one, or a new one with bigger slots
    /// (the old one lives on while local subscribers hold its buffers).
    fn pool_for(&mut self, len: usize) -> Result<&Pool, String> {
        if self.pool.as_ref().is_none_or(|p| p.slot_size() < len) {
            // Powers of two, so that growing frames regrow the pool a few times at most.
            let size = len.max(self.args.slot_size).next_power_of_two().max(4096);
            let slots = self.args.pool_slots();
            let pool = Pool::shm(Some("parallax-bridge"), slots, size)
                .map_err(|e| format!("cannot make a pool of {slots} x {size} bytes: {e}"))?;
            log(&format!("import pool: {slots} slots of {size} bytes"));
            self.pool = Some(pool);
        }
        Ok(self.pool.as_ref().unwrap())
    }

    fn republish(&mut self, h: &Header, reader: &mut impl Read) -> Result<(), String> {
        let len = usize::try_from(h.payload_len).map_err(|_| "payload too large".to_string())?;
        let pool = self.pool_for(len)?;
        let mut slot = match pool.loan_timeout(Some(Duration::from_secs(1))) {
            Ok(s) => s,
            Err(e) if e.status() == Status::Timeout => {
                self.counts.no_slot += 1;
                self.skip(1);
                return Ok(());
            }
            Err(e) => return Err(format!("loaning a slot: {e}")),
        };
        // The one copy on this side: from Zenoh's receive buffer into shared memory.
        reader
            .read_exact(&mut slot[..len])
            .map_err(|e| format!("reading a payload of {len} bytes: {e}"))?;
        let mut buf = slot
            .into_buffer(len, &h.metadata)
            .map_err(|e| format!("making a buffer: {e}"))?;
        if let Some(f) = &h.format {
            if let Err(e) = raw::set_format(&mut buf, f) {
                self.bad(&format!("format does not fit the frame: {e}"));
                self.skip(1);
                return Ok(());
            }
        }
        match self.publisher.publish(&buf) {
            Ok(()) => self.counts.frames += 1,
            Err(e) => {
                self.counts.publish_failed += 1;
                log(&format!("publishing into {}: {e}", self.args.stream));
            }
        }
        Ok(())
    }
}

/// An exporter's answer: its run, its description's version, the text.
type Answer = (u64, u64, Vec<u8>);

fn parse_answer(bytes: &[u8]) -> Option<Answer> {
    if bytes.len() < 16 {
        return None;
    }
    let epoch = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let version = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    Some((epoch, version, bytes[16..].to_vec()))
}
