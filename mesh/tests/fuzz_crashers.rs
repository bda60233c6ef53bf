//! Replays every input in `tests/fuzz-crashers/` through both fuzz entry points.
//!
//! Each file there is an input that once crashed a fuzz target (or a hand-made malformed seed); the
//! fix for a crash is only done once its input is committed there, so this test keeps every past
//! crash fixed without needing `cargo fuzz` in CI.

use std::path::PathBuf;

#[test]
fn every_committed_crash_input_is_handled() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz-crashers");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    // Sorted so a failure always names the same first input.
    files.sort();
    assert!(files.len() > 1, "no inputs in {}", dir.display());
    for path in files {
        let data = std::fs::read(&path).expect("read input");
        let name = path.display().to_string();
        let run = |f: fn(&[u8]), target: &str| {
            if std::panic::catch_unwind(|| f(&data)).is_err() {
                panic!("{target} panics on {name}");
            }
        };
        run(theta_mesh::io::fuzz_read_obj, "fuzz_read_obj");
        run(theta_mesh::io::fuzz_read_gltf, "fuzz_read_gltf");
    }
}
