// SPDX-License-Identifier: Apache-2.0 OR MIT
//! libparallax's side, through its safe Rust crate as a Rust user writes it: the producer loans
//! a slot from a pool over shared memory, writes the frame in place, turns the slot into a buffer
//! and sends it over a channel; the consumer receives a read-only view of the same memory and
//! drops it, which hands the slot back to the producer's pool. Answers (the echo, the drain's
//! acknowledgement) come from the follower's own pool the same way.
//!
//! The channel is a socketpair whose second end the follower inherits (`Channel::from_fd`, the
//! documented way for a process started with exec).

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use parallax::{Channel, Metadata, Pool, Status};

use crate::case::{Case, Kind, Lib, MIN_PAYLOAD};
use crate::roles::{
    follow, lead, read_frame, write_frame, CpuTally, Follower, Link, Outcome, INHERITED_FD,
    PATIENCE, STOP,
};

struct PxLink {
    channel: Channel,
    pool: Pool,
    out_len: usize,
}

impl Link for PxLink {
    fn send(&mut self, seq: u64) -> Result<(), String> {
        let mut slot = self
            .pool
            .loan_timeout(Some(PATIENCE))
            .map_err(|e| format!("loan: {e}"))?;
        write_frame(&mut slot[..self.out_len], seq);
        let buffer = slot
            .into_buffer(self.out_len, &Metadata::with_sequence(seq))
            .map_err(|e| format!("into_buffer: {e}"))?;
        // The peer's reference keeps the slot out after ours is dropped here.
        self.channel.send(&buffer).map_err(|e| format!("send: {e}"))
    }

    fn recv(&mut self) -> Result<Option<u64>, String> {
        match self.channel.recv(Some(PATIENCE)) {
            Ok(buffer) => read_frame(&buffer).map(Some),
            Err(e) if e.status() == Status::Closed => Ok(None),
            Err(e) => Err(format!("recv: {e}")),
        }
    }
}

fn link(case: &Case, channel: Channel, slots: usize, out_len: usize) -> Result<PxLink, String> {
    let spin = match case.lib {
        Lib::ParallaxSpin => Some(None), // -1: never sleeps
        Lib::ParallaxBlocking => Some(Some(Duration::ZERO)), // 0: sleeps at once
        _ => None,                       // the library's default
    };
    if let Some(spin) = spin {
        channel
            .set_spin(spin)
            .map_err(|e| format!("set_spin: {e}"))?;
    }
    let pool = Pool::shm(Some("px-bench-iceoryx2"), slots, out_len)
        .map_err(|e| format!("Pool::shm({slots} x {out_len} B): {e}"))?;
    Ok(PxLink {
        channel,
        pool,
        out_len,
    })
}

/// Frames in flight: the stream's `slots`; a ping-pong has one, and 4 slots let a slot come
/// back late without ever making the sender wait.
fn leader_slots(case: &Case) -> usize {
    match case.kind {
        Kind::Latency => 4,
        Kind::Stream => case.slots,
    }
}

/// The follower answers with frames of the case's size (latency) or small acknowledgements.
fn follower_out_len(case: &Case) -> usize {
    match case.kind {
        Kind::Latency => case.payload,
        Kind::Stream => MIN_PAYLOAD,
    }
}

pub fn run_leader(case: &Case) -> Result<(Outcome, CpuTally, CpuTally), String> {
    let mut sv = [0; 2];
    // SAFETY: valid out-array of two fds.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            sv.as_mut_ptr(),
        )
    } != 0
    {
        return Err(format!("socketpair: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are fresh and ours.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
    let follower = Follower::spawn(case, Some(std::os::fd::AsRawFd::as_raw_fd(&theirs)))?;
    drop(theirs);
    let channel = Channel::from_fd(ours).map_err(|e| format!("Channel::from_fd: {e}"))?;
    let mut px = link(case, channel, leader_slots(case), case.payload)?;
    let mut tally = CpuTally::default();
    let outcome = lead(case, &mut px, &mut tally);
    let stopped = px.send(STOP);
    drop(px);
    let follower_tally = follower.finish();
    let outcome = outcome?;
    stopped?;
    Ok((outcome, tally, follower_tally?))
}

pub fn run_follower(case: &Case) -> Result<CpuTally, String> {
    // SAFETY: the leader put our socket end at this fd (Follower::spawn); nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(INHERITED_FD) };
    let channel = Channel::from_fd(socket).map_err(|e| format!("Channel::from_fd: {e}"))?;
    let mut px = link(case, channel, 4, follower_out_len(case))?;
    let mut tally = CpuTally::default();
    follow(case, &mut px, &mut tally)?;
    Ok(tally)
}
