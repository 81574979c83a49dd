// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The `tokio` feature: `recv().await` and Streams on channels and subscribers, on a
//! multi-threaded runtime: frames from another thread and another process, the end of the
//! stream, cancellation (timeout, select!) losing nothing, several channels and several tasks
//! at once, and an idle wait that sleeps instead of spinning.
#![cfg(feature = "tokio")]
mod common;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::peer::{say, Peer};
use common::{assert_err, checked_pattern, pattern_frame, TempDir};
use futures_util::StreamExt;
use parallax::{
    AsyncChannel, AsyncSubscriber, Buffer, Channel, Pool, Publisher, PublisherOptions,
    SlowPolicy, Status, Subscriber,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));
const FRAME_BYTES: usize = 1024;

fn shm_pool(slots: usize) -> Pool {
    Pool::shm(Some("rust-tokio"), slots, FRAME_BYTES).unwrap()
}

/// The sequence of a received frame, after checking every byte.
#[track_caller]
fn checked_seq(buf: &Buffer) -> u64 {
    checked_pattern(buf, FRAME_BYTES)
}

/// A thread that sends frames 0..n over `end` (pausing `pause` every `every` frames), then
/// drops it: the receiver sees the end.
fn sender(end: Channel, pool: Pool, n: u64, every: u64, pause: Duration) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for seq in 0..n {
            if seq % every == 0 {
                thread::sleep(pause);
            }
            end.send_timeout(&pattern_frame(&pool, seq), WAIT).unwrap();
        }
    })
}

/// Waits (asleep) until every slot of `pool` is back.
async fn all_back(pool: &Pool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.available() != pool.capacity() {
        assert!(Instant::now() < deadline, "slots not back: {:?}", pool);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_awaits_frames_from_another_thread_then_closed() {
    let pool = shm_pool(4);
    let (tx, rx) = Channel::pair().unwrap();
    let rx = AsyncChannel::new(rx).unwrap();
    let t = sender(tx, pool.clone(), 40, 8, Duration::from_millis(20));
    for expected in 0..40 {
        let f = rx.recv().await.unwrap();
        assert!(f.is_readonly());
        assert_eq!(checked_seq(&f), expected);
    }
    t.join().unwrap();
    assert_err(rx.recv().await, Status::Closed, "");
    assert_err(rx.recv().await, Status::Closed, ""); // and stays so
    all_back(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_recv_is_woken_by_the_frame_not_by_polling() {
    let pool = shm_pool(2);
    let (tx, rx) = Channel::pair().unwrap();
    let rx = AsyncChannel::new(rx).unwrap();
    let sent_at = Arc::new(std::sync::Mutex::new(None));
    let t = thread::spawn({
        let sent_at = sent_at.clone();
        move || {
            thread::sleep(Duration::from_millis(150));
            let f = pattern_frame(&pool, 1);
            *sent_at.lock().unwrap() = Some(Instant::now());
            tx.send(&f).unwrap();
            thread::sleep(Duration::from_millis(100)); // keep the end open meanwhile
        }
    });
    let f = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let woke = Instant::now();
    let sent = sent_at.lock().unwrap().expect("sent before received");
    assert_eq!(checked_seq(&f), 1);
    assert!(
        woke - sent < Duration::from_millis(100),
        "woken {:?} after the send",
        woke - sent
    );
    t.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_of_a_channel_ends_when_the_peer_has_gone() {
    let pool = shm_pool(4);
    let (tx, rx) = Channel::pair().unwrap();
    let mut rx = AsyncChannel::new(rx).unwrap();
    let t = sender(tx, pool.clone(), 25, 5, Duration::from_millis(5));
    let mut seqs = Vec::new();
    while let Some(f) = rx.next().await {
        seqs.push(checked_seq(&f.unwrap()));
    }
    assert_eq!(seqs, (0..25).collect::<Vec<_>>());
    assert!(futures_util::stream::FusedStream::is_terminated(&rx));
    assert!(
        rx.next().await.is_none(),
        "a finished stream stays finished"
    );
    t.join().unwrap();
    all_back(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recv_cancelled_by_timeout_or_select_loses_no_buffer() {
    let pool = shm_pool(8);
    let (tx, rx) = Channel::pair().unwrap();
    let rx = AsyncChannel::new(rx).unwrap();

    // Nothing there: the timeout wins, and the dropped future took nothing.
    assert!(tokio::time::timeout(Duration::from_millis(30), rx.recv())
        .await
        .is_err());
    tx.send(&pattern_frame(&pool, 100)).unwrap();
    assert_eq!(checked_seq(&rx.recv().await.unwrap()), 100);

    // Frames arrive at uneven times while select! keeps cancelling the receive in favour of a
    // short timer: every frame still arrives, once, in order. The sender's pauses (3 ms every
    // 10 frames) outlast tokio's 1 ms timer granularity several times over, so the timer wins
    // some rounds even on a loaded machine (pauses of 700 us left it only a few there).
    const N: u64 = 300;
    let t = sender(tx, pool.clone(), N, 10, Duration::from_millis(3));
    let (mut seqs, mut cancelled) = (Vec::new(), 0u32);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(f) => seqs.push(checked_seq(&f)),
                Err(e) if e.status() == Status::Closed => break,
                Err(e) => panic!("{e}"),
            },
            _ = tokio::time::sleep(Duration::from_micros(200)) => cancelled += 1,
        }
    }
    t.join().unwrap();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>());
    assert!(
        cancelled > 10,
        "only {cancelled} receives were cancelled: the test proved little"
    );
    all_back(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_channels_are_served_by_one_runtime_and_tasks_share_a_channel() {
    let pool = shm_pool(16);
    let mut tasks = Vec::new();
    let mut senders = Vec::new();
    for k in 0..3u64 {
        let (tx, rx) = Channel::pair().unwrap();
        let rx = AsyncChannel::new(rx).unwrap();
        senders.push(sender(
            tx,
            pool.clone(),
            30,
            10,
            Duration::from_millis(3 * k + 1),
        ));
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while let Ok(f) = rx.recv().await {
                assert_eq!(checked_seq(&f), n);
                n += 1;
            }
            n
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 30);
    }

    // Two tasks on one channel: each buffer goes to exactly one of them.
    let (tx, rx) = Channel::pair().unwrap();
    let rx = Arc::new(AsyncChannel::new(rx).unwrap());
    senders.push(sender(tx, pool.clone(), 60, 6, Duration::from_millis(2)));
    let takers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Ok(f) = rx.recv().await {
                    got.push(checked_seq(&f));
                }
                got
            })
        })
        .collect();
    let mut all = HashSet::new();
    for t in takers {
        for seq in t.await.unwrap() {
            assert!(all.insert(seq), "frame {seq} received twice");
        }
    }
    assert_eq!(all.len(), 60);
    for s in senders {
        s.join().unwrap();
    }
    all_back(&pool).await;
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec out-pointer.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn an_idle_wait_sleeps_instead_of_spinning() {
    // One thread runs the runtime, so its CPU time is the wait's.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = Channel::pair().unwrap();
    let pool = shm_pool(2);
    rt.block_on(async {
        let rx = AsyncChannel::new(rx).unwrap();
        tx.send(&pattern_frame(&pool, 0)).unwrap();
        assert_eq!(checked_seq(&rx.recv().await.unwrap()), 0); // the fd has been readable
        let before = thread_cpu();
        assert!(tokio::time::timeout(Duration::from_millis(400), rx.recv())
            .await
            .is_err());
        let spent = thread_cpu() - before;
        assert!(
            spent < Duration::from_millis(100),
            "an idle 400 ms wait used {spent:?} of CPU"
        );
    });
}

#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let (_a, b) = Channel::pair().unwrap();
    assert_err(
        AsyncChannel::new(b),
        Status::Invalid,
        "not inside a Tokio runtime",
    );
}

// ---- Another process ---------------------------------------------------------------------------

const ROLE: &str = "PX_RUST_TOKIO_ROLE";
const NAME: &str = "PX_RUST_TOKIO_NAME";
const FRAMES: u64 = 50;

/// The peer: publishes frames 0..FRAMES to one subscriber at an uneven pace, then ends the
/// stream (or, as "killed", says so and waits to be killed).
#[test]
#[ignore = "the peer process of the tokio tests; they run it"]
fn tokio_peer() {
    let (Ok(role), Some(name)) = (std::env::var(ROLE), std::env::var_os(NAME)) else {
        println!("tokio_peer: not spawned by a tokio test, nothing to do");
        return;
    };
    let mut o = PublisherOptions::default();
    o.slow_policy = SlowPolicy::Block;
    o.block_timeout = WAIT;
    let publisher = Publisher::new(&name, &o).unwrap();
    say("publishing");
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.subscriber_count() == 0 {
        assert!(Instant::now() < deadline, "no subscriber came");
        publisher.poll(Some(Duration::from_millis(10))).unwrap();
    }
    let pool = shm_pool(8);
    for seq in 0..FRAMES {
        if seq % 10 == 0 {
            thread::sleep(Duration::from_millis(10));
        }
        publisher.publish(&pattern_frame(&pool, seq)).unwrap();
    }
    if role == "killed" {
        say("published");
        thread::sleep(Duration::from_secs(60));
    }
}

fn spawn_peer(role: &str, name: &std::path::Path) -> Peer {
    Peer::run(
        "tokio_peer",
        &[(ROLE, OsStr::new(role)), (NAME, name.as_os_str())],
    )
}

async fn subscribe(name: std::path::PathBuf) -> AsyncSubscriber {
    // Joining waits (for the publisher to admit us): off the runtime's threads.
    let sub = tokio::task::spawn_blocking(move || Subscriber::new(&name, WAIT).unwrap());
    AsyncSubscriber::new(sub.await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_subscriber_gets_every_frame_of_another_process_then_the_end() {
    let dir = TempDir::new("tokio-stream");
    let name = dir.file("cam");
    let mut peer = spawn_peer("ends", &name);
    peer.wait_for("publishing");
    let mut sub = subscribe(name).await;
    let mut seqs = Vec::new();
    while let Some(f) = sub.next().await {
        let f = f.unwrap();
        assert!(f.is_readonly());
        seqs.push(checked_seq(&f));
    }
    assert_eq!(seqs, (0..FRAMES).collect::<Vec<_>>());
    assert_err(sub.recv().await, Status::Closed, "");
    assert_eq!(sub.get_ref().stats().unwrap().missed, 0);
    peer.assert_success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_publisher_ends_the_stream_after_what_it_sent() {
    let dir = TempDir::new("tokio-killed");
    let name = dir.file("cam");
    let mut peer = spawn_peer("killed", &name);
    peer.wait_for("publishing");
    let sub = subscribe(name).await;
    // Receive meanwhile: the publisher blocks when this subscriber has no room.
    let receiving = tokio::spawn(async move {
        let mut n = 0;
        loop {
            let r = tokio::time::timeout(Duration::from_secs(10), sub.recv()).await;
            match r.expect("the end of a killed publisher's stream is seen") {
                Ok(f) => {
                    assert_eq!(checked_seq(&f), n);
                    n += 1;
                }
                Err(e) => {
                    assert_eq!(e.status(), Status::Closed, "{e}");
                    return n;
                }
            }
        }
    });
    tokio::task::block_in_place(|| {
        peer.wait_for("published");
        peer.kill(); // SIGKILL: no goodbye
    });
    let n = receiving.await.unwrap();
    assert_eq!(n, FRAMES, "every frame sent before the kill arrives");
}
