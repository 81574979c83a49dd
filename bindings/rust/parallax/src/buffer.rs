// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Buffers: a range of a segment plus metadata, refcounted, never a hidden copy.
use std::ops::Deref;
use std::ptr::NonNull;

use parallax_sys as sys;

use crate::error::{check, Result};
use crate::format::{typed_len, Element, Format};
use crate::metadata::Metadata;
use crate::segment::{make, Segment};

/// An immutable view of `[offset, offset + len)` of a segment with its own [`Metadata`]
/// (`px_buffer_t`). `Clone` is O(1) (`px_buffer_clone`): same memory, its own copy of the
/// metadata. The memory stays valid while the buffer lives; for a buffer made from a slot, the
/// slot returns to its pool when the last buffer referring to it (here or in another process)
/// is dropped.
///
/// Buffers received from a channel point straight into the sender's memory, mapped read-only.
pub struct Buffer {
    raw: NonNull<sys::px_buffer_t>,
}

// SAFETY: buffer calls are thread-safe; the bytes are only read through a Buffer.
unsafe impl Send for Buffer {}
// SAFETY: `&Buffer` gives reads of the bytes and the metadata and O(1) clones (an atomic
// increment); changing the metadata needs `&mut Buffer`.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// A buffer over `[offset, offset + len)` of `segment` (`len` may be 0); the range is
    /// checked, overflow-safe. The buffer keeps the segment alive.
    ///
    /// # Safety
    /// Rust code will read the range through `&[u8]` for as long as this buffer or a clone or
    /// slice of it lives, so nothing may write it during that time: it must not overlap a slot
    /// loaned from a pool over the same segment, nor memory written through
    /// [`Segment::as_mut_slice`], C code or another process. Nor may it shrink: a mapped file
    /// that another process truncates raises SIGBUS when the lost pages are read.
    pub unsafe fn new(
        segment: &Segment,
        offset: usize,
        len: usize,
        meta: &Metadata,
    ) -> Result<Buffer> {
        let meta = meta.to_c();
        make(|out| sys::px_buffer_new(segment.as_raw(), offset, len, &meta, out))
            .map(|raw| Buffer { raw })
    }

    /// A buffer over the whole segment.
    ///
    /// # Safety
    /// As for [`Buffer::new`].
    pub unsafe fn from_segment(segment: &Segment, meta: &Metadata) -> Result<Buffer> {
        let meta = meta.to_c();
        make(|out| sys::px_buffer_from_segment(segment.as_raw(), &meta, out))
            .map(|raw| Buffer { raw })
    }

    /// Takes ownership of a C buffer handle.
    ///
    /// # Safety
    /// `raw` must be a live `px_buffer_t` whose reference the caller gives up, and its memory
    /// must not be written while it or a clone lives.
    pub unsafe fn from_raw(raw: NonNull<sys::px_buffer_t>) -> Buffer {
        Buffer { raw }
    }

    /// A clone that reports failure (out of memory) instead of panicking.
    pub fn try_clone(&self) -> Result<Buffer> {
        // SAFETY: live handle; valid out-pointer.
        make(|out| unsafe { sys::px_buffer_clone(self.raw.as_ptr(), out) })
            .map(|raw| Buffer { raw })
    }

    /// `[offset, offset + len)` of this buffer: same memory, same metadata. Out of range is
    /// [`Status::Invalid`].
    pub fn slice(&self, offset: usize, len: usize) -> Result<Buffer> {
        // SAFETY: live handle; valid out-pointer.
        make(|out| unsafe { sys::px_buffer_slice(self.raw.as_ptr(), offset, len, out) })
            .map(|raw| Buffer { raw })
    }

    /// Offset of the first byte within the segment.
    pub fn offset(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::px_buffer_offset(self.raw.as_ptr()) }
    }

    /// The segment the buffer points into.
    pub fn segment(&self) -> Segment {
        // SAFETY: live handle; a buffer always has its segment, and from_borrowed_raw retains it.
        unsafe { Segment::from_borrowed_raw(sys::px_buffer_segment(self.raw.as_ptr())) }
            .expect("a buffer always has a segment")
    }

    /// Whether the memory is read-only (e.g. received from a channel, or a read-only file).
    pub fn is_readonly(&self) -> bool {
        // SAFETY: live handle; the pointer is only compared with NULL.
        unsafe { sys::px_buffer_mut_ptr(self.raw.as_ptr()) }.is_null()
    }

    /// A copy of the metadata.
    pub fn metadata(&self) -> Metadata {
        let mut m = sys::px_metadata_t::default();
        // SAFETY: live handle; valid out-pointer. Fails only for NULL arguments, which these
        // are not.
        let rc = unsafe { sys::px_buffer_metadata(self.raw.as_ptr(), &mut m) };
        debug_assert_eq!(rc, sys::PX_OK);
        Metadata::from_c(&m)
    }

    /// Replaces this buffer's metadata (clones keep theirs).
    pub fn set_metadata(&mut self, meta: &Metadata) -> Result<()> {
        let meta = meta.to_c();
        // SAFETY: live handle; valid metadata.
        check(unsafe { sys::px_buffer_set_metadata(self.raw.as_ptr(), &meta) })
    }

    /// What the bytes are: `None` for untyped bytes (the default of every buffer, and of every
    /// slice). Clones keep the format; channels and streams carry it.
    pub fn format(&self) -> Option<Format> {
        let mut f = sys::px_format_t::default();
        // SAFETY: live handle; valid out-pointer. Fails only for NULL arguments.
        let rc = unsafe { sys::px_buffer_format(self.raw.as_ptr(), &mut f) };
        debug_assert_eq!(rc, sys::PX_OK);
        Format::from_c(&f)
    }

    /// Gives this buffer a format (clones made afterwards keep it). [`Status::Invalid`],
    /// changing nothing, unless every element lies inside the buffer; the message names the
    /// rule broken.
    ///
    /// ```
    /// use parallax::{Dtype, Format, Metadata, Pool};
    ///
    /// let pool = Pool::heap(1, 4 * 6)?;
    /// let mut slot = pool.loan()?;
    /// slot.as_mut_slice_of::<f32>()?.copy_from_slice(&[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    /// let mut frame = slot.into_buffer(4 * 6, &Metadata::with_sequence(1))?;
    /// frame.set_format(&Format::new(Dtype::F32, &[2, 3])?)?;
    /// assert_eq!(frame.format().unwrap().shape(), &[2, 3]);
    /// assert_eq!(frame.as_slice_of::<f32>()?[4], 2.0);
    /// # Ok::<(), parallax::Error>(())
    /// ```
    ///
    /// [`Status::Invalid`]: crate::Status::Invalid
    pub fn set_format(&mut self, format: &Format) -> Result<()> {
        let c = format.to_c();
        // SAFETY: live handle, borrowed mutably (the C API asks for no racing use); the format
        // is copied.
        check(unsafe { sys::px_buffer_set_format(self.raw.as_ptr(), &c) })
    }

    /// Makes this buffer untyped bytes again (clones keep their format).
    pub fn clear_format(&mut self) -> Result<()> {
        let untyped = sys::px_format_t::default(); // ndim 0
                                                   // SAFETY: as for set_format.
        check(unsafe { sys::px_buffer_set_format(self.raw.as_ptr(), &untyped) })
    }

    /// The bytes as `&[T]`, checked: a typed buffer gives its elements (the format's dtype
    /// must be one `T` views, see [`Element`], and the format contiguous); an untyped buffer
    /// gives the whole buffer, whose length must be a whole number of `T`. Either way the
    /// data must be aligned for `T` (slot `i` starts at `i * slot_size` in page-aligned
    /// memory, so a slot size that is a multiple of 8 suits every `T`). Each failure is
    /// [`Status::Invalid`] with a message naming the reason. A strided format (e.g. padded
    /// rows) has no slice view: read its rows with [`Format::strides`] from the bytes.
    ///
    /// [`Status::Invalid`]: crate::Status::Invalid
    pub fn as_slice_of<T: Element>(&self) -> Result<&[T]> {
        let bytes: &[u8] = self;
        let format = self.format();
        let n = typed_len::<T>(
            "Buffer::as_slice_of",
            format.as_ref(),
            bytes.as_ptr(),
            bytes.len(),
        )?;
        if n == 0 {
            return Ok(&[]);
        }
        // SAFETY: typed_len checked alignment and that n elements lie inside the bytes, which
        // are not written while the buffer lives; every bit pattern is a valid T (Element is
        // sealed to such types).
        Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), n) })
    }

    /// The C handle, still owned by `self`.
    pub fn as_raw(&self) -> *mut sys::px_buffer_t {
        self.raw.as_ptr()
    }

    /// Gives up ownership of the C handle (release it with `px_buffer_release`).
    pub fn into_raw(self) -> NonNull<sys::px_buffer_t> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }
}

impl Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: live handle; the range is mapped while the buffer lives and is not written
        // (the contract of every constructor).
        unsafe {
            let len = sys::px_buffer_len(self.raw.as_ptr());
            match NonNull::new(
                sys::px_buffer_ptr(self.raw.as_ptr())
                    .cast_mut()
                    .cast::<u8>(),
            ) {
                Some(p) => std::slice::from_raw_parts(p.as_ptr(), len),
                None => &[],
            }
        }
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Clone for Buffer {
    /// O(1): same memory, its own metadata. Panics only when out of memory, like any
    /// allocation; see [`Buffer::try_clone`].
    fn clone(&self) -> Buffer {
        match self.try_clone() {
            Ok(b) => b,
            Err(e) => panic!("Buffer::clone: {e}"),
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: we own this handle.
        unsafe { sys::px_buffer_release(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("offset", &self.offset())
            .field("len", &self.len())
            .field("readonly", &self.is_readonly())
            .field("metadata", &self.metadata())
            .field("format", &self.format())
            .finish()
    }
}
