//! The user's persistent identity: one ed25519 key, created on first use in the user's data
//! directory and read back on every later run. Its public key is the author of every command the
//! user signs (and, once sessions run over iroh, the endpoint id).
//!
//! The file (`<data dir>/theta/identity.key`) is the magic `THETAKEY` followed by the 32 secret
//! bytes. It is created with mode 0600, written to a temporary name and renamed into place, so a
//! crash never leaves half a key. A file of the wrong size or magic is an error naming it, and is
//! never overwritten: losing a key silently would make the user a stranger to their sessions.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use theta_crdt::sign::Keypair;

const MAGIC: &[u8; 8] = b"THETAKEY";

/// The user's data directory for Theta: `$XDG_DATA_HOME/theta`, else `$HOME/.local/share/theta`.
pub fn data_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("theta"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set: nowhere to keep the identity")?;
    Ok(PathBuf::from(home).join(".local/share/theta"))
}

/// The identity in `dir`, created there if there is none yet.
pub fn load_or_create(dir: &Path) -> Result<Keypair> {
    load_or_create_secret(dir).map(Keypair::from_secret)
}

/// The identity's 32 secret bytes (the network endpoint is keyed with them too).
pub fn load_or_create_secret(dir: &Path) -> Result<[u8; 32]> {
    let path = dir.join("identity.key");
    match fs::read(&path) {
        Ok(bytes) => parse(&bytes).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir, &path),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn parse(bytes: &[u8]) -> Result<[u8; 32]> {
    if bytes.len() != MAGIC.len() + 32 || &bytes[..8] != MAGIC {
        bail!(
            "not a Theta identity file (expected {} bytes starting THETAKEY)",
            40
        );
    }
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&bytes[8..]);
    Ok(secret)
}

fn create(dir: &Path, path: &Path) -> Result<[u8; 32]> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|e| anyhow::anyhow!("drawing a new key: {e}"))?;
    let tmp = dir.join(format!(".identity.key.tmp{}", std::process::id()));
    let write = || -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        // The mode given at creation is filtered by the umask; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(MAGIC)?;
        f.write_all(&secret)?;
        f.sync_all()?;
        // Never replace a key another process created meanwhile.
        fs::hard_link(&tmp, path).with_context(|| format!("creating {}", path.display()))?;
        Ok(())
    };
    let r = write();
    let _ = fs::remove_file(&tmp);
    if let Err(e) = r {
        // Someone else made one first: use theirs.
        if let Ok(bytes) = fs::read(path) {
            return parse(&bytes).with_context(|| format!("reading {}", path.display()));
        }
        return Err(e);
    }
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(secret)
}
