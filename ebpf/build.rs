//! Compiles every `src/*.bpf.c` into `$OUT_DIR/*.bpf.o` with clang (BPF target), so that
//! `src/objects.rs` can embed them with `include_bytes_aligned!`.
//!
//! Needs Debian's `clang` and `libbpf-dev` (which brings `linux-libc-dev`). `CLANG` in the
//! environment overrides the compiler.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let src = Path::new(&env("CARGO_MANIFEST_DIR")).join("src");
    let out = PathBuf::from(env("OUT_DIR"));
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", src.display());

    let mut sources = Vec::new();
    for entry in
        std::fs::read_dir(&src).unwrap_or_else(|e| fail(&format!("reading {}: {e}", src.display())))
    {
        let path = entry
            .unwrap_or_else(|e| fail(&format!("reading {}: {e}", src.display())))
            .path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name.ends_with(".bpf.c") || name.ends_with(".h") {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        if name.ends_with(".bpf.c") {
            sources.push(path);
        }
    }
    sources.sort();

    let multiarch = multiarch_include(&clang);
    check_headers(&multiarch);

    for source in &sources {
        let stem = source
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let object = out.join(stem.replace(".bpf.c", ".bpf.o"));
        let mut cmd = Command::new(&clang);
        cmd.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-I{}", multiarch.display()))
            .arg(format!("-I{}", src.display()))
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&object);
        let output = cmd.output().unwrap_or_else(|e| {
            fail(&format!(
                "cannot run `{clang}` ({e}). Install Debian's `clang` package (apt-get install clang libbpf-dev), or point CLANG at a clang with the BPF target."
            ))
        });
        if !output.status.success() {
            fail(&format!(
                "`{cmd:?}` failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
}

/// The host's multiarch include directory (`/usr/include/x86_64-linux-gnu`), where Debian
/// keeps `asm/types.h`, which `linux/bpf.h` includes.
fn multiarch_include(clang: &str) -> PathBuf {
    let triple = Command::new(clang)
        .arg("-print-multiarch")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            // clang without -print-multiarch: derive it from the build host's arch.
            let arch = std::env::consts::ARCH;
            match arch {
                "arm" => "arm-linux-gnueabihf".to_owned(),
                "x86" => "i386-linux-gnu".to_owned(),
                _ => format!("{arch}-linux-gnu"),
            }
        });
    Path::new("/usr/include").join(triple)
}

fn check_headers(multiarch: &Path) {
    let needed = [
        (
            Path::new("/usr/include/bpf/bpf_helpers.h").to_owned(),
            "libbpf-dev",
        ),
        (
            Path::new("/usr/include/linux/bpf.h").to_owned(),
            "linux-libc-dev (via libbpf-dev)",
        ),
        (
            multiarch.join("asm/types.h"),
            "linux-libc-dev (via libbpf-dev)",
        ),
    ];
    let missing: Vec<String> = needed
        .iter()
        .filter(|(path, _)| !path.exists())
        .map(|(path, package)| format!("{} (Debian package {package})", path.display()))
        .collect();
    if !missing.is_empty() {
        fail(&format!(
            "missing headers to build the XDP programs: {}. Install them with `apt-get install clang libbpf-dev`.",
            missing.join(", ")
        ));
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("cargo did not set {name}")))
}

fn fail(message: &str) -> ! {
    eprintln!("error: xfwd-ebpf: {message}");
    std::process::exit(1)
}
