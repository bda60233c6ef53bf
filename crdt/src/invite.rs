//! Invite capabilities: an admin signs "whoever holds this (or this one key) may join session S as
//! role R until time T", and the invitee redeems it with a command of their own while the admin is
//! offline.
//!
//! The capability has a fixed 82-byte layout (no schema needed, and the same bytes travel inside
//! tickets and inside the redeeming command), signed under the one signature rule. The fold checks,
//! at the redeeming command's place in the order: the signature, the session, the invitee (if the
//! capability names one), and that the issuer is an admin there. Expiry is wall-clock time, which a
//! deterministic fold cannot read: peers check it when an invitee connects (`check_expiry`), and an
//! admin who wants an invite gone before it expires revokes the role it granted.

use crate::ids::{AuthorId, CommandId, Role};
use crate::sign::{self, Keypair, SignatureError};

/// Domain separation: a capability signature can never be mistaken for a command signature.
const TAG: &[u8; 14] = b"theta-invite/1";
/// Encoded capability size.
pub const CAPABILITY_BYTES: usize = 32 + 1 + 8 + 1 + 32 + 8;

/// What an invite grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// The session (genesis id).
    pub session: CommandId,
    /// The role it grants.
    pub role: Role,
    /// Expiry, Unix time in milliseconds.
    pub expires_unix_ms: u64,
    /// If set, only this key may redeem it; otherwise whoever holds it.
    pub invitee: Option<AuthorId>,
    /// Makes two otherwise equal invites distinct.
    pub nonce: u64,
}

/// A capability, its issuer and the issuer's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedCapability {
    /// What it grants.
    pub capability: Capability,
    /// The admin who signed it.
    pub issuer: AuthorId,
    /// Signature over `TAG ‖ capability bytes`.
    pub signature: [u8; 64],
}

/// Why a capability is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteError {
    /// The bytes are not a capability.
    #[error("malformed invite capability: {0}")]
    Malformed(&'static str),
    /// The signature does not verify.
    #[error("invite signature: {0}")]
    Signature(#[from] SignatureError),
    /// It has expired.
    #[error("the invite expired")]
    Expired,
}

fn role_byte(r: Role) -> u8 {
    match r {
        Role::Viewer => 0,
        Role::Editor => 1,
        Role::Admin => 2,
    }
}

impl Capability {
    /// The fixed encoding.
    pub fn to_bytes(&self) -> [u8; CAPABILITY_BYTES] {
        let mut b = [0u8; CAPABILITY_BYTES];
        b[..32].copy_from_slice(&self.session.0);
        b[32] = role_byte(self.role);
        b[33..41].copy_from_slice(&self.expires_unix_ms.to_le_bytes());
        if let Some(k) = self.invitee {
            b[41] = 1;
            b[42..74].copy_from_slice(&k.0);
        }
        b[74..82].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    /// Parses the fixed encoding.
    pub fn from_bytes(b: &[u8]) -> Result<Capability, InviteError> {
        if b.len() != CAPABILITY_BYTES {
            return Err(InviteError::Malformed("wrong length"));
        }
        let mut session = [0u8; 32];
        session.copy_from_slice(&b[..32]);
        let role = match b[32] {
            0 => Role::Viewer,
            1 => Role::Editor,
            2 => Role::Admin,
            _ => return Err(InviteError::Malformed("unknown role")),
        };
        let mut e = [0u8; 8];
        e.copy_from_slice(&b[33..41]);
        let invitee = match b[41] {
            0 if b[42..74].iter().all(|&x| x == 0) => None,
            1 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(&b[42..74]);
                Some(AuthorId(k))
            }
            _ => return Err(InviteError::Malformed("bad invitee flag")),
        };
        let mut n = [0u8; 8];
        n.copy_from_slice(&b[74..82]);
        Ok(Capability {
            session: CommandId(session),
            role,
            expires_unix_ms: u64::from_le_bytes(e),
            invitee,
            nonce: u64::from_le_bytes(n),
        })
    }

    fn message(&self) -> Vec<u8> {
        let mut m = TAG.to_vec();
        m.extend_from_slice(&self.to_bytes());
        m
    }

    /// Signs the capability as `issuer`.
    pub fn sign(self, issuer: &Keypair) -> SignedCapability {
        SignedCapability {
            capability: self,
            issuer: issuer.author(),
            signature: issuer.sign(&self.message()),
        }
    }
}

/// Encoded signed capability size: the capability, the issuer's key, the signature.
pub const SIGNED_CAPABILITY_BYTES: usize = CAPABILITY_BYTES + 32 + 64;

impl SignedCapability {
    /// The fixed encoding (for tickets and handshakes): capability ‖ issuer ‖ signature.
    pub fn to_bytes(&self) -> [u8; SIGNED_CAPABILITY_BYTES] {
        let mut b = [0u8; SIGNED_CAPABILITY_BYTES];
        b[..CAPABILITY_BYTES].copy_from_slice(&self.capability.to_bytes());
        b[CAPABILITY_BYTES..CAPABILITY_BYTES + 32].copy_from_slice(&self.issuer.0);
        b[CAPABILITY_BYTES + 32..].copy_from_slice(&self.signature);
        b
    }

    /// Parses the fixed encoding. The signature is not checked here: see [`Self::verify`].
    pub fn from_bytes(b: &[u8]) -> Result<SignedCapability, InviteError> {
        if b.len() != SIGNED_CAPABILITY_BYTES {
            return Err(InviteError::Malformed("wrong length"));
        }
        let capability = Capability::from_bytes(&b[..CAPABILITY_BYTES])?;
        let mut issuer = [0u8; 32];
        issuer.copy_from_slice(&b[CAPABILITY_BYTES..CAPABILITY_BYTES + 32]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[CAPABILITY_BYTES + 32..]);
        Ok(SignedCapability {
            capability,
            issuer: AuthorId(issuer),
            signature,
        })
    }

    /// Checks the issuer's signature (ZIP-215).
    pub fn verify(&self) -> Result<(), InviteError> {
        sign::verify(&self.issuer, &self.capability.message(), &self.signature)?;
        Ok(())
    }

    /// Checks expiry against the caller's clock (the network layer's job at admission).
    pub fn check_expiry(&self, now_unix_ms: u64) -> Result<(), InviteError> {
        if now_unix_ms >= self.capability.expires_unix_ms {
            Err(InviteError::Expired)
        } else {
            Ok(())
        }
    }
}
