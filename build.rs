//! Shared build script of every workspace crate that links libtorch (each Cargo.toml points here).
//!
//! * `-Wl,--no-as-needed -ltorch`: without it the linker drops `libtorch.so` (no symbol of ours refers
//!   to it directly), `libtorch_cuda.so` is then never loaded and CUDA silently stays unavailable.
//! * an rpath to the torch library folder found by torch-sys (the `.venv`'s torch with
//!   `LIBTORCH_USE_PYTORCH=1`), so `target/release/skipblock` and the test binaries run without
//!   `LD_LIBRARY_PATH`. On another machine, `LD_LIBRARY_PATH` still takes precedence over nothing: set it
//!   to that machine's torch `lib/` folder.
#[allow(dead_code)] // skipblock-core's build script includes this file and calls `link_libtorch` itself
fn main() {
    link_libtorch();
}

/// The link arguments above, for every crate that links libtorch.
pub fn link_libtorch() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-link-search=native={lib}");
        // The version of the libtorch linked at build time, reported when the runtime one can't be read.
        let torch_dir = std::path::Path::new(&lib).join("..");
        if let Some(v) = read_torch_version(&torch_dir) {
            println!("cargo:rustc-env=SKIPBLOCK_BUILD_LIBTORCH_VERSION={v}");
        }
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

// `read_torch_version`, shared with skipblock-core (src/core/src/torch_version.rs).
include!("src/core/src/torch_version.rs");
