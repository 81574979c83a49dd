// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Puts libparallax's directory on the rpath of this crate's tests and examples, so that they
//! run without LD_LIBRARY_PATH. parallax-sys found the library; `cargo:rustc-link-arg` does not
//! cross crates, so its location arrives here as DEP_PARALLAX_LIB_DIR (`links = "parallax"`).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_PARALLAX_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_PARALLAX_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
