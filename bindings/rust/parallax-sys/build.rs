// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Generates the FFI bindings from `parallax.h` with bindgen and links `libparallax`.
//!
//! Where the library is found, in this order:
//! 1. `PARALLAX_BUILD_DIR`: a CMake build directory of libparallax (holds `libparallax.so` and
//!    the generated `include/parallax/version.h`; `parallax.h` comes from the source tree the
//!    build was configured from, read from its `CMakeCache.txt`).
//! 2. `PARALLAX_LIB_DIR` + `PARALLAX_INCLUDE_DIR`: an installed library and its headers.
//! 3. `pkg-config parallax`.
//! 4. With the `bundled` feature (the default): built here, with CMake, from the sources this
//!    crate ships in `libparallax/`, and linked statically.
//!
//! The first three link `libparallax.so` dynamically. Its directory is passed to dependents as
//! `DEP_PARALLAX_LIB_DIR` (see `links`), so that their build scripts can set the same rpath:
//! `cargo:rustc-link-arg` only reaches the targets of the package that prints it.
//!
//! The bundled library is linked statically because of that same limit: a program two crates
//! away (it depends on `parallax`, not on this crate) gets no rpath from us and sees no
//! `DEP_PARALLAX_*`, so a shared library built into `OUT_DIR` would not be found when it runs.
//! A static archive is copied into the program, which then runs from anywhere with no
//! environment. `DEP_PARALLAX_LIB_DIR` is still set (the CMake build directory, which holds
//! `libparallax.so` too) and `DEP_PARALLAX_LINKAGE` says `static` or `dynamic`.
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use bindgen::callbacks::{IntKind, ParseCallbacks};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Linkage {
    /// `libparallax.so`, found at run time through the rpath (our own targets) or the loader.
    Dynamic,
    /// `libparallax_static.a` from the bundled build, plus the C++ runtime it needs.
    Static,
}

struct Location {
    lib_dir: PathBuf,
    linkage: Linkage,
    /// Directories to put on the include path, in order.
    include_dirs: Vec<PathBuf>,
    /// The `parallax.h` to generate from.
    header: PathBuf,
    how: String,
}

fn main() {
    for var in [
        "PARALLAX_BUILD_DIR",
        "PARALLAX_LIB_DIR",
        "PARALLAX_INCLUDE_DIR",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let loc = locate().unwrap_or_else(|why| panic!("{why}"));
    println!("cargo:rerun-if-changed={}", loc.header.display());
    for dir in &loc.include_dirs {
        let version_h = dir.join("parallax/version.h");
        if version_h.exists() {
            println!("cargo:rerun-if-changed={}", version_h.display());
        }
    }
    println!("cargo:rustc-link-search=native={}", loc.lib_dir.display());
    match loc.linkage {
        Linkage::Dynamic => {
            println!("cargo:rustc-link-lib=dylib=parallax");
            // For this crate's own tests; dependents read DEP_PARALLAX_LIB_DIR.
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", loc.lib_dir.display());
            println!("cargo:linkage=dynamic");
        }
        Linkage::Static => {
            println!("cargo:rustc-link-lib=static=parallax_static");
            // The core is C++: its runtime, which the shared library would have brought along.
            println!("cargo:rustc-link-lib=dylib=stdc++");
            println!("cargo:linkage=static");
        }
    }
    println!("cargo:lib_dir={}", loc.lib_dir.display());
    println!(
        "cargo:include={}",
        env::join_paths(&loc.include_dirs)
            .unwrap()
            .to_string_lossy()
    );
    println!(
        "cargo:warning=parallax-sys: using libparallax from {}",
        loc.how
    );

    let mut builder = bindgen::Builder::default()
        .header(loc.header.to_string_lossy())
        .allowlist_function("px_.*")
        .allowlist_type("px_.*")
        .allowlist_var("PX_.*")
        .use_core()
        .layout_tests(true)
        .derive_default(true)
        .derive_debug(true)
        .derive_copy(true)
        .size_t_is_usize(true)
        .generate_comments(true)
        .parse_callbacks(Box::new(ConstantTypes));
    for dir in &loc.include_dirs {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    let bindings = builder.generate().unwrap_or_else(|e| {
        panic!(
            "parallax-sys: bindgen failed on {}: {e}\n(bindgen needs libclang: on Debian \
             `apt-get install libclang-dev`, or point LIBCLANG_PATH at it)",
            loc.header.display()
        )
    });
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("bindings.rs");
    bindings
        .write_to_file(&out)
        .unwrap_or_else(|e| panic!("parallax-sys: cannot write {}: {e}", out.display()));
}

/// Gives each `#define` constant the type of the parameter it is used with, so that
/// `status == PX_OK` compiles without casts.
#[derive(Debug)]
struct ConstantTypes;

impl ParseCallbacks for ConstantTypes {
    fn int_macro(&self, name: &str, _value: i64) -> Option<IntKind> {
        let custom = |name: &'static str, is_signed| Some(IntKind::Custom { name, is_signed });
        if name == "PX_OK" || name.starts_with("PX_E_") {
            custom("px_status_t", true)
        } else if name.starts_with("PX_MEMORY_") {
            custom("px_memory_type_t", false)
        } else if name.starts_with("PX_IPC_") {
            custom("px_ipc_kind_t", true)
        } else if name == "PX_TIME_NONE" || name.ends_with("_NS") {
            Some(IntKind::I64) // times and durations are int64_t nanoseconds
        } else if name.starts_with("PX_") {
            // Versions, page sizes, flags, PX_METADATA_USER_MAX: all uint32_t parameters.
            Some(IntKind::U32)
        } else {
            None
        }
    }
}

fn locate() -> Result<Location, String> {
    if let Some(dir) = env::var_os("PARALLAX_BUILD_DIR") {
        return from_build_dir(Path::new(&dir));
    }
    match (
        env::var_os("PARALLAX_LIB_DIR"),
        env::var_os("PARALLAX_INCLUDE_DIR"),
    ) {
        (Some(lib), Some(inc)) => return from_lib_and_include(lib.into(), inc.into()),
        (Some(_), None) | (None, Some(_)) => {
            return Err(
                "parallax-sys: PARALLAX_LIB_DIR and PARALLAX_INCLUDE_DIR must be set \
                        together"
                    .into(),
            )
        }
        (None, None) => {}
    }
    from_pkg_config().or_else(|pkg_err| bundled(&pkg_err))
}

/// Nothing installed was found: build the sources this crate ships.
#[cfg(feature = "bundled")]
fn bundled(_pkg_err: &str) -> Result<Location, String> {
    build_bundled()
}

#[cfg(not(feature = "bundled"))]
fn bundled(pkg_err: &str) -> Result<Location, String> {
    Err(format!(
        "parallax-sys: cannot find libparallax.\n\
         Set one of:\n  \
         PARALLAX_BUILD_DIR=<cmake build dir>   (holds libparallax.so and \
         include/parallax/version.h)\n  \
         PARALLAX_LIB_DIR=<dir of libparallax.so> and PARALLAX_INCLUDE_DIR=<dir holding \
         parallax/parallax.h>\n  \
         or install it where `pkg-config parallax` finds it (PKG_CONFIG_PATH),\n  \
         or enable the `bundled` feature to build it from this crate's sources.\n\
         pkg-config said: {pkg_err}"
    ))
}

/// Configures and builds `libparallax/` (the library's CMake project, shipped in this crate)
/// in `OUT_DIR` with only the library on: its tests, examples and benchmarks are not shipped.
#[cfg(feature = "bundled")]
fn build_bundled() -> Result<Location, String> {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let src = manifest.join("libparallax");
    if !src.join("CMakeLists.txt").exists() {
        return Err(format!(
            "parallax-sys: the bundled sources are missing ({} has no CMakeLists.txt)",
            src.display()
        ));
    }
    // In the repository each entry of libparallax/ is a symlink: name what it leads to, so
    // that cargo watches the files themselves.
    for entry in ["CMakeLists.txt", "cmake", "core", "capi", "include"] {
        let path = src.join(entry);
        let path = path.canonicalize().unwrap_or(path);
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let out = cmake::Config::new(&src)
        .define("PX_BUILD_TESTS", "OFF")
        .define("PX_BUILD_EXAMPLES", "OFF")
        .define("PX_BUILD_BENCH", "OFF")
        .define("PX_BUILD_PYTHON", "OFF")
        .define("PX_BUILD_STATIC", "ON")
        // `cmake --build` of the default targets (the shared and the static library), no
        // install: everything is used from the build directory.
        .no_build_target(true)
        .build();
    let build = out.join("build");
    if !build.join("libparallax_static.a").exists() {
        return Err(format!(
            "parallax-sys: the bundled CMake build in {} made no libparallax_static.a",
            build.display()
        ));
    }
    Ok(Location {
        lib_dir: build.clone(),
        linkage: Linkage::Static,
        include_dirs: vec![src.join("include"), build.join("include")],
        header: src.join("include/parallax/parallax.h"),
        how: format!(
            "the bundled sources (no PARALLAX_BUILD_DIR, PARALLAX_LIB_DIR or pkg-config \
             entry), built statically in {}",
            build.display()
        ),
    })
}

fn from_build_dir(dir: &Path) -> Result<Location, String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("parallax-sys: PARALLAX_BUILD_DIR={}: {e}", dir.display()))?;
    let lib = dir.join("libparallax.so");
    if !lib.exists() {
        return Err(format!(
            "parallax-sys: PARALLAX_BUILD_DIR={} has no libparallax.so (build it first: \
             cmake --build {})",
            dir.display(),
            dir.display()
        ));
    }
    let generated = dir.join("include");
    if !generated.join("parallax/version.h").exists() {
        return Err(format!(
            "parallax-sys: PARALLAX_BUILD_DIR={} has no include/parallax/version.h: is it a \
             configured libparallax build directory?",
            dir.display()
        ));
    }
    let source = source_dir_of(&dir)?;
    let header = source.join("include/parallax/parallax.h");
    Ok(Location {
        lib_dir: dir.clone(),
        linkage: Linkage::Dynamic,
        include_dirs: vec![source.join("include"), generated],
        header,
        how: format!("the CMake build directory {}", dir.display()),
    })
}

/// The source tree a CMake build directory was configured from.
fn source_dir_of(build: &Path) -> Result<PathBuf, String> {
    let cache_path = build.join("CMakeCache.txt");
    let cache = fs::read_to_string(&cache_path)
        .map_err(|e| format!("parallax-sys: cannot read {}: {e}", cache_path.display()))?;
    println!("cargo:rerun-if-changed={}", cache_path.display());
    for key in [
        "parallax_SOURCE_DIR:STATIC=",
        "CMAKE_HOME_DIRECTORY:INTERNAL=",
    ] {
        if let Some(line) = cache.lines().find(|l| l.starts_with(key)) {
            let src = PathBuf::from(&line[key.len()..]);
            if src.join("include/parallax/parallax.h").exists() {
                return Ok(src);
            }
        }
    }
    Err(format!(
        "parallax-sys: {} does not name a source tree holding include/parallax/parallax.h",
        cache_path.display()
    ))
}

fn from_lib_and_include(lib_dir: PathBuf, include_dir: PathBuf) -> Result<Location, String> {
    let header = include_dir.join("parallax/parallax.h");
    if !header.exists() {
        return Err(format!(
            "parallax-sys: PARALLAX_INCLUDE_DIR={} has no parallax/parallax.h",
            include_dir.display()
        ));
    }
    if !lib_dir.join("libparallax.so").exists() {
        return Err(format!(
            "parallax-sys: PARALLAX_LIB_DIR={} has no libparallax.so",
            lib_dir.display()
        ));
    }
    Ok(Location {
        how: format!("PARALLAX_LIB_DIR={}", lib_dir.display()),
        lib_dir,
        linkage: Linkage::Dynamic,
        include_dirs: vec![include_dir],
        header,
    })
}

fn from_pkg_config() -> Result<Location, String> {
    let var = |name: &str| -> Result<PathBuf, String> {
        let out = Command::new("pkg-config")
            .args(["--print-errors", "--variable", name, "parallax"])
            .output()
            .map_err(|e| format!("cannot run pkg-config: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if value.is_empty() {
            return Err(format!("parallax.pc defines no {name}"));
        }
        Ok(PathBuf::from(value))
    };
    let loc = from_lib_and_include(var("libdir")?, var("includedir")?)?;
    Ok(Location {
        how: format!("pkg-config ({})", loc.lib_dir.display()),
        ..loc
    })
}
