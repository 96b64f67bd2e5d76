//! Loading (or, on a development machine, creating) the master key that seals secrets
//! at rest.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use data_encoding::BASE64;
use tessera_core::crypto::MasterKey;
use zeroize::Zeroizing;

use crate::config::MasterKeySource;

pub fn load(source: &MasterKeySource) -> anyhow::Result<MasterKey> {
    match source {
        MasterKeySource::Inline(b64) => decode(b64).context("TESSERA_MASTER_KEY"),
        MasterKeySource::File(path) if path.exists() => {
            warn_if_readable_by_others(path);
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading master key file {}", path.display()))?,
            );
            decode(text.trim()).with_context(|| format!("master key file {}", path.display()))
        }
        MasterKeySource::File(path) => create(path),
    }
}

fn decode(b64: &str) -> anyhow::Result<MasterKey> {
    let bytes = Zeroizing::new(
        BASE64
            .decode(b64.trim().as_bytes())
            .context("not valid base64")?,
    );
    let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        bail!("must be base64 of exactly 32 bytes (generate one with `openssl rand -base64 32`)");
    };
    Ok(MasterKey::from_bytes(key))
}

fn create(path: &Path) -> anyhow::Result<MasterKey> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut()).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating master key file {}", path.display()))?;
    let encoded = Zeroizing::new(BASE64.encode(key.as_ref()));
    file.write_all(encoded.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    let master = MasterKey::from_bytes(*key);
    tracing::warn!(
        path = %path.display(),
        key_id = %master.id_hex(),
        "!!! DEVELOPMENT MASTER KEY CREATED !!! Secrets at rest are sealed with a key stored \
         next to the database. Fine for a laptop; in production set TESSERA_MASTER_KEY \
         (base64 of 32 random bytes) from your secret manager."
    );
    Ok(master)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "master key file is readable by group or others; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_file_is_created_private_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("tessera-mk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.key");
        let _ = std::fs::remove_file(&path);
        let first = load(&MasterKeySource::File(path.clone())).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let second = load(&MasterKeySource::File(path.clone())).unwrap();
        assert_eq!(first.id_hex(), second.id_hex());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_inline_key_must_be_32_bytes_of_base64() {
        assert!(load(&MasterKeySource::Inline(BASE64.encode(&[7; 32]))).is_ok());
        assert!(load(&MasterKeySource::Inline(BASE64.encode(&[7; 16]))).is_err());
        assert!(load(&MasterKeySource::Inline("%%%".into())).is_err());
    }
}
