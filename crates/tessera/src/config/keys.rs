//! Where the master key comes from (`TESSERA_MASTER_KEY`, `TESSERA_MASTER_KEY_FILE`) and
//! the earlier keys kept while rotating (`TESSERA_MASTER_KEY_PREVIOUS`). Neither type's
//! `Debug` shows a key.

use std::path::PathBuf;

use super::source::Source;

/// The key file used when no key is given: created on first start (a development
/// convenience, see docs/configuration.md).
const DEFAULT_FILE: &str = "tessera-master.key";

/// Where the master key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// Base64 of 32 bytes, given directly (`TESSERA_MASTER_KEY`).
    Inline(String),
    /// A file holding the base64 key; created (mode 0600) when missing.
    File(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline([redacted])"),
            Self::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl MasterKeySource {
    /// An inline key (variable or file) wins over a key file; the variable's file over
    /// the file's.
    pub(super) fn resolve(
        src: &Source,
        inline: Option<String>,
        file_path: Option<PathBuf>,
    ) -> Self {
        match (
            src.text("TESSERA_MASTER_KEY", inline),
            src.text("TESSERA_MASTER_KEY_FILE", None),
        ) {
            (Some(inline), _) => Self::Inline(inline),
            (None, Some(path)) => Self::File(path.into()),
            (None, None) => Self::File(file_path.unwrap_or_else(|| PathBuf::from(DEFAULT_FILE))),
        }
    }
}

/// Earlier master keys (base64 of 32 bytes each), kept only to open values sealed before
/// a rotation. `Debug` shows how many there are, never the keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PreviousMasterKeys(Vec<String>);

impl PreviousMasterKeys {
    pub fn new(keys: Vec<String>) -> Self {
        Self(keys)
    }

    /// The keys as configured (base64).
    pub fn encoded(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The variable (comma-separated) replaces the file's list; blank entries are dropped.
    pub(super) fn resolve(src: &Source, from_file: Option<Vec<String>>) -> Self {
        let keys = match src.text("TESSERA_MASTER_KEY_PREVIOUS", None) {
            Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
            None => from_file.unwrap_or_default(),
        };
        Self::new(keys.into_iter().filter(|s| !s.trim().is_empty()).collect())
    }
}

impl std::fmt::Debug for PreviousMasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreviousMasterKeys([redacted; {}])", self.0.len())
    }
}
