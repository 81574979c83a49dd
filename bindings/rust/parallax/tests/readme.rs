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

#[test]
fn readme_typed_frames_example() -> Result<(), parallax::Error> {
    use parallax::{fourcc, Dtype, Format};
    let pool = Pool::shm(None, 2, 480 * 640 * 3)?;
    let (tx, rx) = Channel::pair()?;
    let mut slot = pool.loan()?;
    slot.as_mut_slice_of::<u8>()?.fill(7); // write the frame in place
    let mut frame = slot.into_buffer(480 * 640 * 3, &Metadata::default())?;
    frame.set_format(&Format::new(Dtype::U8, &[480, 640, 3])?.with_fourcc(fourcc(b"RGB3")))?;
    tx.send(&frame)?;
    let got = rx.recv(None)?;
    let format = got.format().expect("typed"); // None: untyped bytes
    assert_eq!(format.shape(), &[480, 640, 3]);
    assert_eq!(got.as_slice_of::<u8>()?.len(), 480 * 640 * 3); // &[u8], read-only, no copy
    assert!(got.as_slice_of::<u8>()?.iter().all(|&b| b == 7));
    Ok(())
}
