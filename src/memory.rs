//! Giving freed memory back to the operating system.
//!
//! The `theta` binary allocates with mimalloc (see `main.rs`), which keeps each page with the
//! thread heap that allocated from it. A page freed by another thread goes back to its heap only
//! when that thread next allocates, and rayon's workers — which parse files, verify signatures
//! and compress frames in bursts — then sleep for as long as the session is still, holding pages
//! that the main thread has long freed. After opening a 100,000-command session and its idle
//! housekeeping, that was 8 MB of its 60 MB resident (`theta bench memory`).

/// Returns the memory freed so far to the operating system, from every rayon worker and from the
/// calling thread: each collects its own heap. Idle housekeeping calls it when it runs out of
/// work. It changes no state; in a process whose global allocator is not mimalloc (the library's
/// tests) it only walks mimalloc's empty heaps.
pub fn give_back() {
    rayon::broadcast(|_| collect());
    collect();
}

#[expect(unsafe_code, reason = "mi_collect is a C call")]
fn collect() {
    // SAFETY: `mi_collect` takes a flag and works on the calling thread's own heap (and on
    // segments other threads abandoned): it has no preconditions, and allocations made
    // concurrently on other threads are safe, as with any allocator call.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
