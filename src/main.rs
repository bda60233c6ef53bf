//! The `theta` binary: parses the command line and hands over to [`theta::cli`].

/// mimalloc: allocation-heavy paths (frames, commands, meshes) spend far less time in the
/// allocator than with glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    theta::cli::main()
}
