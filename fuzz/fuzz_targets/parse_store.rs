//! Fuzz target: the session-file parser (`theta_crdt::fuzz::parse_store`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| theta_crdt::fuzz::parse_store(data));
