//! Crash safety of the session file: a writer process appending commands (and compacting the file
//! and saving checkpoints as it goes) is killed with SIGKILL at random moments, 100 times; every
//! time, the file opens, every command the writer reported saved is there, byte for byte, nothing
//! else is (a torn final write is dropped and reported), and opening from whatever checkpoint the
//! kill left gives the same scene as verifying and folding everything. A writer making local
//! edits, killed again and again, never signs two commands with one sequence number.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use theta::store::SessionFile;

const SEED: u64 = 5;
const COUNT: usize = 60;

#[test]
fn sigkill_at_random_points_never_loses_a_saved_command() {
    let expected = theta_crdt::workload::session(SEED, 2, COUNT);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = theta_crdt::workload::Rng::new(0xc4a5);
    let (mut killed_midway, mut resumed, mut torn) = (0, 0, 0);
    let (mut compacted, mut from_checkpoint) = (0, 0);
    for round in 0..100 {
        let path = dir.path().join(format!("s{round}.theta"));
        // Some rounds resume a file a previous kill left behind.
        let runs = 1 + rng.below(2);
        let mut saved = 0;
        for run in 0..runs {
            let mut child = Command::new(env!("CARGO_BIN_EXE_theta-crash-writer"))
                .arg(&path)
                .arg(SEED.to_string())
                .arg(COUNT.to_string())
                // Compact every ~8 commands and checkpoint every 7, so kills also land in those.
                .arg("2000")
                .arg("7")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let stop_after = rng.below(COUNT);
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let mut finished = false;
            for line in lines.by_ref() {
                let line = line.unwrap();
                if line == "done" {
                    finished = true;
                    break;
                }
                saved = line
                    .strip_prefix("saved ")
                    .unwrap()
                    .parse::<usize>()
                    .unwrap();
                if saved >= stop_after {
                    break;
                }
            }
            // SIGKILL: no destructors, no flush, wherever the writer is.
            child.kill().unwrap();
            let _ = child.wait();
            if !finished {
                killed_midway += 1;
            }
            if run > 0 {
                resumed += 1;
            }
            let opened = SessionFile::open(&path)
                .unwrap_or_else(|e| panic!("round {round}: the file must open: {e:#}"));
            if opened.dropped > 0 {
                torn += 1;
            }
            let n = opened.commands.len();
            assert!(
                n >= saved,
                "round {round}: {n} commands on disk, {saved} reported saved"
            );
            for (i, c) in opened.commands.iter().enumerate() {
                assert_eq!(
                    &c[..],
                    &expected[i][..],
                    "round {round}: command {i} differs"
                );
            }
            let parsed = theta_crdt::store::parse(&std::fs::read(&path).unwrap()).unwrap();
            if parsed.tail_offset > theta_crdt::store::HEADER_LEN as u64 {
                compacted += 1;
            }
            drop(opened);
            // Opening from the checkpoint (whatever state the kill left it in) gives the scene
            // that verifying and folding every command gives.
            let s = SessionFile::open_session(&path).unwrap();
            assert!(s.opened.refused.is_empty());
            if s.opened.from_checkpoint > 0 {
                from_checkpoint += 1;
            }
            let full = theta_crdt::open::open(
                s.opened.replica.log().session().unwrap(),
                &parsed.commands,
                &[],
                None,
                [1; 32],
            );
            assert_eq!(
                s.opened.replica.scene().state_hash(),
                full.replica.scene().state_hash(),
                "round {round}: the checkpoint restores the folded scene"
            );
        }
    }
    println!(
        "killed mid-run {killed_midway}, resumed {resumed}, torn tails recovered {torn}, \
         compacted files {compacted}, opened from a checkpoint {from_checkpoint}"
    );
    assert!(
        compacted > 50 && from_checkpoint > 50,
        "kills landed after compactions and checkpoints"
    );
    assert!(
        killed_midway >= 90,
        "the writer was really killed mid-run: {killed_midway}"
    );
    assert!(
        resumed > 0,
        "some files were reopened and appended to after a kill"
    );
}

/// An author never reuses a sequence number, even when killed between signing an edit, saving
/// it and folding it: each restart signs on from the last command its file holds, and no command
/// it reported durable is ever lost. Across every kill, the file holds the author's commands with
/// the sequence numbers 1, 2, 3, ... each once, and the log sees no equivocation.
#[test]
fn sigkill_while_editing_never_reuses_a_sequence_number() {
    const EDITS: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edits.theta");
    let mut rng = theta_crdt::workload::Rng::new(0x5e9);
    let mut reported = 0u64;
    let mut kills = 0;
    for _ in 0..40 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_theta-crash-writer"))
            .arg(&path)
            .arg("edit")
            .arg(EDITS.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stop_after = 1 + rng.below(6);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut finished = false;
        let mut this_run = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line == "done" {
                finished = true;
                break;
            }
            let seq: u64 = line.strip_prefix("signed ").unwrap().parse().unwrap();
            assert!(seq > reported, "seq {seq} signed again after {reported}");
            reported = seq;
            this_run += 1;
            if this_run >= stop_after {
                break;
            }
        }
        child.kill().unwrap();
        let _ = child.wait();
        if finished {
            break;
        }
        kills += 1;
        // What is on disk: every command reported durable, each sequence number once.
        let opened = SessionFile::open_session(&path).unwrap();
        let log = opened.opened.replica.log();
        assert!(
            log.equivocators().is_empty(),
            "an equivocation after {kills} kills"
        );
        let me = theta_crdt::workload::author_key(0).author();
        let last = log.last_seq(&me);
        assert!(
            last >= reported,
            "{last} on disk, {reported} reported durable"
        );
        let mut seqs: Vec<u64> = log
            .admitted()
            .iter()
            .filter(|e| e.author == me)
            .map(|e| e.seq)
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    }
    assert!(kills >= 10, "the writer was killed mid-run {kills} times");
    let opened = SessionFile::open_session(&path).unwrap();
    assert!(opened.opened.replica.log().equivocators().is_empty());
    assert!(opened.opened.replica.log().len() >= EDITS.min(reported as usize));
}

#[test]
fn a_damaged_file_is_refused_with_a_clear_error_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cmds = theta_crdt::workload::session(SEED, 1, 5);
    let g = theta_crdt::log::verify_command(&cmds[0]).unwrap();
    let path = dir.path().join("s.theta");
    let mut f = SessionFile::create(&path, &g.id(), &cmds[0]).unwrap();
    for c in &cmds[1..] {
        f.append(&[c]).unwrap();
    }
    drop(f);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[60] ^= 0xff; // inside the first record
    std::fs::write(&path, &bytes).unwrap();
    let err = format!("{:#}", SessionFile::open(&path).unwrap_err());
    assert!(err.contains("corrupt at byte 48"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "never overwritten");
    std::fs::write(&path, b"hello, not a session").unwrap();
    let err = format!("{:#}", SessionFile::open(&path).unwrap_err());
    assert!(err.contains("not a Theta session file"), "{err}");
    let mut newer = bytes.clone();
    newer[8] = 7;
    std::fs::write(&path, &newer).unwrap();
    let err = format!("{:#}", SessionFile::open(&path).unwrap_err());
    assert!(err.contains("version 7 is newer"), "{err}");
    assert!(
        SessionFile::create(&path, &g.id(), &cmds[0]).is_err(),
        "create never clobbers"
    );
}
