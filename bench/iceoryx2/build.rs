// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Puts libparallax's directory on the binary's rpath when parallax-sys links it dynamically
//! (PARALLAX_BUILD_DIR, PARALLAX_LIB_DIR or pkg-config), so the benchmark runs without
//! LD_LIBRARY_PATH. The bundled (static) build needs nothing. The location arrives as
//! DEP_PARALLAX_LIB_DIR because this crate depends on parallax-sys directly.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_PARALLAX_LIB_DIR");
    println!("cargo:rerun-if-env-changed=DEP_PARALLAX_LINKAGE");
    let dynamic = std::env::var("DEP_PARALLAX_LINKAGE").as_deref() == Ok("dynamic");
    if let (true, Ok(dir)) = (dynamic, std::env::var("DEP_PARALLAX_LIB_DIR")) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
