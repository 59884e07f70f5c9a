//! One time type for both engines: `TIMESTAMPTZ` on PostgreSQL, integer Unix milliseconds on
//! SQLite (which has no time type; integers compare and range exactly and index well).
//!
//! Shared SQL binds [`Ts`] (or `Option<Ts>`) wherever it stores a time, and row types decode
//! their time columns through it (`#[sqlx(try_from = "Ts")]`, `#[sqlx(try_from = "OptTs")]`), so
//! each row type derives `FromRow` once for both engines. A SQLite value that is not a valid
//! millisecond timestamp decodes as an error (corrupt data), never as a silent default.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type, ValueRef};

/// A point in time as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts(pub DateTime<Utc>);

/// A nullable time column, for decoding into `Option<DateTime<Utc>>` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptTs(pub Option<DateTime<Utc>>);

impl From<Ts> for DateTime<Utc> {
    fn from(t: Ts) -> Self {
        t.0
    }
}

impl From<OptTs> for Option<DateTime<Utc>> {
    fn from(t: OptTs) -> Self {
        t.0
    }
}

/// `Some(t)` as a bindable value.
pub fn opt(t: Option<DateTime<Utc>>) -> Option<Ts> {
    t.map(Ts)
}

// ---- PostgreSQL: TIMESTAMPTZ, exactly as chrono's own mapping ----

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl PgHasArrayType for Ts {
    fn array_type_info() -> PgTypeInfo {
        <DateTime<Utc> as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(<DateTime<Utc> as Decode<Postgres>>::decode(value)?))
    }
}

// ---- SQLite: INTEGER milliseconds since the Unix epoch ----

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Sqlite>>::encode_by_ref(&self.0.timestamp_millis(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let ms = <i64 as Decode<Sqlite>>::decode(value)?;
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(Self)
            .ok_or_else(|| format!("{ms} is not a timestamp").into())
    }
}

// ---- the nullable form, on both ----

macro_rules! nullable {
    ($db:ty, $info:ty, $value:ty) => {
        impl Type<$db> for OptTs {
            fn type_info() -> $info {
                <Ts as Type<$db>>::type_info()
            }

            fn compatible(ty: &$info) -> bool {
                <Ts as Type<$db>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, $db> for OptTs {
            fn decode(value: $value) -> Result<Self, BoxDynError> {
                if value.is_null() {
                    return Ok(Self(None));
                }
                Ok(Self(Some(<Ts as Decode<$db>>::decode(value)?.0)))
            }
        }
    };
}

nullable!(Postgres, PgTypeInfo, PgValueRef<'r>);
nullable!(Sqlite, SqliteTypeInfo, SqliteValueRef<'r>);
