//! # theta-crdt: the command log and the scene fold
//!
//! This crate will hold Theta's signed, content-addressed command DAG, permissions, the deterministic
//! fold from log to scene, undo, the IO-less sync state machine and storage (see the design brief).
//! So far it only fixes its place in the dependency graph: `theta-mesh` ← `theta-crdt` ← `theta`.
//!
//! Architecture invariant: no networking, GPU, XR, ECS, async runtime, clock or randomness here.

pub use theta_mesh as mesh;
