// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Which handles may cross or be shared between threads. All of them may: every libparallax
//! call is thread-safe. A Slot writes only through `&mut`, a Buffer never writes, and changing
//! a buffer's metadata needs `&mut`. These are compile-time facts; the tests in pools.rs,
//! buffers.rs and channels.rs exercise them with real threads; what must not compile is
//! checked by the `compile_fail` doctests at the end of src/lib.rs.
use parallax::{Buffer, Channel, Error, Listener, Metadata, Pool, Segment, Slot};

fn send_and_sync<T: Send + Sync>() {}

#[test]
fn every_handle_is_send_and_sync() {
    send_and_sync::<Segment>();
    send_and_sync::<Pool>();
    send_and_sync::<Slot>();
    send_and_sync::<Buffer>();
    send_and_sync::<Channel>();
    send_and_sync::<Listener>();
    send_and_sync::<Metadata>();
    send_and_sync::<Error>();
}
