//! Recordings and their transcripts, call logs and the billing ledger, on both engines.
//!
//! `store_recording` inserts the row once (its primary key is Telnyx's recording id) and pushes
//! the jobs it was given — the transcription — in the same transaction, only when the row is new:
//! a copy job that runs again after its commit (at-least-once delivery) changes nothing.
//! `finish_transcript` settles a transcript that is not `done` yet (a `failed` one may still be
//! done by an operator's retry); a repeat after `done` changes nothing. `log_call` writes an
//! ended call's log line and ledger entry, and pushes its `call.log` event, in one transaction,
//! once per session.

use async_trait::async_trait;
use fleet_domain::call::{BillingKind, CallLog, LedgerEntry};
use fleet_store_macros::engines;

use super::{Affected, SqlStore, Ts};
use crate::recordings::{
    Recording, RecordingFailure, RecordingRequest, RequestStatus, Transcript, TranscriptStatus,
};
use crate::{NewJob, RecordingStore, StoreError};

const REQUEST_COLS: &str = "call_control_id, org_id, user_id, device_id, from_party, to_party, format, channels, \
                            status, detail, requested_at, settled_at";

const COLS: &str = "id, call_session_id, org_id, format, channels, object_key, sha256, size_bytes, duration_ms, \
                    started_at, ended_at, saved_at, stored_at, transcript_status, transcript, transcript_error, \
                    transcribed_at";

#[engines]
#[async_trait]
impl RecordingStore for SqlStore<DB> {
    async fn store_recording(&self, rec: &Recording, jobs: &[NewJob]) -> Result<bool, StoreError> {
        let mut tx = super::begin_write(&self.pool).await?;
        let sql = format!(
            "INSERT INTO recordings ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             ON CONFLICT (id) DO NOTHING"
        );
        let created = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&rec.id)
            .bind(&rec.call_session_id)
            .bind(&rec.org_id)
            .bind(&rec.format)
            .bind(&rec.channels)
            .bind(&rec.object_key)
            .bind(&rec.sha256)
            .bind(rec.size_bytes)
            .bind(rec.duration_ms)
            .bind(rec.started_at.map(Ts))
            .bind(rec.ended_at.map(Ts))
            .bind(Ts(rec.saved_at))
            .bind(self.now())
            .bind(TranscriptStatus::Pending.as_str())
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<Ts>)
            .execute(&mut *tx)
            .await?
            .affected()
            == 1;
        self.commit_if(tx, created, jobs).await
    }

    async fn recording(&self, id: &str) -> Result<Option<Recording>, StoreError> {
        let sql = format!("SELECT {COLS} FROM recordings WHERE id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?)
    }

    async fn call_recordings(&self, call_session_id: &str) -> Result<Vec<Recording>, StoreError> {
        let sql = format!("SELECT {COLS} FROM recordings WHERE call_session_id = $1 ORDER BY saved_at, id");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(call_session_id).fetch_all(&self.pool).await?)
    }

    async fn finish_transcript(&self, id: &str, outcome: &Transcript) -> Result<bool, StoreError> {
        let (status, text, error) = match outcome {
            Transcript::Done(text) => (TranscriptStatus::Done, Some(text.as_str()), None),
            Transcript::Failed(error) => (TranscriptStatus::Failed, None, Some(error.as_str())),
        };
        let done = sqlx::query(
            "UPDATE recordings SET transcript_status = $2, transcript = $3, transcript_error = $4, transcribed_at = $5
              WHERE id = $1 AND transcript_status <> 'done'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(text.map(str::to_owned))
        .bind(error.map(str::to_owned))
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(done.affected() == 1)
    }

    async fn record_recording_failure(
        &self,
        event_id: &str,
        call_session_id: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO recording_failures (event_id, call_session_id, reason, failed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(call_session_id)
        .bind(reason)
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(done.affected() == 1)
    }

    async fn recording_failures(&self, call_session_id: &str) -> Result<Vec<RecordingFailure>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT event_id, call_session_id, reason, failed_at FROM recording_failures
              WHERE call_session_id = $1 ORDER BY failed_at, event_id",
        )
        .bind(call_session_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn log_call(
        &self,
        log: &CallLog,
        entry: &LedgerEntry,
        jobs: &[NewJob],
    ) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(log).map_err(|e| StoreError::corrupt("call log", e))?;
        let now = self.now();
        let mut tx = super::begin_write(&self.pool).await?;
        let created = sqlx::query(
            "INSERT INTO call_logs (call_session_id, org_id, doc, ended_at, logged_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (call_session_id) DO NOTHING",
        )
        .bind(&log.call_session_id)
        .bind(&log.org_id)
        .bind(doc)
        .bind(Ts(log.ended_at))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .affected()
            == 1;
        if !created {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO billing_ledger
               (call_session_id, org_id, user_id, kind, billable_secs, billed_minutes, ended_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (call_session_id) DO NOTHING",
        )
        .bind(&entry.call_session_id)
        .bind(&entry.org_id)
        .bind(&entry.user_id)
        .bind(entry.kind.as_str())
        .bind(i64::try_from(entry.billable_secs).unwrap_or(i64::MAX))
        .bind(i64::try_from(entry.billed_minutes).unwrap_or(i64::MAX))
        .bind(Ts(log.ended_at))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.commit_with_jobs(tx, jobs).await?;
        Ok(true)
    }

    async fn call_log(&self, call_session_id: &str) -> Result<Option<(CallLog, LedgerEntry)>, StoreError> {
        let row: Option<(String, String, Option<String>, String, i64, i64)> = sqlx::query_as(
            "SELECT l.doc, b.org_id, b.user_id, b.kind, b.billable_secs, b.billed_minutes
               FROM call_logs l JOIN billing_ledger b ON b.call_session_id = l.call_session_id
              WHERE l.call_session_id = $1",
        )
        .bind(call_session_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((doc, org_id, user_id, kind, secs, minutes)) = row else { return Ok(None) };
        let log: CallLog = serde_json::from_str(&doc).map_err(|e| StoreError::corrupt("call log", e))?;
        let kind = BillingKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt("ledger entry", format!("unknown kind {kind:?}")))?;
        let entry = LedgerEntry {
            call_session_id: call_session_id.to_owned(),
            org_id,
            user_id,
            kind,
            billable_secs: u64::try_from(secs).unwrap_or(0),
            billed_minutes: u64::try_from(minutes).unwrap_or(0),
        };
        Ok(Some((log, entry)))
    }

    async fn recordings_stored_before(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<Recording>, StoreError> {
        let sql =
            format!("SELECT {COLS} FROM recordings WHERE stored_at < $1 ORDER BY stored_at, id LIMIT $2");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(Ts(before))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn delete_recordings(&self, ids: &[String]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!("DELETE FROM recordings WHERE {}", DB::in_json_ids("id", 1));
        let done =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::json_ids(ids)).execute(&self.pool).await?;
        Ok(done.affected())
    }

    async fn request_recording(&self, req: &RecordingRequest, jobs: &[NewJob]) -> Result<bool, StoreError> {
        let mut tx = super::begin_write(&self.pool).await?;
        let sql = format!(
            "INSERT INTO recording_requests ({REQUEST_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (call_control_id) DO NOTHING"
        );
        let created = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&req.call_control_id)
            .bind(&req.org_id)
            .bind(&req.user_id)
            .bind(&req.device_id)
            .bind(&req.from)
            .bind(&req.to)
            .bind(&req.format)
            .bind(&req.channels)
            .bind(RequestStatus::Pending.as_str())
            .bind(None::<String>)
            .bind(self.now())
            .bind(None::<Ts>)
            .execute(&mut *tx)
            .await?
            .affected()
            == 1;
        self.commit_if(tx, created, jobs).await
    }

    async fn recording_request(&self, call_control_id: &str) -> Result<Option<RecordingRequest>, StoreError> {
        let sql = format!("SELECT {REQUEST_COLS} FROM recording_requests WHERE call_control_id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(call_control_id).fetch_optional(&self.pool).await?)
    }

    async fn settle_recording_request(
        &self,
        call_control_id: &str,
        status: RequestStatus,
        detail: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE recording_requests SET status = $2, detail = $3, settled_at = $4
              WHERE call_control_id = $1 AND status = 'pending'",
        )
        .bind(call_control_id)
        .bind(status.as_str())
        .bind(detail.map(str::to_owned))
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(done.affected() == 1)
    }
}
