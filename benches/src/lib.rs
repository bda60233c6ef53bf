//! Shared workloads for the benchmarks in `benches/benches/`.
