// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Segments through the safe API: every constructor, the accessors, sharing by fd, bad input.
mod common;

use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use common::{assert_err, TempDir};
use parallax::{HugePageSize, MapFlags, MemoryType, Segment, Status};

fn memfd(size: usize, seal: bool) -> OwnedFd {
    let flags = libc::MFD_CLOEXEC | if seal { libc::MFD_ALLOW_SEALING } else { 0 };
    // SAFETY: plain syscalls on a fresh fd that we then own.
    unsafe {
        let fd = libc::memfd_create(c"px-rust-test".as_ptr(), flags);
        assert!(fd >= 0, "memfd_create failed");
        assert_eq!(libc::ftruncate(fd, size as libc::off_t), 0);
        if seal {
            assert_eq!(
                libc::fcntl(
                    fd,
                    libc::F_ADD_SEALS,
                    libc::F_SEAL_SHRINK | libc::F_SEAL_GROW
                ),
                0
            );
        }
        OwnedFd::from_raw_fd(fd)
    }
}

#[test]
fn heap_segment_is_private_zeroed_and_writable() {
    let seg = Segment::heap(4096).unwrap();
    assert_eq!(seg.len(), 4096);
    assert!(!seg.is_empty());
    assert_eq!(seg.memory_type(), MemoryType::Heap);
    assert!(!seg.is_readonly());
    assert_eq!(
        seg.as_mut_ptr().unwrap().as_ptr().cast_const(),
        seg.as_ptr()
    );
    // SAFETY: nothing else uses this segment.
    unsafe {
        assert!(seg.as_slice().iter().all(|&b| b == 0));
        seg.as_mut_slice().unwrap()[..3].copy_from_slice(b"abc");
        assert_eq!(&seg.as_slice()[..3], b"abc");
    }
    assert_err(seg.ipc_handle(), Status::Unsupported, "heap");
}

#[test]
fn clones_share_the_mapping_and_keep_it_alive() {
    let seg = Segment::shm(Some("clone"), 8192).unwrap();
    let other = seg.clone();
    let ptr = seg.as_ptr();
    drop(seg);
    assert_eq!(other.as_ptr(), ptr);
    // SAFETY: nothing else uses this segment.
    unsafe { other.as_mut_slice().unwrap()[8191] = 9 };
    assert_eq!(unsafe { other.as_slice()[8191] }, 9);
    assert!(format!("{other:?}").contains("Shared"));
}

#[test]
fn shared_segment_maps_again_from_its_fd() {
    let seg = Segment::shm(None, 1 << 20).unwrap();
    assert_eq!(seg.memory_type(), MemoryType::Shared);
    assert_eq!(seg.page_size(), 4096);
    // SAFETY: no other user yet.
    unsafe { seg.as_mut_slice().unwrap()[..5].copy_from_slice(b"hello") };
    let handle = seg.ipc_handle().unwrap();
    assert_eq!(handle.size, 1 << 20);

    let ro = Segment::from_fd(handle.fd, 1 << 20, MapFlags::READONLY).unwrap();
    assert!(ro.is_readonly());
    assert!(ro.as_mut_ptr().is_none());
    // SAFETY: read-only view, nothing writes during the read.
    unsafe {
        assert!(ro.as_mut_slice().is_none());
        assert_eq!(&ro.as_slice()[..5], b"hello");
    }

    // Read-write over the first page: writes show through the original mapping.
    let rw = Segment::from_fd(handle.fd, 4096, MapFlags::NONE).unwrap();
    assert_eq!(rw.len(), 4096);
    // SAFETY: single-threaded, no slices held across the writes.
    unsafe {
        rw.as_mut_slice().unwrap()[0] = b'J';
        assert_eq!(seg.as_slice()[0], b'J');
    }
    // The segment holds its own dup of the fd: it outlives the original segment.
    let dup = handle.fd.try_clone_to_owned().unwrap();
    drop(seg);
    assert_eq!(unsafe { ro.as_slice()[1] }, b'e');
    let again = Segment::from_fd(dup.as_fd(), 4096, MapFlags::READONLY).unwrap();
    assert_eq!(unsafe { again.as_slice()[0] }, b'J');
}

#[test]
fn from_fd_refuses_what_it_cannot_trust() {
    let (r, _w) = std::io::pipe().unwrap();
    assert_err(
        Segment::from_fd(r.as_fd(), 16, MapFlags::NONE),
        Status::Invalid,
        "pipe",
    );

    let unsealed = memfd(4096, false);
    assert_err(
        Segment::from_fd(unsealed.as_fd(), 4096, MapFlags::NONE),
        Status::Permission,
        "F_SEAL_SHRINK",
    );
    assert_err(
        Segment::from_fd(unsealed.as_fd(), 8192, MapFlags::ALLOW_UNSEALED),
        Status::Invalid,
        "fewer than the 8192 claimed",
    );
    let ok = Segment::from_fd(
        unsealed.as_fd(),
        4096,
        MapFlags::ALLOW_UNSEALED | MapFlags::READONLY,
    )
    .unwrap();
    assert!(ok.is_readonly());
    assert_err(
        Segment::from_fd(unsealed.as_fd(), 4096, MapFlags::from_bits(0x80)),
        Status::Invalid,
        "",
    );

    let sealed = memfd(4096, true);
    assert_err(
        Segment::from_fd(sealed.as_fd(), 0, MapFlags::NONE),
        Status::Invalid,
        "",
    );
    assert_err(
        Segment::from_fd(sealed.as_fd(), usize::MAX, MapFlags::NONE),
        Status::Invalid,
        "",
    );
    assert_eq!(
        Segment::from_fd(sealed.as_fd(), 4096, MapFlags::NONE)
            .unwrap()
            .len(),
        4096
    );
}

#[test]
fn bad_sizes_and_labels_are_errors_with_messages() {
    let e = assert_err(Segment::heap(0), Status::Invalid, "size is 0");
    assert!(
        e.message().starts_with("px_segment_heap_new"),
        "{}",
        e.message()
    );
    assert!(e.to_string().ends_with("(PX_E_INVALID)"));
    assert_err(Segment::heap(usize::MAX), Status::Invalid, "overflows");
    assert_err(Segment::shm(None, 0), Status::Invalid, "");
    assert_err(Segment::shm(None, usize::MAX), Status::Invalid, "");
    assert_err(Segment::shm(Some("bad\0label"), 16), Status::Invalid, "NUL");
}

#[test]
fn huge_pages_fall_back_or_explain() {
    // With the fallback flag it always works, and says honestly what it got.
    let seg = Segment::hugepage(HugePageSize::Size2MiB, 1000, true).unwrap();
    match seg.memory_type() {
        MemoryType::HugePages => {
            assert_eq!(seg.page_size(), HugePageSize::Size2MiB.bytes());
            assert_eq!(seg.len(), 2 << 20, "rounded up to whole pages");
        }
        MemoryType::Shared => assert_eq!(seg.page_size(), 4096),
        other => panic!("unexpected memory type {other:?}"),
    }
    seg.ipc_handle().unwrap();
    drop(seg);
    // Without it, either real huge pages or an error that says how to reserve them.
    match Segment::hugepage(HugePageSize::Size2MiB, 1, false) {
        Ok(s) => assert_eq!(s.memory_type(), MemoryType::HugePages),
        Err(e) => {
            assert_eq!(e.status(), Status::Unsupported);
            assert!(e.message().contains("nr_hugepages"), "{}", e.message());
        }
    }
    match Segment::hugepage(HugePageSize::Size1GiB, 1, false) {
        Ok(s) => assert_eq!(s.page_size(), 1 << 30),
        Err(e) => assert_eq!(e.status(), Status::Unsupported, "{}", e.message()),
    }
    assert_err(
        Segment::hugepage(HugePageSize::Size2MiB, 0, true),
        Status::Invalid,
        "",
    );
    assert_eq!(HugePageSize::Size1GiB.bytes(), 1 << 30);
}

#[test]
fn mapped_files_create_open_flush_and_refuse() {
    let dir = TempDir::new("files");
    let path = dir.file("data.bin");
    let seg = Segment::file_create(&path, 12345).unwrap();
    assert_eq!(seg.memory_type(), MemoryType::MappedFile);
    assert_eq!(seg.len(), 12345);
    // SAFETY: the only user of this mapping.
    unsafe { seg.as_mut_slice().unwrap()[..5].copy_from_slice(b"saved") };
    seg.flush().unwrap();
    drop(seg);
    assert_eq!(&std::fs::read(&path).unwrap()[..5], b"saved");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    assert_err(
        Segment::file_create(&path, 1),
        Status::Invalid,
        "already exists",
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        12345,
        "never truncated"
    );

    let rw = Segment::file_open(&path).unwrap();
    assert!(!rw.is_readonly());
    let ro = Segment::file_open_readonly(&path).unwrap();
    assert!(ro.is_readonly());
    assert!(ro.as_mut_ptr().is_none());
    assert_eq!(unsafe { &ro.as_slice()[..5] }, b"saved");
    ro.flush().unwrap();
    assert_eq!(
        ro.ipc_handle().unwrap().size,
        12345,
        "a file has an fd too (channels refuse it)"
    );

    File::create(dir.file("empty")).unwrap();
    assert_err(
        Segment::file_open(dir.file("empty")),
        Status::Invalid,
        "is empty",
    );
    assert_err(
        Segment::file_open(dir.file("missing")),
        Status::Io,
        "No such file",
    );
    assert_err(
        Segment::file_open_readonly(dir.file("missing")),
        Status::Io,
        "",
    );
    assert_err(Segment::file_open(dir.path()), Status::Invalid, "directory");
    assert_err(
        Segment::file_create(dir.file("zero"), 0),
        Status::Invalid,
        "",
    );
    assert_err(
        Segment::file_create(dir.file("a\0b"), 16),
        Status::Invalid,
        "NUL",
    );
    assert_err(Segment::file_open("/nonexistent/dir/x"), Status::Io, "");
}

#[test]
fn read_copies_and_reports_truncated_files_instead_of_sigbus() {
    let seg = Segment::shm(None, 4096).unwrap();
    // SAFETY: single-threaded; nothing else writes the segment.
    unsafe { seg.as_mut_slice().unwrap()[10..14].copy_from_slice(b"read") };
    let mut dst = [0u8; 4];
    // SAFETY (all reads below): nothing in this process writes these segments meanwhile.
    unsafe { seg.read(10, &mut dst) }.unwrap();
    assert_eq!(&dst, b"read");
    unsafe { seg.read(4096, &mut []) }.unwrap();
    assert_err(unsafe { seg.read(4094, &mut dst) }, Status::Invalid, "");
    assert_err(
        unsafe { seg.read(usize::MAX, &mut dst) },
        Status::Invalid,
        "",
    );

    let dir = TempDir::new("truncate");
    let path = dir.file("shrinks");
    std::fs::write(&path, vec![7u8; 3 * 4096]).unwrap();
    let file = Segment::file_open_readonly(&path).unwrap();
    let mut page = vec![0u8; 4096];
    unsafe { file.read(2 * 4096, &mut page) }.unwrap();
    assert!(page.iter().all(|&b| b == 7));
    // Another party truncates the file under the mapping: reading the lost page is an error.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    assert_err(unsafe { file.read(2 * 4096, &mut page) }, Status::Io, "");
    unsafe { file.read(0, &mut page) }.unwrap();
}
