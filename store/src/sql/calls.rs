//! Calls, on both engines: the state machine's value as JSON plus the columns the API reads.
//!
//! Every change is a compare-and-set on `version` committed together with the jobs it causes
//! (the outbox): a worker that dies before the commit leaves nothing behind; after the commit,
//! every follow-up job exists and runs even if that worker never comes back. Two workers that
//! decide about one call at once cannot both win: the loser's `UPDATE … WHERE version = $n`
//! changes no row and its transaction (jobs included) rolls back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_domain::call::Call;
use fleet_store_macros::engines;

use super::{Affected, SqlStore, Ts};
use crate::{CallStore, NewJob, StoreError};

fn encode(call: &Call) -> Result<String, StoreError> {
    serde_json::to_string(call).map_err(|e| StoreError::corrupt("call", e))
}

fn decode(doc: &str) -> Result<Call, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::corrupt("call", e))
}

#[engines]
#[async_trait]
impl CallStore for SqlStore<DB> {
    async fn call(&self, call_session_id: &str) -> Result<Option<Call>, StoreError> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM calls WHERE call_session_id = $1")
            .bind(call_session_id)
            .fetch_optional(&self.pool)
            .await?;
        doc.as_deref().map(decode).transpose()
    }

    async fn create_call(&self, call: &Call, jobs: &[NewJob]) -> Result<bool, StoreError> {
        let mut tx = super::begin_write(&self.pool).await?;
        let created = sqlx::query(
            "INSERT INTO calls (call_session_id, org_id, user_id, state, version, doc, started_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (call_session_id) DO NOTHING",
        )
        .bind(&call.id)
        .bind(&call.org_id)
        .bind(&call.user_id)
        .bind(call.state.as_str())
        .bind(call.version as i64)
        .bind(encode(call)?)
        .bind(Ts(call.started_at))
        .bind(self.now())
        .execute(&mut *tx)
        .await?
        .affected()
            == 1;
        self.commit_if(tx, created, jobs).await
    }

    async fn transition_call(
        &self,
        expected_version: u64,
        next: &Call,
        jobs: &[NewJob],
    ) -> Result<bool, StoreError> {
        let mut tx = super::begin_write(&self.pool).await?;
        let won = sqlx::query(
            "UPDATE calls SET state = $3, version = $4, doc = $5, user_id = $6, updated_at = $7
              WHERE call_session_id = $1 AND version = $2",
        )
        .bind(&next.id)
        .bind(expected_version as i64)
        .bind(next.state.as_str())
        .bind(next.version as i64)
        .bind(encode(next)?)
        .bind(&next.user_id)
        .bind(self.now())
        .execute(&mut *tx)
        .await?
        .affected()
            == 1;
        self.commit_if(tx, won, jobs).await
    }

    async fn live_call_of_user(&self, user_id: &str) -> Result<Option<Call>, StoreError> {
        let doc: Option<String> = sqlx::query_scalar(
            "SELECT doc FROM calls WHERE user_id = $1 AND state <> 'ended' ORDER BY started_at DESC LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        doc.as_deref().map(decode).transpose()
    }

    async fn stuck_calls(&self, started_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM calls
              WHERE state <> 'ended' AND state IN ('routing', 'ringing') AND started_at < $1",
        )
        .bind(Ts(started_before))
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }
}
