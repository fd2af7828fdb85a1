//! Link options for the edgemq binaries.
//!
//! glibc targets are position-independent executables, and ~6,800 of their
//! relocations are relative ones (vtables, string slices in statics, tracing
//! metadata): 160 KiB of `.rela.dyn` at 24 bytes each. `-z
//! pack-relative-relocs` (DT_RELR, binutils ≥ 2.38, glibc ≥ 2.36) packs them
//! into ~2 KiB while keeping the executable position-independent (ASLR).
//! An older linker ignores the option with a warning. The binary then needs
//! the glibc it was built against, as any binary built on Debian 12 does.
//! The static musl builds have no dynamic relocations to pack.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
