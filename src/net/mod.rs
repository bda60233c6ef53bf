//! Serverless sessions over iroh: the only module that touches sockets and the async runtime.
//!
//! Every peer runs the same [`Node`]: an iroh endpoint keyed with the user's identity (so the
//! endpoint id is the command author), a direct QUIC connection per peer on the versioned ALPN
//! [`ALPN`] (a handshake, then the IO-less sync state machine of `theta_crdt::sync` on a control
//! stream, heartbeats as datagrams), and an iroh-gossip topic derived from the session id on which
//! new commands are broadcast. A peer that joins late or was away catches up over the direct
//! stream; heartbeats carry each side's log size and a digest of its heads, so a peer whose view
//! differs asks for a sync again (anti-entropy), whatever gossip dropped.
//!
//! Bad input from a peer (a frame that does not decode, a command that is malformed or forged) is
//! never a panic: the peer is disconnected and banned for the life of the process with the reason
//! logged, and nothing it sent changes the log. Commands whose author lacks the role are kept and
//! fold to nothing (see `theta_crdt::fold`), as every peer decides alike.

pub mod bench;
pub mod codec;
pub mod compact;
mod node;
pub use crate::presence;
pub mod ticket;
pub mod wire;

pub use node::{
    MAX_GOSSIP_PER_S, NetMode, Node, NodeConfig, NodeEvent, PeerStats, RegionId, Start,
};

/// The session protocol's ALPN. Its number changes with the protocol version.
pub const ALPN: &[u8] = b"/theta/session/1";
/// The protocol version in the handshake.
pub const PROTOCOL_VERSION: u16 = 1;
/// Largest gossip message, set identically on every peer; larger payloads go by sync instead.
pub const GOSSIP_MAX_MESSAGE: usize = 64 * 1024;

/// BLAKE3 of the schemas two peers must agree on, compared in the handshake.
pub fn schema_hash() -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for s in [
        include_str!("../../schemas/command.fbs"),
        include_str!("../../schemas/signed_command.fbs"),
        include_str!("../../schemas/sync.fbs"),
        include_str!("../../schemas/net.fbs"),
    ] {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// Milliseconds since the Unix epoch, for invite expiry.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
