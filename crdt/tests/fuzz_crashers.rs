//! Replays every committed fuzz input (`tests/fuzz-crashers/` at the workspace root) through the
//! crdt fuzz entry points, so a crash once found stays fixed.

#[test]
fn every_committed_crash_input_is_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz-crashers");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz-crashers exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&path).expect("read crash input");
        theta_crdt::wire::fuzz_decode(&data);
        theta_crdt::fuzz::merge_converges(&data);
        theta_crdt::fuzz::parse_store(&data);
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}
