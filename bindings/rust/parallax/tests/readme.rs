// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The example of bindings/rust/README.md, kept compiling and passing.
use std::time::Duration;

use parallax::{Channel, Metadata, Pool};

#[test]
fn readme_example() -> Result<(), parallax::Error> {
    let pool = Pool::shm(Some("frames"), 4, 1 << 20)?; // 4 slots of 1 MiB, shareable
    let (tx, rx) = Channel::pair()?; // or Listener::bind / Channel::connect
    let mut slot = pool.loan_timeout(None)?; // waits for a free slot
    slot[..5].copy_from_slice(b"frame");
    tx.send(&slot.into_buffer(5, &Metadata::with_sequence(0))?)?;
    let frame = rx.recv(Some(Duration::from_secs(1)))?; // read-only view, no copy
    assert_eq!(&frame[..], b"frame");
    assert!(frame.is_readonly());
    Ok(())
}
