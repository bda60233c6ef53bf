//! Compression of command batches on the gossip topic.
//!
//! A batch is compressed with zstd when that makes it smaller, and sent as it is otherwise; the
//! frame says which ([`RAW`], [`PLAIN_ZSTD`]). Decompression is bounded: the frame states the
//! uncompressed size, which may be at most [`MAX_RAW`], and output beyond it is an error.

use anyhow::{Result, bail};

/// `dictionary` value of a batch sent uncompressed.
pub const RAW: u32 = u32::MAX;
/// `dictionary` value of a batch compressed with plain zstd (no dictionary).
pub const PLAIN_ZSTD: u32 = 0;
/// The largest uncompressed batch accepted.
pub const MAX_RAW: usize = 1 << 20;
const LEVEL: i32 = 3;

/// Compresses a batch; returns (dictionary id, raw length, bytes).
pub fn compress(raw: &[u8]) -> (u32, u32, Vec<u8>) {
    if let Ok(z) = zstd::bulk::compress(raw, LEVEL)
        && z.len() < raw.len()
    {
        return (PLAIN_ZSTD, raw.len() as u32, z);
    }
    (RAW, raw.len() as u32, raw.to_vec())
}

/// Decompresses a batch, refusing unknown dictionaries and sizes that do not match.
pub fn decompress(dictionary: u32, raw_len: u32, data: &[u8]) -> Result<Vec<u8>> {
    let raw_len = raw_len as usize;
    if raw_len > MAX_RAW {
        bail!("a batch of {raw_len} bytes (at most {MAX_RAW})");
    }
    let out = match dictionary {
        RAW => data.to_vec(),
        PLAIN_ZSTD => zstd::bulk::decompress(data, raw_len)
            .map_err(|e| anyhow::anyhow!("batch does not decompress: {e}"))?,
        other => bail!("batch compressed with unknown dictionary {other}"),
    };
    if out.len() != raw_len {
        bail!("batch is {} bytes, its frame says {raw_len}", out.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_lies() {
        let raw: Vec<u8> = (0..4000u32).map(|i| (i % 7) as u8).collect();
        let (d, n, z) = compress(&raw);
        assert_eq!(d, PLAIN_ZSTD);
        assert!(z.len() < raw.len());
        assert_eq!(decompress(d, n, &z).unwrap(), raw);
        assert!(decompress(d, n - 1, &z).is_err());
        assert!(decompress(d, n + 1, &z).is_err());
        assert!(decompress(7, n, &z).is_err());
        assert!(decompress(d, u32::MAX - 1, &z).is_err());
        assert!(decompress(d, n, &z[..z.len() / 2]).is_err());
        let (d, _, b) = compress(b"ab");
        assert_eq!((d, &b[..]), (RAW, &b"ab"[..]));
    }
}
