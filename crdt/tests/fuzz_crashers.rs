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
        theta_crdt::fuzz::parse_checkpoint(&data);
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}

#[test]
fn the_checkpoint_seed_is_a_valid_body() {
    // The committed seed input is the fixture's real body: the fuzzer starts from a valid
    // structure. If the format changes, regenerate it with `THETA_BLESS=1`.
    let seed = theta_crdt::fuzz::checkpoint_seed();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz-crashers/checkpoint-body-seed.bin");
    if std::env::var_os("THETA_BLESS").is_some() {
        std::fs::write(&path, &seed).expect("write seed");
    }
    assert_eq!(
        std::fs::read(&path).expect("seed exists (THETA_BLESS=1 writes it)"),
        seed,
        "stale seed: rerun with THETA_BLESS=1"
    );
    theta_crdt::fuzz::parse_checkpoint(&seed);
}
