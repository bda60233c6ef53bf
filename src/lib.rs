//! # theta: the app and engine crate
//!
//! This crate holds the command-line front end, the session file on disk, the user's identity, the
//! local session driver, the engine's ECS projection of the scene, presence, and (feature `net`)
//! sessions over iroh. Render, XR and the editor tools grow here behind cargo features, per
//! `docs/ARCHITECTURE.md`.

pub mod cli;
#[cfg(feature = "desktop")]
pub mod desktop;
pub mod engine;
pub mod identity;
#[cfg(feature = "net")]
pub mod live;
pub mod memory;
#[cfg(feature = "net")]
pub mod net;
pub mod presence;
pub mod progress;
pub mod render;
pub mod script;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod xr;
