// SPDX-License-Identifier: Apache-2.0 OR MIT
//! iceoryx2's side, through its Rust API as its own examples and benchmarks use it: one
//! publish-subscribe service of `[u8]` per direction ("a2b": leader to follower, "b2a": back);
//! the producer loans a sample, writes the frame in place and sends it; the consumer receives
//! the sample (a view of the producer's shared memory) and drops it, which returns it.
//!
//! Busy mode polls `Subscriber::receive` in a loop (as iceoryx2's publish-subscribe benchmark
//! does). WaitSet mode adds an event service per direction: the producer notifies after each
//! send, and the consumer sleeps in a WaitSet on its Listener, drains the notifications and
//! receives (as iceoryx2's event-based communication example does).
//!
//! Streams never drop a frame: no safe overflow, and a full subscriber buffer makes the
//! publisher retry (`BackpressureStrategy::RetryUntilDelivered`, iceoryx2's own
//! yield-then-sleep wait) until the consumer has made room.

use std::time::{Duration, Instant};

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::{event, publish_subscribe};
use iceoryx2::waitset::WaitSetRunResult;

use crate::case::{Case, Kind, Mode, MIN_PAYLOAD};
use crate::roles::{
    follow, lead, read_frame, write_frame_uninit, CpuTally, Follower, Link, Outcome, PATIENCE, STOP,
};

/// Prefix of every file this benchmark's iceoryx2 nodes create (shared memory in /dev/shm,
/// node and service records under /tmp/iceoryx2), instead of iceoryx2's "iox2_": the cleanup
/// removes exactly these and never another program's.
pub const FILE_PREFIX: &str = "iox2pxb_";

type Ipc = ipc::Service;

fn err<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e:?}")
}

fn node() -> Result<Node<Ipc>, String> {
    let mut config = Config::default();
    config.global.prefix = FileName::new(FILE_PREFIX.as_bytes()).map_err(err("FileName"))?;
    NodeBuilder::new()
        .config(&config)
        .create::<Ipc>()
        .map_err(err("NodeBuilder::create"))
}

fn service_name(case: &Case, direction: &str) -> Result<ServiceName, String> {
    ServiceName::new(&format!("px-bench/{}/{direction}", case.name)).map_err(err("ServiceName"))
}

/// Both directions of one process: the services (kept so that the leader can watch the
/// follower connect), its publisher and subscriber, and in WaitSet mode its notifier and
/// listener.
struct Ports {
    out_service: publish_subscribe::PortFactory<Ipc, [u8], ()>,
    in_service: publish_subscribe::PortFactory<Ipc, [u8], ()>,
    out_event: Option<event::PortFactory<Ipc>>,
    in_event: Option<event::PortFactory<Ipc>>,
    publisher: Publisher<Ipc, [u8], ()>,
    subscriber: Subscriber<Ipc, [u8], ()>,
    notifier: Option<Notifier<Ipc>>,
    listener: Option<Listener<Ipc>>,
    out_len: usize,
    // Declared last: dropped after every port and service of it.
    _node: Node<Ipc>,
}

impl Ports {
    /// The leader creates both directions; the follower opens them.
    fn new(case: &Case, leader: bool) -> Result<Ports, String> {
        let node = node()?;
        let (out_dir, in_dir) = if leader {
            ("a2b", "b2a")
        } else {
            ("b2a", "a2b")
        };
        let pubsub = |dir: &str| -> Result<publish_subscribe::PortFactory<Ipc, [u8], ()>, String> {
            let builder = node
                .service_builder(&service_name(case, dir)?)
                .publish_subscribe::<[u8]>();
            if leader {
                builder
                    .max_publishers(1)
                    .max_subscribers(1)
                    .max_nodes(2)
                    .history_size(0)
                    .subscriber_max_buffer_size(case.slots)
                    .subscriber_max_borrowed_samples(1)
                    .enable_safe_overflow(false)
                    .create()
                    .map_err(err("publish_subscribe create"))
            } else {
                builder.open().map_err(err("publish_subscribe open"))
            }
        };
        let events = |dir: &str| -> Result<Option<event::PortFactory<Ipc>>, String> {
            if case.mode != Mode::WaitSet {
                return Ok(None);
            }
            let builder = node.service_builder(&service_name(case, dir)?).event();
            let made = if leader {
                builder
                    .max_notifiers(1)
                    .max_listeners(1)
                    .max_nodes(2)
                    .create()
                    .map_err(err("event create"))
            } else {
                builder.open().map_err(err("event open"))
            };
            made.map(Some)
        };
        let out_service = pubsub(out_dir)?;
        let in_service = pubsub(in_dir)?;
        let out_event = events(out_dir)?;
        let in_event = events(in_dir)?;
        let out_len = if leader || case.kind == Kind::Latency {
            case.payload
        } else {
            MIN_PAYLOAD
        };
        let publisher = out_service
            .publisher_builder()
            .initial_max_slice_len(out_len)
            .max_loaned_samples(1)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(err("publisher create"))?;
        let subscriber = in_service
            .subscriber_builder()
            .buffer_size(case.slots)
            .create()
            .map_err(err("subscriber create"))?;
        let notifier = match &out_event {
            Some(e) => Some(
                e.notifier_builder()
                    .create()
                    .map_err(err("notifier create"))?,
            ),
            None => None,
        };
        let listener = match &in_event {
            Some(e) => Some(
                e.listener_builder()
                    .create()
                    .map_err(err("listener create"))?,
            ),
            None => None,
        };
        Ok(Ports {
            out_service,
            in_service,
            out_event,
            in_event,
            publisher,
            subscriber,
            notifier,
            listener,
            out_len,
            _node: node,
        })
    }

    /// Whether the peer's ports are all there: a sample sent before its subscriber exists is
    /// not delivered (no history), so the leader starts only then.
    fn peer_connected(&self) -> bool {
        let events = match (&self.out_event, &self.in_event) {
            (Some(o), Some(i)) => {
                o.dynamic_config().number_of_listeners() >= 1
                    && i.dynamic_config().number_of_notifiers() >= 1
            }
            _ => true,
        };
        events
            && self.out_service.dynamic_config().number_of_subscribers() >= 1
            && self.in_service.dynamic_config().number_of_publishers() >= 1
    }

    fn wait_for_peer(&self) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        while !self.peer_connected() {
            if Instant::now() > deadline {
                return Err("the follower's ports did not appear".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }
}

struct IoxLink<'a> {
    ports: &'a Ports,
    /// WaitSet mode: the process's WaitSet, to which `ports.listener` is attached.
    waitset: Option<&'a WaitSet<Ipc>>,
}

impl Link for IoxLink<'_> {
    fn send(&mut self, seq: u64) -> Result<(), String> {
        let p = self.ports;
        let mut sample = p
            .publisher
            .loan_slice_uninit(p.out_len)
            .map_err(err("loan"))?;
        write_frame_uninit(sample.payload_mut(), seq);
        // SAFETY: the consumer reads only the bytes write_frame_uninit wrote; the rest is shared
        // memory that the OS zero-filled or an earlier frame wrote (as in iceoryx2's benchmark).
        let sample = unsafe { sample.assume_init() };
        sample.send().map_err(err("send"))?;
        if let Some(n) = &p.notifier {
            n.notify().map_err(err("notify"))?;
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<Option<u64>, String> {
        let deadline = Instant::now() + PATIENCE;
        let mut polls = 0u32;
        loop {
            if let Some(sample) = self.ports.subscriber.receive().map_err(err("receive"))? {
                return read_frame(sample.payload()).map(Some);
            }
            match (self.waitset, &self.ports.listener) {
                (Some(ws), Some(listener)) => {
                    // Wakes when the listener has notifications; they are drained here (else
                    // the WaitSet would wake again at once) and the loop receives.
                    let result = ws
                        .wait_and_process_once_with_timeout(
                            |_| {
                                let _ = listener.try_wait(|_| {});
                                CallbackProgression::Continue
                            },
                            PATIENCE,
                        )
                        .map_err(err("WaitSet"))?;
                    if matches!(
                        result,
                        WaitSetRunResult::Interrupt | WaitSetRunResult::TerminationRequest
                    ) {
                        return Err("interrupted".into());
                    }
                    polls = polls.wrapping_add(4095);
                }
                _ => polls = polls.wrapping_add(1),
            }
            if polls.is_multiple_of(4096) && Instant::now() > deadline {
                return Err(format!("no frame within {PATIENCE:?}"));
            }
        }
    }
}

/// Runs `body` with this process's link: in WaitSet mode, a WaitSet with the listener attached
/// for the whole run (attaching is a registration, not part of a message's cost).
fn with_link<R>(
    ports: &Ports,
    mode: Mode,
    body: impl FnOnce(&mut IoxLink) -> Result<R, String>,
) -> Result<R, String> {
    match (mode, &ports.listener) {
        (Mode::WaitSet, Some(listener)) => {
            let waitset = WaitSetBuilder::new()
                .create::<Ipc>()
                .map_err(err("WaitSet create"))?;
            let _guard = waitset
                .attach_notification(listener)
                .map_err(err("WaitSet attach"))?;
            body(&mut IoxLink {
                ports,
                waitset: Some(&waitset),
            })
        }
        _ => body(&mut IoxLink {
            ports,
            waitset: None,
        }),
    }
}

pub fn run_leader(case: &Case) -> Result<(Outcome, CpuTally, CpuTally), String> {
    let ports = Ports::new(case, true)?;
    let follower = Follower::spawn(case, None)?;
    let mut tally = CpuTally::default();
    let outcome = ports.wait_for_peer().and_then(|()| {
        with_link(&ports, case.mode, |link| {
            let outcome = lead(case, link, &mut tally);
            link.send(STOP)?;
            outcome
        })
    });
    let follower_tally = follower.finish();
    drop(ports);
    Ok((outcome?, tally, follower_tally?))
}

pub fn run_follower(case: &Case) -> Result<CpuTally, String> {
    let ports = Ports::new(case, false)?;
    let mut tally = CpuTally::default();
    with_link(&ports, case.mode, |link| follow(case, link, &mut tally))?;
    Ok(tally)
}
