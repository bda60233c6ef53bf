//! Fuzz target: arbitrary bytes into the glTF/GLB importer. The checks (no panic, imported meshes
//! validate, round trip through export) live in `theta_mesh::io::fuzz_read_gltf`, so the crash
//! replay test runs exactly what the fuzzer runs.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| theta_mesh::io::fuzz_read_gltf(data));
