//! Signatures: one rule on every path.
//!
//! Single and batch ed25519 verification disagree on edge cases (small-order keys, non-canonical
//! encodings) in most libraries, and peers that verified the same command by different paths would
//! then disagree forever about whether it exists. Theta verifies everything with ZIP-215 semantics,
//! which `ed25519-zebra` implements identically for single and batch verification; a test checks
//! that they agree on edge-case signatures. iroh signs with ordinary ed25519 keys, which ZIP-215
//! accepts, so an author's endpoint key signs their commands.

use ed25519_zebra::{Signature, SigningKey, VerificationKey, VerificationKeyBytes};
use rand_core::{CryptoRng, RngCore};

use crate::ids::AuthorId;

/// An author's signing key. The secret bytes come from outside (the app's key store): this crate
/// has no randomness.
#[derive(Clone)]
pub struct Keypair {
    sk: SigningKey,
    author: AuthorId,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({:?})", self.author)
    }
}

impl Keypair {
    /// The keypair for a 32-byte ed25519 secret key (seed).
    pub fn from_secret(secret: [u8; 32]) -> Keypair {
        let sk = SigningKey::from(secret);
        let author = AuthorId(VerificationKeyBytes::from(VerificationKey::from(&sk)).into());
        Keypair { sk, author }
    }

    /// The public key, which is the author id.
    pub fn author(&self) -> AuthorId {
        self.author
    }

    /// Signs a message.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.sk.sign(msg).into()
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The author's public key is not a valid curve point encoding.
    #[error("malformed public key")]
    BadKey,
    /// The signature does not verify for this key and message.
    #[error("invalid signature")]
    Invalid,
}

/// Verifies one signature under ZIP-215.
pub fn verify(author: &AuthorId, msg: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
    let vk = VerificationKey::try_from(author.0).map_err(|_| SignatureError::BadKey)?;
    vk.verify(&Signature::from(*signature), msg)
        .map_err(|_| SignatureError::Invalid)
}

/// Verifies many signatures under ZIP-215 with one batch check; returns one result per item, exactly
/// as [`verify`] would. When the batch fails, items are re-checked one by one to find the bad ones.
/// The random coefficients of batch verification come from `rng` (the caller's), and do not change
/// which signatures are accepted.
pub fn verify_batch<R: RngCore + CryptoRng>(
    items: &[(AuthorId, &[u8], [u8; 64])],
    rng: R,
) -> Vec<Result<(), SignatureError>> {
    let mut batch = ed25519_zebra::batch::Verifier::new();
    let mut malformed = false;
    // A key is checked once per batch (decompressing a point is a good part of a verification,
    // and a batch of catch-up commands has a handful of authors).
    let mut keys_ok: Vec<[u8; 32]> = Vec::new();
    for (author, msg, sig) in items {
        if !keys_ok.contains(&author.0) {
            if VerificationKey::try_from(author.0).is_err() {
                malformed = true;
                continue;
            }
            if keys_ok.len() < 64 {
                keys_ok.push(author.0);
            }
        }
        batch.queue((
            VerificationKeyBytes::from(author.0),
            Signature::from(*sig),
            msg,
        ));
    }
    if !malformed && batch.verify(rng).is_ok() {
        return vec![Ok(()); items.len()];
    }
    items.iter().map(|(a, m, s)| verify(a, m, s)).collect()
}

/// A cryptographic random stream: BLAKE3 in keyed extendable-output mode, keyed by a secret seed,
/// one stream per `index`. It gives batch verification unpredictable coefficients with no
/// randomness of this crate's own (the seed comes from the caller).
pub struct SeededRng(blake3::OutputReader);

impl SeededRng {
    /// The stream for `index` under `seed`.
    pub fn new(seed: &[u8; 32], index: u64) -> SeededRng {
        let mut h = blake3::Hasher::new_keyed(seed);
        h.update(b"theta-batch-verify/1");
        h.update(&index.to_le_bytes());
        SeededRng(h.finalize_xof())
    }
}

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl CryptoRng for SeededRng {}
