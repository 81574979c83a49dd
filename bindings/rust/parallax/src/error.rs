// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Errors: the status code of the failing call and the library's message for it.
use std::ffi::CStr;
use std::fmt;

use parallax_sys as sys;

/// What kind of failure a call reported (`PX_E_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// `PX_E_INVALID`: bad argument or range.
    Invalid,
    /// `PX_E_NOMEM`: out of memory.
    NoMem,
    /// `PX_E_UNSUPPORTED`: not available here (huge pages not reserved, IPC of heap memory, a
    /// write to read-only memory...).
    Unsupported,
    /// `PX_E_IO`: an OS call failed; the message names the call and errno.
    Io,
    /// `PX_E_WOULD_BLOCK`: pool exhausted on a non-blocking loan, nothing to receive.
    WouldBlock,
    /// `PX_E_TIMEOUT`: a positive timeout expired.
    Timeout,
    /// `PX_E_CLOSED`: the peer is gone or the channel closed.
    Closed,
    /// `PX_E_PROTOCOL`: the peer sent malformed or hostile data; the connection was dropped.
    Protocol,
    /// `PX_E_PERMISSION`: peer credentials refused, access denied.
    Permission,
    /// `PX_E_BUSY`: resource in use.
    Busy,
    /// `PX_E_INTERNAL`: a bug in libparallax.
    Internal,
    /// A code this crate does not know (a newer library).
    Unknown(i32),
}

impl Status {
    /// The status for a C code; `None` for `PX_OK`.
    pub fn from_code(code: sys::px_status_t) -> Option<Status> {
        Some(match code {
            sys::PX_OK => return None,
            sys::PX_E_INVALID => Status::Invalid,
            sys::PX_E_NOMEM => Status::NoMem,
            sys::PX_E_UNSUPPORTED => Status::Unsupported,
            sys::PX_E_IO => Status::Io,
            sys::PX_E_WOULD_BLOCK => Status::WouldBlock,
            sys::PX_E_TIMEOUT => Status::Timeout,
            sys::PX_E_CLOSED => Status::Closed,
            sys::PX_E_PROTOCOL => Status::Protocol,
            sys::PX_E_PERMISSION => Status::Permission,
            sys::PX_E_BUSY => Status::Busy,
            sys::PX_E_INTERNAL => Status::Internal,
            other => Status::Unknown(other),
        })
    }

    /// The C code (`PX_E_*`).
    pub fn code(self) -> sys::px_status_t {
        match self {
            Status::Invalid => sys::PX_E_INVALID,
            Status::NoMem => sys::PX_E_NOMEM,
            Status::Unsupported => sys::PX_E_UNSUPPORTED,
            Status::Io => sys::PX_E_IO,
            Status::WouldBlock => sys::PX_E_WOULD_BLOCK,
            Status::Timeout => sys::PX_E_TIMEOUT,
            Status::Closed => sys::PX_E_CLOSED,
            Status::Protocol => sys::PX_E_PROTOCOL,
            Status::Permission => sys::PX_E_PERMISSION,
            Status::Busy => sys::PX_E_BUSY,
            Status::Internal => sys::PX_E_INTERNAL,
            Status::Unknown(code) => code,
        }
    }

    /// The library's name for the code, e.g. `"PX_E_INVALID"`.
    pub fn name(self) -> &'static str {
        // SAFETY: px_status_string never returns NULL and its strings are static.
        unsafe { CStr::from_ptr(sys::px_status_string(self.code())) }
            .to_str()
            .unwrap_or("PX_E_UNKNOWN")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed call: its status and the message that names what was wrong, e.g.
/// `px_buffer_new: range [4090, +16) exceeds segment length 4096`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error detected on the Rust side of the boundary.
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }

    /// The error of a call that just returned `code` on this thread.
    pub(crate) fn last(code: sys::px_status_t) -> Error {
        // SAFETY: never NULL; valid until the next failing call on this thread, and copied now.
        let message = unsafe { CStr::from_ptr(sys::px_last_error_message()) }
            .to_string_lossy()
            .into_owned();
        let status = Status::from_code(code).unwrap_or(Status::Internal);
        Error { status, message }
    }

    /// What kind of failure this is.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The library's message (names the function and the problem).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.status)
        } else {
            write!(f, "{} ({})", self.message, self.status)
        }
    }
}

impl std::error::Error for Error {}

/// `Ok(())` for `PX_OK`, else the error the call just recorded.
pub(crate) fn check(code: sys::px_status_t) -> Result<()> {
    if code == sys::PX_OK {
        Ok(())
    } else {
        Err(Error::last(code))
    }
}

/// A path or label as a C string; an interior NUL is an [`Status::Invalid`] error.
pub(crate) fn c_string(what: &str, bytes: &[u8]) -> Result<std::ffi::CString> {
    std::ffi::CString::new(bytes)
        .map_err(|_| Error::new(Status::Invalid, format!("{what} contains a NUL byte")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_have_library_names() {
        for code in -11..=-1 {
            let s = Status::from_code(code).unwrap();
            assert_eq!(s.code(), code);
            assert!(!matches!(s, Status::Unknown(_)));
            assert!(s.name().starts_with("PX_E_"), "{}", s.name());
        }
        assert_eq!(Status::from_code(0), None);
        assert_eq!(Status::from_code(-99), Some(Status::Unknown(-99)));
        assert_eq!(Status::Unknown(-99).name(), "PX_E_UNKNOWN");
        assert_eq!(Status::Timeout.to_string(), "PX_E_TIMEOUT");
    }

    #[test]
    fn display_shows_message_and_status() {
        let e = Error::new(Status::Invalid, "px_x: bad");
        assert_eq!(e.to_string(), "px_x: bad (PX_E_INVALID)");
        assert_eq!(Error::new(Status::Busy, "").to_string(), "PX_E_BUSY");
    }

    #[test]
    fn c_string_refuses_interior_nul() {
        let e = c_string("path", b"a\0b").unwrap_err();
        assert_eq!(e.status(), Status::Invalid);
        assert_eq!(e.message(), "path contains a NUL byte");
        assert_eq!(c_string("path", b"ab").unwrap().as_bytes(), b"ab");
    }
}
