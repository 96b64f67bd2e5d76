//! Reading one setting: its `TESSERA_*` variable, else the file's value, else the default;
//! whole numbers checked against their bounds, with the setting named in every error.

use std::ops::RangeInclusive;

use anyhow::{Context, bail};

/// The environment as the configuration sees it (tests pass a map instead).
pub(super) struct Source<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Source<'a> {
    pub(super) fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { env }
    }

    /// The variable if set, else the file's value.
    pub(super) fn text(&self, name: &str, from_file: Option<String>) -> Option<String> {
        (self.env)(name).or(from_file)
    }

    /// Whole seconds, at least `min`.
    pub(super) fn secs(
        &self,
        name: &str,
        from_file: Option<i64>,
        default: i64,
        min: i64,
    ) -> anyhow::Result<i64> {
        let v = self.whole(name, from_file, default, " of seconds")?;
        if v < min {
            bail!("{name} must be at least {min} seconds");
        }
        Ok(v)
    }

    /// A count of one or more.
    pub(super) fn count(
        &self,
        name: &str,
        from_file: Option<i64>,
        default: i64,
    ) -> anyhow::Result<u32> {
        let v = self.secs(name, from_file, default, 1)?;
        u32::try_from(v).with_context(|| format!("{name} is too large"))
    }

    /// A whole number within `bounds`; `unit` (" seconds" or "") is named in the errors.
    pub(super) fn within(
        &self,
        name: &str,
        from_file: Option<i64>,
        default: i64,
        bounds: RangeInclusive<i64>,
        unit: &str,
    ) -> anyhow::Result<i64> {
        let of = if unit.is_empty() {
            String::new()
        } else {
            format!(" of{unit}")
        };
        let v = self.whole(name, from_file, default, &of)?;
        if !bounds.contains(&v) {
            bail!(
                "{name} must be between {} and {}{unit}",
                bounds.start(),
                bounds.end()
            );
        }
        Ok(v)
    }

    fn whole(
        &self,
        name: &str,
        from_file: Option<i64>,
        default: i64,
        of: &str,
    ) -> anyhow::Result<i64> {
        match (self.env)(name) {
            Some(raw) => raw
                .parse::<i64>()
                .with_context(|| format!("{name}: {raw:?} is not a whole number{of}")),
            None => Ok(from_file.unwrap_or(default)),
        }
    }
}

/// A default as the whole number a setting holds. The defaults all fit; were one not to,
/// the largest number stands in and the setting's bound refuses it, naming the setting.
pub(super) fn whole(default: impl TryInto<i64>) -> i64 {
    default.try_into().unwrap_or(i64::MAX)
}
