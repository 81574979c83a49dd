// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Segments: one contiguous mapped region of memory (heap, shared memory, huge pages, file).
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

use parallax_sys as sys;

use crate::error::{c_string, check, Error, Result, Status};

/// Where a segment's memory comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemoryType {
    /// Private anonymous memory; not shareable.
    Heap,
    /// memfd shared memory (also huge pages that fell back to normal pages).
    Shared,
    /// memfd with `MFD_HUGETLB`.
    HugePages,
    /// A mapped file.
    MappedFile,
    /// A type this crate does not know (a newer library).
    Unknown(u32),
}

impl MemoryType {
    fn from_c(t: sys::px_memory_type_t) -> MemoryType {
        match t {
            sys::PX_MEMORY_HEAP => MemoryType::Heap,
            sys::PX_MEMORY_SHARED => MemoryType::Shared,
            sys::PX_MEMORY_HUGE_PAGES => MemoryType::HugePages,
            sys::PX_MEMORY_MAPPED_FILE => MemoryType::MappedFile,
            other => MemoryType::Unknown(other),
        }
    }
}

/// Huge page size for [`Segment::hugepage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HugePageSize {
    /// 2 MiB pages.
    Size2MiB,
    /// 1 GiB pages.
    Size1GiB,
}

impl HugePageSize {
    /// The page size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            HugePageSize::Size2MiB => sys::PX_HUGE_PAGE_2MB as usize,
            HugePageSize::Size1GiB => sys::PX_HUGE_PAGE_1GB as usize,
        }
    }
}

/// Flags of [`Segment::from_fd`]; combine with `|`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MapFlags(u32);

impl MapFlags {
    /// Map read-write; refuse fds without shrink seals.
    pub const NONE: MapFlags = MapFlags(0);
    /// Map read-only (required for fds received from a channel).
    pub const READONLY: MapFlags = MapFlags(sys::PX_MAP_READONLY);
    /// Accept an fd without shrink seals (e.g. a regular file).
    pub const ALLOW_UNSEALED: MapFlags = MapFlags(sys::PX_MAP_ALLOW_UNSEALED);

    /// The C flag bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Flags from C bits, unchecked: the library refuses bits it does not know.
    pub fn from_bits(bits: u32) -> MapFlags {
        MapFlags(bits)
    }
}

impl std::ops::BitOr for MapFlags {
    type Output = MapFlags;
    fn bitor(self, rhs: MapFlags) -> MapFlags {
        MapFlags(self.0 | rhs.0)
    }
}

/// The fd and size to share a segment with another process. The fd belongs to the segment
/// (hence the lifetime): duplicate it (`try_clone_to_owned`) to keep it longer.
#[derive(Clone, Copy, Debug)]
pub struct IpcHandle<'a> {
    /// The segment's memfd.
    pub fd: BorrowedFd<'a>,
    /// Its size in bytes.
    pub size: u64,
}

/// A refcounted handle on a mapped region (`px_segment_t`). `Clone` adds a reference; the
/// memory stays mapped while any segment handle, pool, slot or buffer uses it.
///
/// Memory is reached through raw pointers or `unsafe` accessors: a segment's bytes may be
/// written at the same time through slots of a pool over it, through C, or by another process,
/// so no safe `&[u8]` of the whole segment can be handed out. Safe writing goes through
/// [`Pool`](crate::Pool) slots; safe reading through [`Buffer`](crate::Buffer)s.
///
/// Mapped files cannot be sealed: if another process truncates the file, touching pages past
/// its new end raises SIGBUS. Read such files with [`Segment::read`], which reports truncation
/// as an error.
pub struct Segment {
    raw: NonNull<sys::px_segment_t>,
}

// SAFETY: the C API may be called from any thread on any handle; a segment handle only hands
// out raw pointers (and `unsafe` slices whose contract covers concurrent access).
unsafe impl Send for Segment {}
// SAFETY: as above: every `&self` method is a thread-safe C call or returns a raw pointer.
unsafe impl Sync for Segment {}

/// Calls a C constructor with an out-parameter and wraps its result.
pub(crate) fn make<T>(ctor: impl FnOnce(*mut *mut T) -> sys::px_status_t) -> Result<NonNull<T>> {
    let mut out: *mut T = std::ptr::null_mut();
    check(ctor(&mut out))?;
    NonNull::new(out).ok_or_else(|| {
        Error::new(
            Status::Internal,
            "libparallax reported success without a handle",
        )
    })
}

fn c_path(path: &Path) -> Result<std::ffi::CString> {
    c_string("path", path.as_os_str().as_bytes())
}

impl Segment {
    /// Private, zero-filled memory of `size` bytes (> 0). Not shareable.
    pub fn heap(size: usize) -> Result<Segment> {
        // SAFETY: valid out-pointer.
        make(|out| unsafe { sys::px_segment_heap_new(size, out) }).map(|raw| Segment { raw })
    }

    /// Shared memory (memfd, sealed against resizing) of `size` bytes, zero-filled. `name` is
    /// only a debugging label.
    pub fn shm(name: Option<&str>, size: usize) -> Result<Segment> {
        let name = name.map(|n| c_string("name", n.as_bytes())).transpose()?;
        let name_ptr = name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr());
        // SAFETY: name_ptr is NULL or a live C string; valid out-pointer.
        make(|out| unsafe { sys::px_segment_shm_new(name_ptr, size, out) })
            .map(|raw| Segment { raw })
    }

    /// Maps `size` bytes of a shared-memory fd received from another process. The caller
    /// keeps `fd` (the segment holds a duplicate). Refuses fds that are not memfd/regular
    /// files, are smaller than `size`, or lack shrink seals (unless
    /// [`MapFlags::ALLOW_UNSEALED`]).
    pub fn from_fd(fd: BorrowedFd<'_>, size: usize, flags: MapFlags) -> Result<Segment> {
        // SAFETY: fd is open for the call; valid out-pointer.
        make(|out| unsafe { sys::px_segment_shm_from_fd(fd.as_raw_fd(), size, flags.bits(), out) })
            .map(|raw| Segment { raw })
    }

    /// Huge-page shared memory, `size` rounded up to whole pages, pre-faulted. Without
    /// reserved pages this is [`Status::Unsupported`](crate::Status::Unsupported) (the message
    /// says how to reserve them), unless `fallback`: then it uses normal shared pages and
    /// reports [`MemoryType::Shared`] with a 4096-byte page size.
    pub fn hugepage(page_size: HugePageSize, size: usize, fallback: bool) -> Result<Segment> {
        let flags = if fallback {
            sys::PX_HUGEPAGE_FALLBACK
        } else {
            0
        };
        // SAFETY: valid out-pointer.
        make(|out| unsafe {
            sys::px_segment_hugepage_new(page_size.bytes() as u32, size, flags, out)
        })
        .map(|raw| Segment { raw })
    }

    /// Creates a new file of `size` bytes (mode 0600) and maps it read-write. An existing
    /// path is an error: it never truncates.
    pub fn file_create(path: impl AsRef<Path>, size: usize) -> Result<Segment> {
        let path = c_path(path.as_ref())?;
        // SAFETY: live C string; valid out-pointer.
        make(|out| unsafe { sys::px_segment_file_create(path.as_ptr(), size, out) })
            .map(|raw| Segment { raw })
    }

    /// Maps an existing non-empty file read-write.
    pub fn file_open(path: impl AsRef<Path>) -> Result<Segment> {
        let path = c_path(path.as_ref())?;
        // SAFETY: live C string; valid out-pointer.
        make(|out| unsafe { sys::px_segment_file_open(path.as_ptr(), out) })
            .map(|raw| Segment { raw })
    }

    /// Maps an existing non-empty file read-only.
    pub fn file_open_readonly(path: impl AsRef<Path>) -> Result<Segment> {
        let path = c_path(path.as_ref())?;
        // SAFETY: live C string; valid out-pointer.
        make(|out| unsafe { sys::px_segment_file_open_readonly(path.as_ptr(), out) })
            .map(|raw| Segment { raw })
    }

    /// Writes a mapped file's pages to disk (msync); does nothing for other types.
    pub fn flush(&self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::px_segment_flush(self.raw.as_ptr()) })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::px_segment_len(self.raw.as_ptr()) }
    }

    /// Whether the segment has no bytes (never true for a segment the library made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the mapping is read-only.
    pub fn is_readonly(&self) -> bool {
        // SAFETY: live handle.
        unsafe { sys::px_segment_is_readonly(self.raw.as_ptr()) != 0 }
    }

    /// Where the memory comes from.
    pub fn memory_type(&self) -> MemoryType {
        // SAFETY: live handle.
        MemoryType::from_c(unsafe { sys::px_segment_memory_type(self.raw.as_ptr()) })
    }

    /// The page size actually in use (4096 after a huge-page fallback).
    pub fn page_size(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::px_segment_page_size(self.raw.as_ptr()) }
    }

    /// The fd and size to share this segment; [`Status::Unsupported`](crate::Status) for heap
    /// segments.
    pub fn ipc_handle(&self) -> Result<IpcHandle<'_>> {
        let mut h = sys::px_ipc_handle_t::default();
        // SAFETY: live handle, valid out-pointer.
        check(unsafe { sys::px_segment_ipc_handle(self.raw.as_ptr(), &mut h) })?;
        // SAFETY: the library owns this open fd for as long as the segment lives.
        let fd = unsafe { BorrowedFd::borrow_raw(h.fd) };
        Ok(IpcHandle { fd, size: h.size })
    }

    /// Copies `[offset, offset + dst.len())` of the segment into `dst`. For memory that may
    /// shrink under this process (a mapped file, an fd mapped with
    /// [`MapFlags::ALLOW_UNSEALED`]) it reads through the file, so a file that another process
    /// truncated gives [`Status::Io`](crate::Status) instead of a SIGBUS. A range beyond the
    /// segment is [`Status::Invalid`](crate::Status).
    ///
    /// # Safety
    /// Nothing in this process may write the range during the call (a slot of a pool over the
    /// segment, [`as_mut_slice`](Self::as_mut_slice), C code): that would be a data race.
    pub unsafe fn read(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        check(sys::px_segment_read(
            self.raw.as_ptr(),
            offset,
            dst.as_mut_ptr().cast(),
            dst.len(),
        ))
    }

    /// First byte of the mapping.
    pub fn as_ptr(&self) -> *const u8 {
        // SAFETY: live handle.
        unsafe { sys::px_segment_ptr(self.raw.as_ptr()) }.cast()
    }

    /// First byte of the mapping, or `None` when it is read-only.
    pub fn as_mut_ptr(&self) -> Option<NonNull<u8>> {
        // SAFETY: live handle.
        NonNull::new(unsafe { sys::px_segment_mut_ptr(self.raw.as_ptr()) }.cast())
    }

    /// The whole segment as a slice.
    ///
    /// # Safety
    /// Nothing may write the segment while the slice lives: no slot of a pool over it, no
    /// other handle through [`as_mut_slice`](Self::as_mut_slice) or C, no other process.
    pub unsafe fn as_slice(&self) -> &[u8] {
        std::slice::from_raw_parts(self.as_ptr(), self.len())
    }

    /// The whole segment as a mutable slice, or `None` when it is read-only.
    ///
    /// # Safety
    /// Nothing else may read or write the segment while the slice lives: no buffer or slot
    /// over it, no other slice from this method or [`as_slice`](Self::as_slice), no other
    /// process.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> Option<&mut [u8]> {
        let len = self.len();
        self.as_mut_ptr()
            .map(|p| std::slice::from_raw_parts_mut(p.as_ptr(), len))
    }

    /// The C handle, still owned by `self`.
    pub fn as_raw(&self) -> *mut sys::px_segment_t {
        self.raw.as_ptr()
    }

    /// A new handle on a segment borrowed from C (adds a reference); `None` for NULL.
    ///
    /// # Safety
    /// `raw` must be NULL or a live `px_segment_t`.
    pub unsafe fn from_borrowed_raw(raw: *mut sys::px_segment_t) -> Option<Segment> {
        NonNull::new(sys::px_segment_retain(raw)).map(|raw| Segment { raw })
    }
}

impl Clone for Segment {
    fn clone(&self) -> Segment {
        // SAFETY: live handle; retain returns the same handle.
        unsafe { sys::px_segment_retain(self.raw.as_ptr()) };
        Segment { raw: self.raw }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { sys::px_segment_release(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("memory_type", &self.memory_type())
            .field("len", &self.len())
            .field("page_size", &self.page_size())
            .field("readonly", &self.is_readonly())
            .finish()
    }
}
