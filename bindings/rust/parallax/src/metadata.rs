// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Metadata carried by every buffer, and across channels intact.
use parallax_sys as sys;

use crate::error::{Error, Result, Status};

/// Bytes of user data a [`Metadata`] can carry.
pub const USER_MAX: usize = sys::PX_METADATA_USER_MAX as usize;

/// Per-buffer metadata (`px_metadata_t`). Times are `None` when unknown (the C side's
/// `PX_TIME_NONE`, i.e. `i64::MIN`, so `Some(i64::MIN)` reads back as `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Metadata {
    /// Sequence number (frame counter).
    pub sequence: u64,
    /// Presentation time in nanoseconds.
    pub pts_ns: Option<i64>,
    /// Decode time in nanoseconds.
    pub dts_ns: Option<i64>,
    /// Duration in nanoseconds.
    pub duration_ns: Option<i64>,
    /// Media offset (e.g. byte or sample offset of the first unit).
    pub offset: u64,
    /// Media offset one past the last unit.
    pub offset_end: u64,
    /// Application-defined flags.
    pub flags: u32,
    user: [u8; USER_MAX],
    user_len: u8,
}

impl Default for Metadata {
    /// What `px_metadata_init` gives: times unknown, everything else zero.
    fn default() -> Self {
        Metadata {
            sequence: 0,
            pts_ns: None,
            dts_ns: None,
            duration_ns: None,
            offset: 0,
            offset_end: 0,
            flags: 0,
            user: [0; USER_MAX],
            user_len: 0,
        }
    }
}

fn time_from_c(t: i64) -> Option<i64> {
    (t != sys::PX_TIME_NONE).then_some(t)
}

impl Metadata {
    /// Default metadata with this sequence number.
    pub fn with_sequence(sequence: u64) -> Self {
        Metadata {
            sequence,
            ..Metadata::default()
        }
    }

    /// The user bytes in use (at most 64).
    pub fn user(&self) -> &[u8] {
        &self.user[..self.user_len as usize]
    }

    /// Sets the user bytes; more than 64 is a [`Status::Invalid`] error (and changes nothing).
    pub fn set_user(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() > USER_MAX {
            return Err(Error::new(
                Status::Invalid,
                format!(
                    "Metadata::set_user: {} bytes exceed the {USER_MAX} available",
                    bytes.len()
                ),
            ));
        }
        self.user = [0; USER_MAX];
        self.user[..bytes.len()].copy_from_slice(bytes);
        self.user_len = bytes.len() as u8;
        Ok(())
    }

    pub(crate) fn to_c(self) -> sys::px_metadata_t {
        let time = |t: Option<i64>| t.unwrap_or(sys::PX_TIME_NONE);
        sys::px_metadata_t {
            sequence: self.sequence,
            pts_ns: time(self.pts_ns),
            dts_ns: time(self.dts_ns),
            duration_ns: time(self.duration_ns),
            offset: self.offset,
            offset_end: self.offset_end,
            flags: self.flags,
            user_len: u32::from(self.user_len),
            user: self.user,
        }
    }

    pub(crate) fn from_c(m: &sys::px_metadata_t) -> Self {
        // The library validates user_len; clamp anyway so a bad value can never index out.
        let user_len = m.user_len.min(USER_MAX as u32) as u8;
        let mut user = [0; USER_MAX];
        user[..user_len as usize].copy_from_slice(&m.user[..user_len as usize]);
        Metadata {
            sequence: m.sequence,
            pts_ns: time_from_c(m.pts_ns),
            dts_ns: time_from_c(m.dts_ns),
            duration_ns: time_from_c(m.duration_ns),
            offset: m.offset,
            offset_end: m.offset_end,
            flags: m.flags,
            user,
            user_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_px_metadata_init() {
        let mut c = sys::px_metadata_t::default();
        // SAFETY: valid out-pointer.
        unsafe { sys::px_metadata_init(&mut c) };
        assert_eq!(Metadata::from_c(&c), Metadata::default());
        let back = Metadata::default().to_c();
        assert_eq!(back.pts_ns, sys::PX_TIME_NONE);
        assert_eq!(back.duration_ns, sys::PX_TIME_NONE);
        assert_eq!(back.user_len, 0);
    }

    #[test]
    fn fields_round_trip_through_c() {
        let mut m = Metadata::with_sequence(42);
        m.pts_ns = Some(-5);
        m.dts_ns = Some(0);
        m.offset = 7;
        m.offset_end = 9;
        m.flags = 0x8000_0001;
        m.set_user(b"camera-3").unwrap();
        let back = Metadata::from_c(&m.to_c());
        assert_eq!(back, m);
        assert_eq!(back.user(), b"camera-3");
        assert_eq!(back.duration_ns, None);
    }

    #[test]
    fn user_data_is_limited_to_64_bytes() {
        let mut m = Metadata::default();
        m.set_user(&[1; 64]).unwrap();
        assert_eq!(m.user().len(), 64);
        let e = m.set_user(&[2; 65]).unwrap_err();
        assert_eq!(e.status(), Status::Invalid);
        assert!(e.message().contains("65 bytes"), "{}", e.message());
        assert_eq!(m.user(), &[1; 64][..], "a refused set_user changes nothing");
        m.set_user(b"").unwrap();
        assert!(m.user().is_empty());
    }

    #[test]
    fn hostile_user_len_from_c_is_clamped() {
        let mut c = Metadata::default().to_c();
        c.user_len = 1000;
        assert_eq!(Metadata::from_c(&c).user().len(), USER_MAX);
    }

    #[test]
    fn time_none_sentinel() {
        let m = Metadata {
            pts_ns: Some(i64::MIN),
            ..Metadata::default()
        };
        assert_eq!(Metadata::from_c(&m.to_c()).pts_ns, None);
    }
}
