//! One signature rule: single and batch verification accept exactly the same signatures, including
//! on the edge cases where ed25519 implementations usually disagree (small-order keys and nonces,
//! non-canonical point encodings, non-canonical scalars).

use rand::SeedableRng;
use theta_crdt::ids::AuthorId;
use theta_crdt::sign::{Keypair, verify, verify_batch};

fn hexb(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for i in 0..32 {
        out[i] = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// Encodings of small-order points: the eight canonical ones, and non-canonical encodings (y ≥ p)
/// of the identity and of the order-2 point.
fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut v = vec![
        hexb("0100000000000000000000000000000000000000000000000000000000000000"),
        hexb("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        hexb("0000000000000000000000000000000000000000000000000000000000000000"),
        hexb("0000000000000000000000000000000000000000000000000000000000000080"),
        hexb("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
        hexb("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
        hexb("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
        hexb("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    ];
    // y = p + 1 (the identity, non-canonically) and y = p - 1 + p... only p + 1 fits below 2^255.
    v.push(hexb(
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ));
    v.push(hexb(
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ));
    v
}

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(7)
}

#[test]
fn sign_and_verify_round_trip_and_tampering_fails() {
    let k = Keypair::from_secret([3; 32]);
    let sig = k.sign(b"hello");
    assert_eq!(verify(&k.author(), b"hello", &sig), Ok(()));
    assert!(verify(&k.author(), b"hellp", &sig).is_err());
    let other = Keypair::from_secret([4; 32]);
    assert!(verify(&other.author(), b"hello", &sig).is_err());
    let mut bad = sig;
    bad[10] ^= 1;
    assert!(verify(&k.author(), b"hello", &bad).is_err());
}

#[test]
fn single_and_batch_agree_on_small_order_and_non_canonical_points() {
    let msg = b"Zcash";
    let mut cases = 0;
    let mut accepted = 0;
    for a in small_order_encodings() {
        for r in small_order_encodings() {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r);
            // s = 0: under ZIP-215's cofactored equation, [8]R = [8]A = identity, so these hold.
            let author = AuthorId(a);
            let single = verify(&author, msg, &sig);
            let batch = verify_batch(&[(author, &msg[..], sig)], rng());
            assert_eq!(batch, vec![single.clone()], "A={a:02x?} R={r:02x?}");
            // Mixed into a batch with valid signatures, the verdicts do not change either.
            let k = Keypair::from_secret([9; 32]);
            let good = k.sign(msg);
            let mixed = verify_batch(
                &[(k.author(), &msg[..], good), (author, &msg[..], sig)],
                rng(),
            );
            assert_eq!(mixed, vec![Ok(()), single.clone()]);
            cases += 1;
            accepted += usize::from(single.is_ok());
        }
    }
    assert_eq!(cases, 100);
    // ZIP-215 accepts small-order keys and nonces (a strict verifier would reject all of them):
    // the point of the rule is that every peer gives the same answer, whichever path it took.
    assert!(
        accepted > 0,
        "ZIP-215 accepts small-order signatures with s = 0"
    );
}

#[test]
fn non_canonical_scalars_are_rejected_on_both_paths() {
    let k = Keypair::from_secret([5; 32]);
    let msg = b"scalar";
    let mut sig = k.sign(msg);
    // s + L is the same scalar mod L but a non-canonical encoding: ZIP-215 requires s < L.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let x = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        sig[32 + i] = x as u8;
        carry = x >> 8;
    }
    // s < L < 2^253, so s + L still fits in 32 bytes: the check always runs.
    assert!(carry == 0 && sig[63] & 0xe0 == 0);
    let single = verify(&k.author(), msg, &sig);
    assert!(single.is_err());
    assert_eq!(
        verify_batch(&[(k.author(), &msg[..], sig)], rng()),
        vec![single]
    );
}

#[test]
fn batch_finds_exactly_the_bad_signatures() {
    let keys: Vec<Keypair> = (0..20)
        .map(|i| Keypair::from_secret([i as u8 + 1; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("message {i}").into_bytes())
        .collect();
    let mut items: Vec<(AuthorId, &[u8], [u8; 64])> = keys
        .iter()
        .zip(&msgs)
        .map(|(k, m)| (k.author(), m.as_slice(), k.sign(m)))
        .collect();
    items[3].2[5] ^= 0x40;
    items[17].1 = b"forged";
    let res = verify_batch(&items, rng());
    for (i, r) in res.iter().enumerate() {
        assert_eq!(r.is_ok(), i != 3 && i != 17, "item {i}");
        assert_eq!(*r, verify(&items[i].0, items[i].1, &items[i].2));
    }
}
