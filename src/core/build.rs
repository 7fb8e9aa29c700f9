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
    dist_shim(&include, &abi);
    // The shim calls into libtorch_cpu / libc10: they come after it on the link line.
    println!("cargo:rustc-link-search=native={lib}");
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}

/// The distributed shim (`shim/dist.cpp`, see `src/dist/`): c10d's TCPStore and ProcessGroupGloo always
/// (against the gloo stand-ins in `shim/gloo/`: the wheels ship no gloo headers), ProcessGroupNCCL when
/// `nccl.h` and the CUDA runtime headers are found (the Rust side asks the shim: `sb_dist_has_nccl`).
fn dist_shim(include: &std::path::Path, abi: &str) {
    println!("cargo:rerun-if-changed=shim/dist.cpp");
    println!("cargo:rerun-if-changed=shim/gloo");
    println!("cargo:rerun-if-env-changed=SKIPBLOCK_NCCL_INCLUDE");
    println!("cargo:rerun-if-env-changed=SKIPBLOCK_CUDA_INCLUDE");
    println!("cargo:rerun-if-env-changed=SKIPBLOCK_NO_NCCL");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include("shim")
        .include(include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("shim/dist.cpp");
    let torch_lib = include.join("../lib");
    let nccl = if std::env::var_os("SKIPBLOCK_NO_NCCL").is_some() || !torch_lib.join("libtorch_cuda.so").exists() {
        None
    } else {
        nccl_headers(include)
    };
    if let Some(dirs) = &nccl {
        for dir in dirs {
            build.include(dir);
        }
        build.define("SB_HAVE_NCCL", None).define("USE_C10D_NCCL", None);
    }
    build.compile("skipblock_dist");
    if nccl.is_some() {
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
}

/// The include folders ProcessGroupNCCL.hpp needs: `nccl.h`, the CUDA runtime headers with their
/// `crt/host_config.h` and the CCCL `nv/target`, looked for in `SKIPBLOCK_NCCL_INCLUDE` and
/// `SKIPBLOCK_CUDA_INCLUDE` (colon-separated folders), the pip packages next to torch (`nvidia/nccl`,
/// `nvidia/cu13`, `nvidia/cuda_runtime`, `nvidia/cuda_cccl`), `$CUDA_HOME/include`,
/// `/usr/local/cuda/include` and `/usr/include`. The pip wheels alone lack the last two (they come with a
/// CUDA toolkit): then None, and the build has Gloo only.
fn nccl_headers(torch_include: &std::path::Path) -> Option<Vec<std::path::PathBuf>> {
    use std::path::PathBuf;
    let site = torch_include.join("../..");
    let mut candidates: Vec<PathBuf> = Vec::new();
    for key in ["SKIPBLOCK_NCCL_INCLUDE", "SKIPBLOCK_CUDA_INCLUDE"] {
        if let Some(v) = std::env::var_os(key) {
            candidates.extend(std::env::split_paths(&v));
        }
    }
    for pkg in ["nccl", "cu13", "cuda_runtime", "cuda_cccl", "cuda_nvcc"] {
        candidates.push(site.join("nvidia").join(pkg).join("include"));
    }
    if let Some(home) = std::env::var_os("CUDA_HOME") {
        candidates.push(PathBuf::from(home).join("include"));
    }
    candidates.push("/usr/local/cuda/include".into());
    candidates.push("/usr/include".into());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for file in ["nccl.h", "cuda_runtime_api.h", "crt/host_config.h", "nv/target"] {
        let dir = candidates.iter().find(|d| d.join(file).exists())?;
        if !dirs.contains(dir) {
            dirs.push(dir.clone());
        }
    }
    Some(dirs)
}
