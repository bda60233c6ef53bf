//! Fuzz target: arbitrary bytes as a signed command and as a command body. The checks (no panic,
//! whatever decodes survives a re-encode round trip) live in `theta_crdt::wire::fuzz_decode`, so
//! a crash replay test runs exactly what the fuzzer runs.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| theta_crdt::wire::fuzz_decode(data));
