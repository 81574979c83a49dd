//! Generates the FFI bindings from `parallax.h` with bindgen and links `libparallax`.
//!
//! Where the library is found, in this order:
//! 1. `PARALLAX_BUILD_DIR`: a CMake build directory of libparallax (holds `libparallax.so` and
//!    the generated `include/parallax/version.h`; `parallax.h` comes from the source tree the
//!    build was configured from, read from its `CMakeCache.txt`).
//! 2. `PARALLAX_LIB_DIR` + `PARALLAX_INCLUDE_DIR`: an installed library and its headers.
//! 3. `pkg-config parallax`.
//!
//! The library directory is passed to dependents as `DEP_PARALLAX_LIB_DIR` (see `links`), so
//! that their build scripts can set the same rpath: `cargo:rustc-link-arg` only reaches the
//! targets of the package that prints it.
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use bindgen::callbacks::{IntKind, ParseCallbacks};

struct Location {
    lib_dir: PathBuf,
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
    println!("cargo:rustc-link-lib=dylib=parallax");
    // For this crate's own tests; dependents read DEP_PARALLAX_LIB_DIR.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", loc.lib_dir.display());
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
    from_pkg_config().map_err(|pkg_err| {
        format!(
            "parallax-sys: cannot find libparallax.\n\
             Set one of:\n  \
             PARALLAX_BUILD_DIR=<cmake build dir>   (holds libparallax.so and \
             include/parallax/version.h)\n  \
             PARALLAX_LIB_DIR=<dir of libparallax.so> and PARALLAX_INCLUDE_DIR=<dir holding \
             parallax/parallax.h>\n  \
             or install it where `pkg-config parallax` finds it (PKG_CONFIG_PATH).\n\
             pkg-config said: {pkg_err}"
        )
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
