//! Fuzz target: the checkpoint decoder (`theta_crdt::fuzz::parse_checkpoint`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| theta_crdt::fuzz::parse_checkpoint(data));
