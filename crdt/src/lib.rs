//! # theta-crdt: the signed command log and the deterministic scene
//!
//! Data model: every edit is a [`Command`](command::Envelope) signed by its author; its id is the
//! BLAKE3 hash of the signed bytes. Commands name their causal predecessors by id, forming a
//! grow-only DAG (the log). The scene is the fold of the log in one total order (Lamport clock, then
//! id), so any two peers holding the same set of commands hold byte-identical scenes.
//!
//! Invariants:
//! - One signature rule on every path (ZIP-215, single and batch alike).
//! - The fold is a pure function of the command set: no clocks, no randomness, no I/O, no
//!   hash-ordered iteration, no platform math.
//! - Bad input (forged, malformed, oversized, unauthorised) is an error or a deterministic no-op,
//!   never a panic, and never changes the scene.
//!
//! Architecture invariant: no networking, GPU, XR, ECS, async runtime, clock or randomness here.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod author;
pub mod checkpoint;
pub mod command;
pub mod ids;
pub mod invite;
pub mod wire;

pub use theta_mesh as mesh;
pub mod fold;
mod footprint;
#[doc(hidden)]
pub mod fuzz;
pub mod log;
pub mod open;
pub mod packed;
pub mod scene;
pub mod sign;
pub mod store;
pub mod sync;
pub mod workload;
