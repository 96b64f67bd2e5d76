//! Timestamps in SQLite: INTEGER microseconds since the Unix epoch, so they compare
//! correctly in SQL and round-trip exactly (to the microsecond, like Postgres).

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Sqlite, Type};
use time::OffsetDateTime;

/// An instant as stored: whole microseconds (finer digits are dropped, as Postgres does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Micros(pub OffsetDateTime);

impl From<Micros> for OffsetDateTime {
    fn from(m: Micros) -> Self {
        m.0
    }
}

impl Type<Sqlite> for Micros {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Micros {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        let micros = i64::try_from(self.0.unix_timestamp_nanos().div_euclid(1_000))?;
        <i64 as Encode<Sqlite>>::encode(micros, buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Micros {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let micros = <i64 as Decode<Sqlite>>::decode(value)?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)?;
        Ok(Self(at))
    }
}
