//! skipblock-core's build script: the shared one (`../../build.rs`: libtorch link arguments and rpath)
//! plus the C++ shim (`shim/shim.cpp`, see `src/shim.rs`; `shim/jit_graph.cpp`, see `src/export/graph.rs`), compiled with `cc` against the headers of
//! the libtorch torch-sys found (`DEP_TCH_LIBTORCH_LIB`'s sibling `include/`). Both builds (with and
//! without OpenCV) compile it: it needs only torch.

#[path = "../../build.rs"]
mod shared;

fn main() {
    shared::link_libtorch();
    println!("cargo:rerun-if-changed=shim/shim.cpp");
    println!("cargo:rerun-if-changed=shim/jit_graph.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports the libtorch lib folder");
    let include = std::path::Path::new(&lib).join("../include");
    // The PyTorch 2.x wheels (and current libtorch downloads) use the C++11 ABI, as torch-sys assumes.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("shim/shim.cpp")
        .file("shim/jit_graph.cpp")
        .compile("skipblock_shim");
    // The shim calls into libtorch_cpu / libc10: they come after it on the link line.
    println!("cargo:rustc-link-search=native={lib}");
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
