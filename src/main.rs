//! The `theta` binary: parses the command line and hands over to [`theta::cli`].

/// mimalloc: allocation-heavy paths (frames, commands, meshes) spend far less time in the
/// allocator than with glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    theta::cli::main()
}

/// Turns transparent huge pages off for this process. mimalloc asks the kernel for huge pages
/// on its arenas (`madvise(MADV_HUGEPAGE)`), and every first touch of one then zeroes 2 MiB:
/// a peer catching up on 100,000 commands spent about a third of its time in the kernel's page
/// zeroing, and took 2.4 s instead of 1.8 s (`theta bench net --late-joiner 100000`).
#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "prctl is a C call")]
fn no_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of ours.
    // On a kernel without the option (before 3.15) it fails, and huge pages stay as the system
    // has them: nothing else changes, so the result is not needed.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn no_transparent_huge_pages() {}
