//! Link options of the `nhacviec` binary.
//!
//! Release builds for Linux with glibc pack the relative relocations (`-z
//! pack-relative-relocs`, DT_RELR): a position-independent binary otherwise carries about
//! 1.4 MB of them, which the dynamic loader reads at every start and which then stay
//! resident in the daemon (see BENCHMARKS.md, "Idle"). Needs GNU ld 2.38 or lld 15 to link
//! and glibc 2.36 (Debian 12) to run; debug builds and tests are linked as before.

fn main() {
    println!("cargo:rerun-if-changed=src/build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("PROFILE") == "release"
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
