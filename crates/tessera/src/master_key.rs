//! Loading (or, on a development machine, creating) the master key that seals secrets
//! at rest, and the previous master keys kept to open values sealed before a rotation.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use data_encoding::BASE64;
use tessera_core::crypto::{MasterKey, MasterKeyRing};
use zeroize::Zeroizing;

use crate::config::{MasterKeySource, PreviousMasterKeys};

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

/// The current key (as [`load`]) and every previous key. Errors name the setting and the
/// position of a bad previous key, never its value.
pub fn load_ring(
    source: &MasterKeySource,
    previous: &PreviousMasterKeys,
) -> anyhow::Result<MasterKeyRing> {
    let current = load(source)?;
    let previous = previous
        .encoded()
        .iter()
        .enumerate()
        .map(|(i, b64)| {
            decode(b64).with_context(|| format!("TESSERA_MASTER_KEY_PREVIOUS entry {}", i + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ring = MasterKeyRing::new(current, previous);
    if !ring.previous().is_empty() {
        let ids: Vec<String> = ring.previous().iter().map(MasterKey::id_hex).collect();
        tracing::info!(
            current = %ring.current().id_hex(),
            previous = %ids.join(","),
            "previous master keys loaded; they only open values sealed before a rotation"
        );
    }
    Ok(ring)
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
    fn previous_keys_are_loaded_next_to_the_current_one_and_checked() {
        let current = MasterKeySource::Inline(BASE64.encode(&[7; 32]));
        let ring = load_ring(
            &current,
            &PreviousMasterKeys::new(vec![BASE64.encode(&[8; 32]), BASE64.encode(&[7; 32])]),
        )
        .unwrap();
        assert_eq!(
            ring.current().id_hex(),
            MasterKey::from_bytes([7; 32]).id_hex()
        );
        let ids: Vec<String> = ring.previous().iter().map(MasterKey::id_hex).collect();
        assert_eq!(ids, [MasterKey::from_bytes([8; 32]).id_hex()]);
        let bad = BASE64.encode(&[8; 16]);
        let err = load_ring(
            &current,
            &PreviousMasterKeys::new(vec![BASE64.encode(&[8; 32]), bad.clone()]),
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("TESSERA_MASTER_KEY_PREVIOUS entry 2"),
            "{text}"
        );
        assert!(!text.contains(&bad), "{text}");
    }

    #[test]
    fn an_inline_key_must_be_32_bytes_of_base64() {
        assert!(load(&MasterKeySource::Inline(BASE64.encode(&[7; 32]))).is_ok());
        assert!(load(&MasterKeySource::Inline(BASE64.encode(&[7; 16]))).is_err());
        assert!(load(&MasterKeySource::Inline("%%%".into())).is_err());
    }
}
