// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Peer processes: the test binary re-run as the other side of a test (a real process, so
//! that memory is mapped across processes and a peer can be killed with SIGKILL).
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A peer process: this binary running the ignored test `peer_test`, told what to do through
/// environment variables. Killed if a test fails before it is done with it. Its stdin takes
/// "go" lines; its stdout carries `PX-CHILD:` lines.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    pub fn run(peer_test: &str, env: &[(&str, &OsStr)]) -> Peer {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            peer_test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    /// The rest of the first line that holds `PX-CHILD: <marker>` (libtest prints its own
    /// text too, even on the same line).
    pub fn wait_for(&mut self, marker: &str) -> String {
        let marker = format!("PX-CHILD: {marker}");
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the peer exited before printing {marker:?}");
            if let Some(at) = line.find(&marker) {
                return line[at + marker.len()..].trim().to_string();
            }
        }
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn go(&mut self) {
        writeln!(self.stdin, "go").unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    /// Waits for the peer to exit (at most 20 s, then it is killed) and asserts it succeeded.
    #[track_caller]
    pub fn assert_success(mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the peer failed: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the peer did not finish in 20 s");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// In the peer: a line the test waits for with [`Peer::wait_for`].
pub fn say(what: &str) {
    println!("PX-CHILD: {what}");
    std::io::stdout().flush().unwrap();
}

/// In the peer: waits for the test's [`Peer::go`].
pub fn wait_for_go() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
}
