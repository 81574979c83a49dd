// SPDX-License-Identifier: Apache-2.0 OR MIT
//! How frames travel on a Zenoh key: a small versioned header, then the payload. A Zenoh
//! message holds one frame, or several small ones back to back (flag 4 on every one but the
//! last): an exporter that finds frames already waiting puts them in one message, so that
//! Zenoh's per-message costs (routing, a wake-up of its sending thread, a send, the receiver's
//! decoding and callback) are paid once for them all; it never waits for frames to come.
//!
//! ```text
//! offset size  field
//!      0    4  magic "PXBR"
//!      4    2  version (1)
//!      6    2  flags: 1 = a description follows the metadata, 2 = a format follows it,
//!              4 = another frame's header follows this frame's payload in the same message
//!      8    4  header length (bytes before the payload)
//!     12    4  reserved, 0
//!     16    8  epoch: random per exporter run (a restarted exporter starts a new numbering)
//!     24    8  stream position of the frame at the exporter (1, 2, ...; gaps = frames missed)
//!     32    8  description version at the exporter (0 = none seen yet)
//!     40    8  payload length
//!     48  120  metadata: sequence, pts, dts, duration, offset, offset_end (8 each; times as
//!              px_metadata_t, PX_TIME_NONE = i64::MIN), flags (4), user_len (4), user (64)
//!    168  144  format, if flagged: dtype, ndim, fourcc, flags (4 each), shape[8], strides[8]
//!              (8 each), as px_format_t
//!      .    4  description length, if flagged, then its bytes (at most 64 KiB, no NUL)
//! ```
//! All integers little-endian. Everything is checked on import: a frame whose header is not
//! exactly this is refused with a message naming what was wrong, never trusted.
use parallax::Metadata;

pub const MAGIC: &[u8; 4] = b"PXBR";
pub const VERSION: u16 = 1;
pub const FLAG_DESCRIPTION: u16 = 1;
pub const FLAG_FORMAT: u16 = 2;
pub const FLAG_MORE: u16 = 4;
/// Where the flags are in an encoded header (their low byte: every flag is in it).
pub const FLAGS_AT: usize = 6;
const KNOWN_FLAGS: u16 = FLAG_DESCRIPTION | FLAG_FORMAT | FLAG_MORE;
pub const FIXED_LEN: usize = 168;
pub const FORMAT_LEN: usize = 144;
pub const MAX_DIMS: usize = 8;
/// The stream API's limit on a description (64 KiB).
pub const DESCRIPTION_MAX: usize = 64 << 10;
const TIME_NONE: i64 = i64::MIN;
const USER_MAX: usize = parallax::sys::PX_METADATA_USER_MAX as usize;

/// A frame's format as px_format_t carries it (ndim 0 = untyped, never sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Format {
    pub dtype: u32,
    pub ndim: u32,
    pub fourcc: u32,
    pub flags: u32,
    pub shape: [i64; MAX_DIMS],
    pub strides: [i64; MAX_DIMS],
}

/// Everything about a frame but its payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub epoch: u64,
    pub position: u64,
    pub description_version: u64,
    pub payload_len: u64,
    pub metadata: Metadata,
    pub format: Option<Format>,
    pub description: Option<Vec<u8>>,
    /// Another frame follows this one's payload in the same message.
    pub more: bool,
}

impl Header {
    /// Bytes the encoded header takes.
    pub fn encoded_len(&self) -> usize {
        FIXED_LEN
            + self.format.map_or(0, |_| FORMAT_LEN)
            + self.description.as_ref().map_or(0, |d| 4 + d.len())
    }

    /// Appends the encoded header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let flags = if self.description.is_some() {
            FLAG_DESCRIPTION
        } else {
            0
        } | if self.format.is_some() {
            FLAG_FORMAT
        } else {
            0
        } | if self.more { FLAG_MORE } else { 0 };
        out.reserve(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&(self.encoded_len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for v in [
            self.epoch,
            self.position,
            self.description_version,
            self.payload_len,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        encode_metadata(&self.metadata, out);
        if let Some(f) = &self.format {
            for v in [f.dtype, f.ndim, f.fourcc, f.flags] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in f.shape.iter().chain(f.strides.iter()) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        if let Some(d) = &self.description {
            out.extend_from_slice(&(d.len() as u32).to_le_bytes());
            out.extend_from_slice(d);
        }
    }
}

fn encode_metadata(m: &Metadata, out: &mut Vec<u8>) {
    let time = |t: Option<i64>| t.unwrap_or(TIME_NONE);
    out.extend_from_slice(&m.sequence.to_le_bytes());
    for t in [m.pts_ns, m.dts_ns, m.duration_ns] {
        out.extend_from_slice(&time(t).to_le_bytes());
    }
    out.extend_from_slice(&m.offset.to_le_bytes());
    out.extend_from_slice(&m.offset_end.to_le_bytes());
    out.extend_from_slice(&m.flags.to_le_bytes());
    let user = m.user();
    out.extend_from_slice(&(user.len() as u32).to_le_bytes());
    let mut padded = [0u8; USER_MAX];
    padded[..user.len()].copy_from_slice(user);
    out.extend_from_slice(&padded);
}

/// Reads little-endian fields from a byte slice, failing (never panicking) past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!(
                "header cut short: {what} needs {n} bytes at offset {}",
                self.at
            )
        })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn i64(&mut self, what: &str) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
}

/// The header's length from its first 12 bytes (magic, version and flags checked), so that a
/// reader knows how much to read before [`decode`].
pub fn header_len(prefix: &[u8]) -> Result<usize, String> {
    let mut c = Cursor {
        bytes: prefix,
        at: 0,
    };
    if c.take(4, "magic")? != MAGIC {
        return Err("bad magic: not a parallax-bridge frame".into());
    }
    let version = c.u16("version")?;
    if version != VERSION {
        return Err(format!(
            "unsupported header version {version} (this bridge reads {VERSION})"
        ));
    }
    let flags = c.u16("flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(format!("unknown flags {flags:#x}"));
    }
    let len = c.u32("header length")? as usize;
    let max = FIXED_LEN + FORMAT_LEN + 4 + DESCRIPTION_MAX;
    if !(FIXED_LEN..=max).contains(&len) {
        return Err(format!("header length {len} outside {FIXED_LEN}..={max}"));
    }
    Ok(len)
}

/// Decodes a whole header (`bytes` is exactly [`header_len`] long) and checks it against the
/// message: `total_len` is the length of the message from this header on (its payload ends
/// the message, or, flagged "more", leaves room for another frame's header after it).
pub fn decode(bytes: &[u8], total_len: u64) -> Result<Header, String> {
    let len = header_len(bytes)?;
    if bytes.len() != len {
        return Err(format!(
            "header is {} bytes, its length field says {len}",
            bytes.len()
        ));
    }
    let mut c = Cursor { bytes, at: 6 };
    let flags = c.u16("flags")?;
    c.take(4, "header length")?;
    if c.u32("reserved")? != 0 {
        return Err("reserved field is not 0".into());
    }
    let epoch = c.u64("epoch")?;
    let position = c.u64("stream position")?;
    if position == 0 {
        return Err("stream position 0 (positions start at 1)".into());
    }
    let description_version = c.u64("description version")?;
    let payload_len = c.u64("payload length")?;
    let more = flags & FLAG_MORE != 0;
    let end = payload_len.checked_add(len as u64);
    if payload_len == 0 || (!more && end != Some(total_len)) {
        return Err(format!(
            "payload length {payload_len} + header {len} != message length {total_len}"
        ));
    }
    // Checked sums: the lengths come off the network.
    let room = end.and_then(|e| e.checked_add(FIXED_LEN as u64));
    if more && room.is_none_or(|r| r > total_len) {
        return Err(format!(
            "payload length {payload_len} + header {len} leaves no room in {total_len} bytes \
             for the next frame's header"
        ));
    }
    let metadata = decode_metadata(&mut c)?;
    let format = if flags & FLAG_FORMAT != 0 {
        Some(decode_format(&mut c)?)
    } else {
        None
    };
    let description = if flags & FLAG_DESCRIPTION != 0 {
        let n = c.u32("description length")? as usize;
        if n > DESCRIPTION_MAX {
            return Err(format!(
                "description of {n} bytes exceeds {DESCRIPTION_MAX}"
            ));
        }
        let d = c.take(n, "description")?;
        if d.contains(&0) {
            return Err("description holds a NUL byte".into());
        }
        Some(d.to_vec())
    } else {
        None
    };
    if c.at != len {
        return Err(format!(
            "header length {len} but its fields end at {}",
            c.at
        ));
    }
    Ok(Header {
        epoch,
        position,
        description_version,
        payload_len,
        metadata,
        format,
        description,
        more,
    })
}

fn decode_metadata(c: &mut Cursor) -> Result<Metadata, String> {
    let time = |t: i64| (t != TIME_NONE).then_some(t);
    let mut m = Metadata::with_sequence(c.u64("metadata.sequence")?);
    m.pts_ns = time(c.i64("metadata.pts")?);
    m.dts_ns = time(c.i64("metadata.dts")?);
    m.duration_ns = time(c.i64("metadata.duration")?);
    m.offset = c.u64("metadata.offset")?;
    m.offset_end = c.u64("metadata.offset_end")?;
    m.flags = c.u32("metadata.flags")?;
    let user_len = c.u32("metadata.user_len")? as usize;
    let user = c.take(USER_MAX, "metadata.user")?;
    if user_len > user.len() {
        return Err(format!(
            "metadata.user_len {user_len} exceeds {}",
            user.len()
        ));
    }
    m.set_user(&user[..user_len]).map_err(|e| e.to_string())?;
    Ok(m)
}

fn decode_format(c: &mut Cursor) -> Result<Format, String> {
    let mut f = Format {
        dtype: c.u32("format.dtype")?,
        ndim: c.u32("format.ndim")?,
        fourcc: c.u32("format.fourcc")?,
        flags: c.u32("format.flags")?,
        ..Format::default()
    };
    for s in f.shape.iter_mut() {
        *s = c.i64("format.shape")?;
    }
    for s in f.strides.iter_mut() {
        *s = c.i64("format.strides")?;
    }
    // The rest (dtype known, elements inside the buffer) is px_buffer_set_format's to judge.
    if f.ndim == 0 || f.ndim as usize > MAX_DIMS {
        return Err(format!("format.ndim {} outside 1..={MAX_DIMS}", f.ndim));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        let mut metadata = Metadata::with_sequence(77);
        metadata.pts_ns = Some(-3);
        metadata.duration_ns = Some(40_000_000);
        metadata.offset = 5;
        metadata.offset_end = 6;
        metadata.flags = 0x8000_0001;
        metadata.set_user(b"camera-1").unwrap();
        let mut format = Format {
            dtype: 1,
            ndim: 2,
            fourcc: 0x3342_4752,
            ..Format::default()
        };
        format.shape[..2].copy_from_slice(&[2, 5]);
        Header {
            epoch: 0xfeed,
            position: 9,
            description_version: 2,
            payload_len: 10,
            metadata,
            format: Some(format),
            description: Some(b"video/x-raw,width=5".to_vec()),
            more: false,
        }
    }

    fn encoded(h: &Header) -> Vec<u8> {
        let mut v = Vec::new();
        h.encode(&mut v);
        assert_eq!(v.len(), h.encoded_len());
        v
    }

    #[test]
    fn round_trip_with_and_without_the_optional_parts() {
        let full = sample();
        let mut bare = sample();
        bare.format = None;
        bare.description = None;
        bare.metadata = Metadata::default();
        for h in [full, bare] {
            let v = encoded(&h);
            assert_eq!(header_len(&v[..12]).unwrap(), v.len());
            assert_eq!(decode(&v, v.len() as u64 + h.payload_len).unwrap(), h);
        }
    }

    #[test]
    fn a_frame_flagged_more_leaves_room_for_the_next_header() {
        let mut h = sample();
        h.more = true;
        let v = encoded(&h);
        let own = v.len() as u64 + h.payload_len;
        assert_eq!(decode(&v, own + FIXED_LEN as u64).unwrap(), h);
        // Its payload ending the message, or too little room after it: refused.
        for total in [own, own + FIXED_LEN as u64 - 1] {
            assert!(
                decode(&v, total).unwrap_err().contains("no room"),
                "{total}"
            );
        }
        // A payload length whose end, plus room for a header, would run past u64::MAX is
        // refused, not a panic (debug) nor a wrapped sum that passes (release).
        let mut huge = v.clone();
        let near_max = u64::MAX - v.len() as u64 - 10;
        huge[40..48].copy_from_slice(&near_max.to_le_bytes());
        assert!(decode(&huge, u64::MAX).unwrap_err().contains("no room"));
        // Unflagged, the payload must end the message exactly.
        h.more = false;
        let v = encoded(&h);
        assert!(decode(&v, own + FIXED_LEN as u64)
            .unwrap_err()
            .contains("!= message length"));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let v = encoded(&sample());
        for n in 0..v.len() {
            assert!(header_len(&v[..n.min(12)]).is_err() || decode(&v[..n], 1 << 20).is_err());
        }
    }

    #[test]
    fn corrupt_fields_are_named() {
        let good = encoded(&sample());
        let total = good.len() as u64 + 10;
        let cases: [(usize, &[u8], &str); 7] = [
            (0, b"XXXX", "magic"),
            (4, &[2, 0], "version 2"),
            (6, &[0x18, 0], "unknown flags"),
            (12, &[1, 0, 0, 0], "reserved"),
            (24, &[0; 8], "position 0"),
            (40, &[11, 0, 0, 0, 0, 0, 0, 0], "payload length 11"),
            (100, &[65, 0, 0, 0], "user_len 65"),
        ];
        for (at, bytes, what) in cases {
            let mut v = good.clone();
            v[at..at + bytes.len()].copy_from_slice(bytes);
            let e = decode(&v, total).unwrap_err();
            assert!(e.contains(what), "{what}: {e}");
        }
        let mut v = good.clone();
        v[FIXED_LEN + 4..FIXED_LEN + 8].copy_from_slice(&9u32.to_le_bytes()); // ndim 9
        assert!(decode(&v, total).unwrap_err().contains("ndim 9"));
        let mut v = good.clone();
        let d = FIXED_LEN + FORMAT_LEN + 4;
        v[d] = 0; // a NUL in the description
        assert!(decode(&v, total).unwrap_err().contains("NUL"));
        let mut v = good;
        let n = v.len() as u32 + 8; // a length field that disagrees with the bytes
        v[8..12].copy_from_slice(&n.to_le_bytes());
        assert!(decode(&v, total).unwrap_err().contains("length field"));
    }
}
