// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the safe `parallax` crate does not offer yet, through parallax-sys: a buffer's format
//! (px_buffer_format / px_buffer_set_format) and a description of any bytes (the safe crate
//! takes `&str` and reads into a fresh Vec each time).
use std::ffi::{c_char, CStr};

use parallax::sys;
use parallax::{Buffer, Publisher, Subscriber};

use crate::wire::Format;

/// The last error message of this thread's failed libparallax call.
fn last_error() -> String {
    // SAFETY: the library returns a live thread-local C string.
    unsafe { CStr::from_ptr(sys::px_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

/// The buffer's format; `None` when it is untyped.
pub fn format(buffer: &Buffer) -> Option<Format> {
    let mut f = sys::px_format_t::default();
    // SAFETY: live handle; valid out-pointer.
    if unsafe { sys::px_buffer_format(buffer.as_raw(), &mut f) } != sys::PX_OK || f.ndim == 0 {
        return None;
    }
    Some(Format {
        dtype: f.dtype,
        ndim: f.ndim,
        fourcc: f.fourcc,
        flags: f.flags,
        shape: f.shape,
        strides: f.strides,
    })
}

/// Gives the buffer `format`; the library refuses one whose elements leave the buffer.
pub fn set_format(buffer: &mut Buffer, format: &Format) -> Result<(), String> {
    let f = sys::px_format_t {
        dtype: format.dtype,
        ndim: format.ndim,
        fourcc: format.fourcc,
        flags: format.flags,
        shape: format.shape,
        strides: format.strides,
    };
    // SAFETY: live handle we own (`&mut`: no other use races with it); valid format.
    match unsafe { sys::px_buffer_set_format(buffer.as_raw(), &f) } {
        sys::PX_OK => Ok(()),
        _ => Err(last_error()),
    }
}

/// A number that changes whenever the subscriber's description may have (1 from the join on):
/// the text is read again only then, not at every frame.
pub fn description_version(sub: &Subscriber) -> u64 {
    // SAFETY: live handle; the call is one atomic load.
    unsafe { sys::px_subscriber_description_version(sub.as_raw()) }
}

/// Reads the subscriber's description into `text` (reused from frame to frame).
pub fn description_into(sub: &Subscriber, text: &mut Vec<u8>) -> Result<(), String> {
    if text.capacity() < 256 {
        text.reserve(256);
    }
    loop {
        let room = text.capacity();
        text.resize(room, 0);
        let mut len = 0usize;
        // SAFETY: live handle; `text` has `room` bytes; valid out-pointer.
        let rc = unsafe {
            sys::px_subscriber_description(
                sub.as_raw(),
                text.as_mut_ptr().cast::<c_char>(),
                room,
                &mut len,
            )
        };
        if rc == sys::PX_OK {
            text.truncate(len);
            return Ok(());
        }
        if rc == sys::PX_E_INVALID && len >= room {
            text.reserve(len + 1 - text.len());
            continue;
        }
        return Err(last_error());
    }
}

/// Sets the publisher's description from bytes (a C publisher upstream may have set any bytes
/// but NUL, which the wire format refuses).
pub fn set_description(publisher: &Publisher, text: &[u8]) -> Result<(), String> {
    let c = std::ffi::CString::new(text).map_err(|_| "description holds a NUL byte".to_string())?;
    // SAFETY: live handle and C string (copied by the library).
    match unsafe { sys::px_publisher_set_description(publisher.as_raw(), c.as_ptr()) } {
        sys::PX_OK => Ok(()),
        _ => Err(last_error()),
    }
}
