//! Compression of command batches on the gossip topic.
//!
//! A batch (a [`super::compact`] batch) is compressed with zstd when that makes it smaller, and
//! sent as it is otherwise; the frame says how ([`RAW`], [`PLAIN_ZSTD`], or a dictionary id).
//! Live traffic is mostly one small command per message, which plain zstd can hardly shrink; a
//! dictionary trained on generated realistic session traffic (`theta bench wire --train`) gives
//! the compressor the structure those messages share. The dictionary ships in the repository
//! (`src/net/dict/`), versioned by its id: each peer names the one it has in its Hello, and a
//! sender uses it only when every connected peer has it (plain zstd otherwise), so peers with
//! different dictionaries still talk.
//!
//! Decompression is bounded: the frame states the uncompressed size, which may be at most
//! [`MAX_RAW`], and output beyond it is an error.

use std::cell::RefCell;
use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail};
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// `dictionary` value of a batch sent uncompressed.
pub const RAW: u32 = u32::MAX;
/// `dictionary` value of a batch compressed with plain zstd (no dictionary).
pub const PLAIN_ZSTD: u32 = 0;
/// The dictionary this build ships (trained by `theta bench wire --train`).
pub const DICT_V1: u32 = 1;
/// The largest uncompressed batch accepted.
pub const MAX_RAW: usize = 1 << 20;
/// Level for plain zstd: batches of many commands, on the throughput path.
const LEVEL: i32 = 3;
/// Level with the dictionary: small messages (one edit's commands), where a higher level costs
/// microseconds and finds more of the shared structure.
const DICT_LEVEL: i32 = 9;
/// Batches up to this size use the dictionary (when every peer has it); bigger ones compress well
/// enough on their own.
pub const DICT_MAX_RAW: usize = 4096;

static DICT_V1_BYTES: &[u8] = include_bytes!("dict/v1.zdict");

fn encoder_v1() -> &'static EncoderDictionary<'static> {
    static D: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    D.get_or_init(|| EncoderDictionary::copy(DICT_V1_BYTES, DICT_LEVEL))
}

fn decoder_v1() -> &'static DecoderDictionary<'static> {
    static D: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    D.get_or_init(|| DecoderDictionary::copy(DICT_V1_BYTES))
}

thread_local! {
    // Compression contexts are a few hundred KB each: one per thread and kind, reused.
    static PLAIN: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static WITH_V1: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static UNPLAIN: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
    static UN_V1: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Size of the shipped dictionary, bytes.
pub fn dictionary_len() -> usize {
    DICT_V1_BYTES.len()
}

/// Whether this build can read batches compressed with `dictionary`.
pub fn knows(dictionary: u32) -> bool {
    matches!(dictionary, RAW | PLAIN_ZSTD | DICT_V1)
}

fn zstd_with(dictionary: u32, raw: &[u8]) -> Option<Vec<u8>> {
    let cell = if dictionary == DICT_V1 {
        &WITH_V1
    } else {
        &PLAIN
    };
    cell.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            let mut made = match dictionary {
                DICT_V1 => Compressor::with_prepared_dictionary(encoder_v1()).ok(),
                _ => Compressor::new(LEVEL).ok(),
            };
            // The message states its size and dictionary already, and QUIC checks integrity:
            // leave all three out of the zstd frame header (up to 9 bytes a message).
            if let Some(m) = made.as_mut() {
                use zstd::stream::raw::CParameter;
                for p in [
                    CParameter::ContentSizeFlag(false),
                    CParameter::DictIdFlag(false),
                    CParameter::ChecksumFlag(false),
                ] {
                    if m.set_parameter(p).is_err() {
                        made = None;
                        break;
                    }
                }
            }
            *c = made;
        }
        c.as_mut()?.compress(raw).ok()
    })
}

/// Compresses a batch with `dictionary` ([`PLAIN_ZSTD`] or [`DICT_V1`], which is used for
/// batches up to [`DICT_MAX_RAW`]); returns (what the frame names, raw length, bytes). Sent raw
/// when compression does not pay.
pub fn compress(raw: &[u8], dictionary: u32) -> (u32, u32, Vec<u8>) {
    let dictionary = if dictionary == DICT_V1 && raw.len() <= DICT_MAX_RAW {
        DICT_V1
    } else {
        PLAIN_ZSTD
    };
    let m = crate::telemetry::metrics();
    if let Some(z) = zstd_with(dictionary, raw)
        && z.len() < raw.len()
    {
        m.compressed(raw.len(), z.len());
        return (dictionary, raw.len() as u32, z);
    }
    m.compressed(raw.len(), raw.len());
    (RAW, raw.len() as u32, raw.to_vec())
}

/// Decompresses a batch, refusing unknown dictionaries and sizes that do not match.
pub fn decompress(dictionary: u32, raw_len: u32, data: &[u8]) -> Result<Vec<u8>> {
    let raw_len = raw_len as usize;
    if raw_len > MAX_RAW {
        bail!("a batch of {raw_len} bytes (at most {MAX_RAW})");
    }
    let unzstd = |cell: &'static std::thread::LocalKey<RefCell<Option<Decompressor<'static>>>>| {
        cell.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(if dictionary == DICT_V1 {
                    Decompressor::with_prepared_dictionary(decoder_v1())
                        .map_err(|e| anyhow!("zstd: {e}"))?
                } else {
                    Decompressor::new().map_err(|e| anyhow!("zstd: {e}"))?
                });
            }
            let d = d.as_mut().ok_or_else(|| anyhow!("zstd context"))?;
            d.decompress(data, raw_len)
                .map_err(|e| anyhow!("batch does not decompress: {e}"))
        })
    };
    let out = match dictionary {
        RAW => data.to_vec(),
        PLAIN_ZSTD => unzstd(&UNPLAIN)?,
        DICT_V1 => unzstd(&UN_V1)?,
        other => bail!("batch compressed with unknown dictionary {other}"),
    };
    if out.len() != raw_len {
        bail!("batch is {} bytes, its frame says {raw_len}", out.len());
    }
    Ok(out)
}

/// Trains a dictionary of at most `size` bytes on sample messages.
pub fn train(samples: &[Vec<u8>], size: usize) -> Result<Vec<u8>> {
    zstd::dict::from_samples(samples, size).map_err(|e| anyhow!("training the dictionary: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_lies() {
        let raw: Vec<u8> = (0..4000u32).map(|i| (i % 7) as u8).collect();
        assert_eq!(
            compress(&vec![5u8; DICT_MAX_RAW + 1], DICT_V1).0,
            PLAIN_ZSTD
        );
        for dict in [PLAIN_ZSTD, DICT_V1] {
            let (d, n, z) = compress(&raw, dict);
            assert_eq!(d, dict);
            assert!(z.len() < raw.len());
            assert_eq!(decompress(d, n, &z).unwrap(), raw);
            assert!(decompress(d, n - 1, &z).is_err());
            assert!(decompress(d, n + 1, &z).is_err());
            assert!(decompress(7, n, &z).is_err());
            assert!(decompress(d, u32::MAX - 1, &z).is_err());
            assert!(decompress(d, n, &z[..z.len() / 2]).is_err());
        }
        let (d, _, b) = compress(b"ab", DICT_V1);
        assert_eq!((d, &b[..]), (RAW, &b"ab"[..]));
        assert!(knows(DICT_V1) && !knows(2));
    }

    #[test]
    fn the_shipped_dictionary_is_a_trained_one() {
        // zstd dictionaries begin with this magic number; a raw-content file would not.
        assert_eq!(DICT_V1_BYTES.get(..4), Some(&[0x37, 0xa4, 0x30, 0xec][..]));
        assert!(DICT_V1_BYTES.len() >= 1024);
    }
}
