// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What bindgen made of parallax.h: clean names, every documented function present and
//! linkable, constants with the right types, and a few real calls through the raw FFI.
use std::collections::BTreeSet;
use std::ffi::CStr;
use std::path::PathBuf;

use parallax_sys::*;

/// Every public function, named once: `stringify!` gives the list that is compared with the
/// generated text and API.md, and taking each address makes the link fail if libparallax does
/// not export it.
macro_rules! api_functions {
    ($($name:ident),* $(,)?) => {
        fn api_function_names() -> Vec<&'static str> { vec![$(stringify!($name)),*] }
        fn api_function_addresses() -> Vec<(&'static str, usize)> {
            vec![$((stringify!($name), std::hint::black_box($name as *const () as usize))),*]
        }
    };
}

api_functions!(
    px_last_error_message,
    px_status_string,
    px_version,
    px_version_string,
    px_segment_heap_new,
    px_segment_shm_new,
    px_segment_shm_from_fd,
    px_segment_hugepage_new,
    px_segment_file_create,
    px_segment_file_open,
    px_segment_file_open_readonly,
    px_segment_flush,
    px_segment_read,
    px_segment_ptr,
    px_segment_mut_ptr,
    px_segment_len,
    px_segment_is_readonly,
    px_segment_memory_type,
    px_segment_page_size,
    px_segment_ipc_handle,
    px_segment_retain,
    px_segment_release,
    px_metadata_init,
    px_pool_new,
    px_pool_capacity,
    px_pool_available,
    px_pool_slot_size,
    px_pool_segment,
    px_pool_loan,
    px_pool_loan_timeout,
    px_pool_retain,
    px_pool_release,
    px_slot_data,
    px_slot_len,
    px_slot_index,
    px_slot_release,
    px_slot_into_buffer,
    px_buffer_new,
    px_buffer_from_segment,
    px_buffer_clone,
    px_buffer_slice,
    px_buffer_release,
    px_buffer_ptr,
    px_buffer_mut_ptr,
    px_buffer_len,
    px_buffer_offset,
    px_buffer_segment,
    px_buffer_metadata,
    px_buffer_set_metadata,
    px_dtype_size,
    px_buffer_set_format,
    px_buffer_format,
    px_ipc_send_fd,
    px_ipc_recv_fd,
    px_channel_pair,
    px_channel_from_fd,
    px_listener_new,
    px_listener_accept,
    px_listener_fd,
    px_listener_release,
    px_channel_connect,
    px_channel_send,
    px_channel_send_timeout,
    px_channel_recv,
    px_channel_fd,
    px_channel_set_spin_ns,
    px_channel_release,
    px_channel_get_stats,
    px_publisher_options_init,
    px_publisher_new,
    px_publisher_publish,
    px_publisher_subscriber_count,
    px_publisher_fd,
    px_publisher_poll,
    px_publisher_set_description,
    px_publisher_skip,
    px_publisher_release,
    px_subscriber_new,
    px_subscriber_recv,
    px_subscriber_description,
    px_subscriber_description_version,
    px_subscriber_fd,
    px_subscriber_set_spin_ns,
    px_subscriber_release,
    px_publisher_get_stats,
    px_subscriber_get_stats,
    px_stream_stats,
    px_stream_list,
    px_stream_subscribers,
);

const FORBIDDEN: [&str; 4] = [
    "__bindgen_anon",
    "_bindgen_ty_",
    "__BindgenBitfieldUnit",
    "__IncompleteArrayField",
];

#[test]
fn generated_bindings_have_no_bindgen_artefacts() {
    let found: Vec<&str> = FORBIDDEN
        .iter()
        .copied()
        .filter(|bad| GENERATED_BINDINGS.contains(bad))
        .collect();
    assert!(
        found.is_empty(),
        "parallax.h produced bindgen artefacts {found:?}: see API.md, header hygiene"
    );
}

/// Names declared as functions in the generated text (`pub fn px_...(`).
fn generated_functions() -> BTreeSet<String> {
    GENERATED_BINDINGS
        .split("pub fn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn every_listed_function_is_generated_and_linked() {
    let generated = generated_functions();
    let missing: Vec<&str> = api_function_names()
        .into_iter()
        .filter(|n| !generated.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the generated bindings: {missing:?}"
    );
    // The list is the whole header: a function added to parallax.h must be added here (and to
    // the safe crate), so nothing is silently left unwrapped.
    let listed: BTreeSet<String> = api_function_names().iter().map(|s| s.to_string()).collect();
    let unlisted: Vec<&String> = generated.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "generated but not listed in this test: {unlisted:?}"
    );
    for (name, addr) in api_function_addresses() {
        assert_ne!(addr, 0, "{name} resolved to address 0");
    }
}

/// The `px_*` function names API.md documents: every `px_name(` in its text.
fn api_md_functions(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("px_") {
        let start = i + pos;
        let word_start =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start + 3;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if word_start && end < bytes.len() && bytes[end] == b'(' {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names
}

/// API.md: `PARALLAX_API_MD` if set (then it must exist), else `shared/API.md` beside the
/// repository, if there.
fn api_md_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PARALLAX_API_MD") {
        return Some(PathBuf::from(p));
    }
    let beside_repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/API.md");
    beside_repo.exists().then_some(beside_repo)
}

/// Functions of API.md that the header does not declare yet (tests/api_pending.txt: the first
/// word of each line that is not a comment).
fn pending_functions() -> BTreeSet<String> {
    include_str!("api_pending.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_function_in_api_md_is_generated() {
    let Some(path) = api_md_path() else {
        println!("API.md not found (set PARALLAX_API_MD): checked the list in this test only");
        return;
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read API.md at {}: {e}", path.display()));
    let documented = api_md_functions(&text);
    assert!(
        documented.len() >= 50,
        "parsed only {} names from {}",
        documented.len(),
        path.display()
    );
    let generated = generated_functions();
    let pending = pending_functions();
    let landed: Vec<&String> = pending.iter().filter(|n| generated.contains(*n)).collect();
    assert!(
        landed.is_empty(),
        "generated now, so delete their lines from tests/api_pending.txt: {landed:?}"
    );
    let missing: Vec<&String> = documented
        .iter()
        .filter(|n| !generated.contains(*n) && !pending.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "documented in {} but not generated: {missing:?}",
        path.display()
    );
    println!(
        "all {} functions of {} are in the bindings",
        documented.len(),
        path.display()
    );
}

#[test]
fn api_md_parser_finds_calls_only() {
    let names = api_md_functions("`px_a_b(int)` and `px_c_t` and *_retain, xpx_d(), px_e(void)");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["px_a_b", "px_e"]
    );
}

#[test]
fn constants_have_the_types_of_their_parameters() {
    let ok: px_status_t = PX_OK;
    let invalid: px_status_t = PX_E_INVALID;
    assert_eq!((ok, invalid, PX_E_INTERNAL), (0, -1, -11));
    let heap: px_memory_type_t = PX_MEMORY_HEAP;
    assert_eq!(heap, 0);
    assert_eq!(PX_TIME_NONE, i64::MIN);
    assert_eq!(
        PX_METADATA_USER_MAX as usize,
        std::mem::size_of::<[u8; 64]>()
    );
    assert_eq!(PX_HUGE_PAGE_2MB, 2 << 20);
    assert_eq!(PX_IPC_FD, 1);
    let spin: i64 = PX_CHANNEL_DEFAULT_SPIN_NS; // passed to px_channel_set_spin_ns(int64_t)
    assert!(spin > 0);
    let policies: [px_slow_policy_t; 3] = [PX_SLOW_DROP, PX_SLOW_BLOCK, PX_SLOW_DISCONNECT];
    assert_eq!(policies, [0, 1, 2]); // fixed by API.md
}

#[test]
fn raw_calls_through_the_ffi() {
    unsafe {
        assert_eq!(
            px_version(),
            PX_VERSION,
            "library and header versions differ"
        );
        let v = CStr::from_ptr(px_version_string()).to_str().unwrap();
        assert_eq!(
            v.as_bytes(),
            &PX_VERSION_STRING[..PX_VERSION_STRING.len() - 1]
        );
        assert_eq!(
            CStr::from_ptr(px_status_string(PX_E_TIMEOUT))
                .to_str()
                .unwrap(),
            "PX_E_TIMEOUT"
        );

        let mut seg: *mut px_segment_t = std::ptr::null_mut();
        assert_eq!(px_segment_heap_new(0, &mut seg), PX_E_INVALID);
        assert!(seg.is_null());
        let msg = CStr::from_ptr(px_last_error_message()).to_str().unwrap();
        assert!(msg.starts_with("px_segment_heap_new: size is 0"), "{msg}");

        assert_eq!(px_segment_shm_new(c"sys".as_ptr(), 4096, &mut seg), PX_OK);
        assert_eq!(px_segment_len(seg), 4096);
        assert_eq!(px_segment_memory_type(seg), PX_MEMORY_SHARED);
        let mut h = px_ipc_handle_t::default();
        assert_eq!(px_segment_ipc_handle(seg, &mut h), PX_OK);
        assert_eq!((h.kind, h.size), (PX_IPC_FD, 4096));

        let mut meta = px_metadata_t::default();
        px_metadata_init(&mut meta);
        assert_eq!(meta.pts_ns, PX_TIME_NONE);
        meta.sequence = 7;
        let mut buf: *mut px_buffer_t = std::ptr::null_mut();
        assert_eq!(px_buffer_new(seg, 4090, 16, &meta, &mut buf), PX_E_INVALID);
        assert_eq!(px_buffer_new(seg, 16, 32, &meta, &mut buf), PX_OK);
        px_segment_release(seg); // the buffer keeps it
        let mut got = px_metadata_t::default();
        assert_eq!(px_buffer_metadata(buf, &mut got), PX_OK);
        assert_eq!(got.sequence, 7);
        assert_eq!(px_buffer_len(buf), 32);
        px_buffer_release(buf);
    }
}
