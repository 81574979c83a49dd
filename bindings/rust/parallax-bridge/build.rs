// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Puts libparallax's directory on the bridge's rpath, so it runs without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_PARALLAX_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_PARALLAX_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
