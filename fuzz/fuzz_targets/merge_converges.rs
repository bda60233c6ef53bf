//! Fuzz target: merge convergence of 2–4 replicas under a fuzz-chosen schedule of edits and
//! deliveries. The logic and assertions live in `theta_crdt::fuzz::merge_converges`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| theta_crdt::fuzz::merge_converges(data));
