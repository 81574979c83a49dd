// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Pools of fixed-size slots over a segment, and the slots they lend.
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::Duration;

use parallax_sys as sys;

use crate::buffer::Buffer;
use crate::error::Result;
use crate::error::{Error, Status};
use crate::format::{typed_len, Element};
use crate::metadata::Metadata;
use crate::segment::{make, HugePageSize, Segment};
use crate::timeout_ns;

fn bytes_for(slots: usize, slot_size: usize) -> Result<usize> {
    slots.checked_mul(slot_size).ok_or_else(|| {
        Error::new(
            Status::Invalid,
            format!("{slots} slots of {slot_size} bytes overflow usize"),
        )
    })
}

/// Fixed-size slots over a segment (`px_pool_t`): slot `i` is at `i * slot_size`. `Clone`
/// adds a reference; the pool lives while any handle, slot or buffer of it is out.
pub struct Pool {
    raw: NonNull<sys::px_pool_t>,
}

// SAFETY: pool calls are thread-safe (loans are lock-free); the handle is only a reference.
unsafe impl Send for Pool {}
// SAFETY: every `&self` method is a thread-safe C call.
unsafe impl Sync for Pool {}

impl Pool {
    /// A pool of `slots` slots of `slot_size` bytes in fresh private memory.
    pub fn heap(slots: usize, slot_size: usize) -> Result<Pool> {
        Pool::over_fresh(Segment::heap(bytes_for(slots, slot_size)?)?, slot_size)
    }

    /// A pool of `slots` slots of `slot_size` bytes in fresh shared memory (memfd), whose
    /// buffers can be sent over a [`Channel`](crate::Channel). `name` is a debugging label.
    pub fn shm(name: Option<&str>, slots: usize, slot_size: usize) -> Result<Pool> {
        Pool::over_fresh(Segment::shm(name, bytes_for(slots, slot_size)?)?, slot_size)
    }

    /// A pool in fresh huge-page memory (the size rounded up to whole pages, so there may be
    /// more than `slots` slots); see [`Segment::hugepage`] for `fallback`.
    pub fn hugepage(
        page_size: HugePageSize,
        slots: usize,
        slot_size: usize,
        fallback: bool,
    ) -> Result<Pool> {
        Pool::over_fresh(
            Segment::hugepage(page_size, bytes_for(slots, slot_size)?, fallback)?,
            slot_size,
        )
    }

    fn over_fresh(segment: Segment, slot_size: usize) -> Result<Pool> {
        // SAFETY: the segment was just made and no other handle to it exists: only this pool
        // will hand out its memory. Its memory cannot shrink (heap or sealed memfd).
        unsafe { Pool::new(&segment, slot_size) }
    }

    /// Slots of `slot_size` bytes (0 < `slot_size` <= segment length) over an existing
    /// `segment`, which the pool keeps alive. Read-only segments are refused.
    ///
    /// # Safety
    /// A [`Slot`] hands out `&mut [u8]` of its memory, so nothing else may use the part of the
    /// segment the slots cover while the pool lives: no other pool over the same segment (each
    /// pool lends every slot once, independently), no [`Buffer::new`] over it, no slices from
    /// [`Segment::as_slice`]/[`as_mut_slice`](Segment::as_mut_slice) or [`Segment::read`], no
    /// other process writing it. Its memory must also not shrink while mapped: a mapped file
    /// (or an fd mapped with [`MapFlags::ALLOW_UNSEALED`](crate::MapFlags)) that another
    /// process truncates makes touching the lost pages raise SIGBUS. [`Pool::heap`],
    /// [`Pool::shm`] and [`Pool::hugepage`] meet all this by construction.
    pub unsafe fn new(segment: &Segment, slot_size: usize) -> Result<Pool> {
        make(|out| sys::px_pool_new(segment.as_raw(), slot_size, out)).map(|raw| Pool { raw })
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::px_pool_capacity(self.raw.as_ptr()) }
    }

    /// Slots free right now (also takes back slots that peers returned or died holding).
    pub fn available(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::px_pool_available(self.raw.as_ptr()) }
    }

    /// Size of each slot in bytes.
    pub fn slot_size(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::px_pool_slot_size(self.raw.as_ptr()) }
    }

    /// The segment the slots live in (its bytes are reached only through `unsafe` methods, or
    /// through this pool's slots).
    pub fn segment(&self) -> Segment {
        // SAFETY: live handle; a pool always has its segment, and from_borrowed_raw retains it.
        unsafe { Segment::from_borrowed_raw(sys::px_pool_segment(self.raw.as_ptr())) }
            .expect("a pool always has a segment")
    }

    /// Loans a free slot without waiting; [`Status::WouldBlock`](crate::Status) when every
    /// slot is out.
    pub fn loan(&self) -> Result<Slot> {
        // SAFETY: live handle; valid out-pointer.
        make(|out| unsafe { sys::px_pool_loan(self.raw.as_ptr(), out) }).map(Slot::new)
    }

    /// Loans a slot, waiting (asleep) until one comes back from any thread or process: `None`
    /// waits forever, `Some(ZERO)` polls, else [`Status::Timeout`](crate::Status) after that
    /// long.
    pub fn loan_timeout(&self, timeout: Option<Duration>) -> Result<Slot> {
        let ns = timeout_ns(timeout);
        // SAFETY: live handle; valid out-pointer.
        make(|out| unsafe { sys::px_pool_loan_timeout(self.raw.as_ptr(), ns, out) }).map(Slot::new)
    }

    /// The C handle, still owned by `self`.
    pub fn as_raw(&self) -> *mut sys::px_pool_t {
        self.raw.as_ptr()
    }
}

impl Clone for Pool {
    fn clone(&self) -> Pool {
        // SAFETY: live handle; retain returns the same handle.
        unsafe { sys::px_pool_retain(self.raw.as_ptr()) };
        Pool { raw: self.raw }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { sys::px_pool_release(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .field("slot_size", &self.slot_size())
            .finish()
    }
}

/// A slot on loan from a [`Pool`]: writable memory that only its owner can touch. Dropping it
/// gives it back; [`into_buffer`](Slot::into_buffer) turns it into a [`Buffer`] that can be
/// cloned and sent, and the slot goes back when the last such buffer is gone.
pub struct Slot {
    raw: NonNull<sys::px_slot_t>,
    data: NonNull<u8>,
    len: usize,
}

// SAFETY: a slot is loaned to one owner; moving it to another thread moves the only writer.
unsafe impl Send for Slot {}
// SAFETY: writing needs `&mut Slot`; through `&Slot` there are only reads, which may overlap.
unsafe impl Sync for Slot {}

impl Slot {
    fn new(raw: NonNull<sys::px_slot_t>) -> Slot {
        // SAFETY: live slot handle.
        let (data, len) = unsafe {
            (
                sys::px_slot_data(raw.as_ptr()),
                sys::px_slot_len(raw.as_ptr()),
            )
        };
        // Pools refuse read-only segments, so data is never NULL; if it were, expose nothing.
        match NonNull::new(data.cast::<u8>()) {
            Some(data) => Slot { raw, data, len },
            None => Slot {
                raw,
                data: NonNull::dangling(),
                len: 0,
            },
        }
    }

    /// Index of the slot in its pool.
    pub fn index(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::px_slot_index(self.raw.as_ptr()) }
    }

    /// Turns the slot into a buffer of its first `len` bytes (1 <= `len` <= slot size) with
    /// `meta`. The slot is consumed whatever the result: on error it goes back to the pool.
    pub fn into_buffer(self, len: usize, meta: &Metadata) -> Result<Buffer> {
        let raw = self.raw.as_ptr();
        std::mem::forget(self); // px_slot_into_buffer consumes it, also on failure
        let meta = meta.to_c();
        // SAFETY: we own the slot and give it up here; valid metadata and out-pointer.
        make(|out| unsafe { sys::px_slot_into_buffer(raw, len, &meta, out) })
            // SAFETY: a fresh buffer handle that we own.
            .map(|b| unsafe { Buffer::from_raw(b) })
    }

    /// The whole slot as `&mut [T]` to write a typed frame in place, checked: the slot size
    /// must be a whole number of `T` and its start aligned for `T` (slot `i` starts at
    /// `i * slot_size` in page-aligned memory, so a slot size that is a multiple of 8 suits
    /// every `T`); otherwise [`Status::Invalid`] naming the reason. Give the buffer made from the
    /// slot its [`Format`](crate::Format) with [`Buffer::set_format`].
    pub fn as_mut_slice_of<T: Element>(&mut self) -> Result<&mut [T]> {
        let n = typed_len::<T>("Slot::as_mut_slice_of", None, self.data.as_ptr(), self.len)?;
        if n == 0 {
            return Ok(&mut []);
        }
        // SAFETY: typed_len checked alignment and size; the slot's bytes are lent to this
        // owner alone and `&mut self` makes this the only access; every bit pattern is a
        // valid T.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr().cast::<T>(), n) })
    }

    /// The C handle, still owned by `self`.
    pub fn as_raw(&self) -> *mut sys::px_slot_t {
        self.raw.as_ptr()
    }
}

impl Deref for Slot {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the slot's bytes are lent to this owner alone while it lives.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl DerefMut for Slot {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // SAFETY: we own the loan and give it back once.
        unsafe { sys::px_slot_release(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("index", &self.index())
            .field("len", &self.len)
            .finish()
    }
}
