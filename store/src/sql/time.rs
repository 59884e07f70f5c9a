//! One time type for both engines: `TIMESTAMPTZ` on PostgreSQL, integer Unix milliseconds on
//! SQLite (which has no time type; integers compare and range exactly and index well).
//!
//! Shared SQL binds [`Ts`] (or `Option<Ts>`) wherever it stores a time, and row types decode
//! their time columns through it (`#[sqlx(try_from = "Ts")]`, `#[sqlx(try_from = "OptTs")]`), so
//! each row type derives `FromRow` once for both engines. A SQLite value that is not a valid
//! millisecond timestamp decodes as an error (corrupt data), never as a silent default.
//!
//! apalis's queue tables keep their own times: [`QueueTs`] is `TIMESTAMPTZ` on PostgreSQL and
//! whole Unix seconds on SQLite (apalis-sqlite's `run_at`, `lock_at`, `done_at`).

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

/// A time in apalis's queue tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueTs(pub DateTime<Utc>);

/// A nullable time column of apalis's queue tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptQueueTs(pub Option<DateTime<Utc>>);

impl From<OptQueueTs> for Option<DateTime<Utc>> {
    fn from(t: OptQueueTs) -> Self {
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

// ---- apalis's queue times: TIMESTAMPTZ on PostgreSQL, Unix seconds on SQLite ----

impl Type<Postgres> for QueueTs {
    fn type_info() -> PgTypeInfo {
        <Ts as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for QueueTs {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Ts as Encode<Postgres>>::encode_by_ref(&Ts(self.0), buf)
    }
}

impl<'r> Decode<'r, Postgres> for QueueTs {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(<Ts as Decode<Postgres>>::decode(value)?.0))
    }
}

impl Type<Sqlite> for QueueTs {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for QueueTs {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Sqlite>>::encode_by_ref(&self.0.timestamp(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for QueueTs {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let secs = <i64 as Decode<Sqlite>>::decode(value)?;
        Utc.timestamp_opt(secs, 0)
            .single()
            .map(Self)
            .ok_or_else(|| format!("{secs} is not a queue time").into())
    }
}

// ---- the nullable forms, on both ----

macro_rules! nullable {
    ($opt:ident, $inner:ident, $db:ty, $info:ty, $value:ty) => {
        impl Type<$db> for $opt {
            fn type_info() -> $info {
                <$inner as Type<$db>>::type_info()
            }

            fn compatible(ty: &$info) -> bool {
                <$inner as Type<$db>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, $db> for $opt {
            fn decode(value: $value) -> Result<Self, BoxDynError> {
                if value.is_null() {
                    return Ok(Self(None));
                }
                Ok(Self(Some(<$inner as Decode<$db>>::decode(value)?.0)))
            }
        }
    };
}

nullable!(OptTs, Ts, Postgres, PgTypeInfo, PgValueRef<'r>);
nullable!(OptTs, Ts, Sqlite, SqliteTypeInfo, SqliteValueRef<'r>);
nullable!(OptQueueTs, QueueTs, Postgres, PgTypeInfo, PgValueRef<'r>);
nullable!(OptQueueTs, QueueTs, Sqlite, SqliteTypeInfo, SqliteValueRef<'r>);
