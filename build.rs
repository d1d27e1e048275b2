//! With cargo feature `xrt`: compiles the XRT host shim (src/driver/xrt_shim.cpp) against
//! XRT >= 2.17 headers and links libxrt_coreutil; without it, does nothing.

#[allow(dead_code)]
#[path = "src/driver/xrt_headers.rs"]
mod xrt_headers;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=XRT_ROOT");
    if std::env::var_os("CARGO_FEATURE_XRT").is_none() {
        return;
    }
    xrt::build();
}

#[cfg(feature = "xrt")]
mod xrt {
    use std::path::PathBuf;

    use super::xrt_headers;

    pub fn build() {
        println!("cargo:rerun-if-changed=src/driver/xrt_shim.cpp");
        println!("cargo:rerun-if-changed=src/driver/xrt_headers.rs");
        let root = std::env::var_os("XRT_ROOT").map(PathBuf::from);
        let headers = match xrt_headers::find(&xrt_headers::candidate_roots(root.as_deref())) {
            Ok(h) => h,
            Err(message) => {
                // One clear line instead of a C++ error cascade from the wrong headers.
                eprintln!("error: {message}");
                println!("cargo:warning={message}");
                std::process::exit(1);
            }
        };
        let (a, b, c) = headers.version;
        println!("cargo:rustc-env=AIEC_XRT_VERSION={a}.{b}.{c}");
        cc::Build::new()
            .cpp(true)
            .std("c++17")
            .include(&headers.include)
            .file("src/driver/xrt_shim.cpp")
            .compile("aiec_xrt_shim");
        // The library sits next to the include directory in an XRT install (`<root>/lib`).
        if let Some(prefix) = headers.include.parent() {
            let lib = prefix.join("lib");
            if !lib.join("libxrt_coreutil.so").exists() {
                // Linking then picks up whatever libxrt_coreutil the system has (Debian's 2.13
                // lacks xrt::hw_context: undefined symbols).
                println!(
                    "cargo:warning=XRT {a}.{b}.{c} headers in {} but no libxrt_coreutil.so in {}",
                    headers.include.display(),
                    lib.display()
                );
            }
            println!("cargo:rustc-link-search=native={}", lib.display());
        }
        println!("cargo:rustc-link-lib=dylib=xrt_coreutil");
    }
}

#[cfg(not(feature = "xrt"))]
mod xrt {
    pub fn build() {}
}
