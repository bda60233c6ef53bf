//! # theta: the app and engine crate
//!
//! Today this crate holds the command-line front end over the mesh kernel. The engine (ECS, net,
//! render, XR, editor tools) grows here behind cargo features, per `docs/ARCHITECTURE.md`.

pub mod cli;
pub mod store;
