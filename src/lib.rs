//! # theta: the app and engine crate
//!
//! Today this crate holds the command-line front end, the session file on disk, the user's identity
//! and the local session driver. The engine (ECS, net, render, XR, editor tools) grows here behind
//! cargo features, per `docs/ARCHITECTURE.md`.

pub mod cli;
pub mod identity;
#[cfg(feature = "net")]
pub mod live;
#[cfg(feature = "net")]
pub mod net;
pub mod session;
pub mod store;
