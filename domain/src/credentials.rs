//! Device-credential decisions: names and tags on Telnyx, expiry, which credentials to rotate,
//! which Telnyx credentials are orphans.
//!
//! Every Telnyx credential callfleet creates carries a deterministic `name` derived from the store
//! row it belongs to (`callfleet:<row id>`), so a provisioning attempt that crashed after Telnyx
//! created the credential but before the store recorded it is *adopted* by the next attempt (found
//! by name) instead of creating a ghost.
//!
//! The `tag` names the organization and one of [`TAG_SHARDS`] shards
//! (`callfleet-org:<org id>/<2 hex digits>`, the shard a hash of the row id): Telnyx holds at most
//! 1,000 credentials per tag, so one tag per organization would refuse its 1,001st device. Rows
//! created before the shards carry the bare `callfleet-org:<org id>`; both forms are ours
//! ([`org_of_tag`]). The orphan sweep lists the whole credential connection (Telnyx's listing
//! shows no tags) and takes our names as the mark of what is ours.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// Prefix of every tag callfleet puts on Telnyx credentials.
pub const TAG_PREFIX: &str = "callfleet-org:";
/// Prefix of every credential name callfleet gives.
pub const NAME_PREFIX: &str = "callfleet:";

/// How many tags one organization's credentials are spread over: one byte of a hash, so about
/// 240,000 devices per organization before the fullest of them reaches Telnyx's 1,000.
pub const TAG_SHARDS: usize = 256;

/// The Telnyx `tag` of the credential of store row `row_id` in `org_id` (deterministic, so a
/// retried or adopted creation uses the same one).
pub fn credential_tag(org_id: &str, row_id: &str) -> String {
    let shard = Sha256::digest(row_id.as_bytes())[0];
    format!("{TAG_PREFIX}{org_id}/{shard:02x}")
}

/// The organization a tag of ours names (sharded or the older bare form); `None` if not ours.
/// Organization ids never contain `/`, so the split is unambiguous.
pub fn org_of_tag(tag: &str) -> Option<&str> {
    let rest = tag.strip_prefix(TAG_PREFIX)?;
    Some(rest.split_once('/').map_or(rest, |(org, _)| org)).filter(|org| !org.is_empty())
}

/// The Telnyx `name` of the credential of store row `row_id` (deterministic: used for adoption).
pub fn credential_name(row_id: &str) -> String {
    format!("{NAME_PREFIX}{row_id}")
}

/// The store row a credential name points at, if it is one of ours.
pub fn row_of_name(name: &str) -> Option<&str> {
    name.strip_prefix(NAME_PREFIX).filter(|r| !r.is_empty())
}

/// Lifecycle state of a stored credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CredentialStatus {
    /// Row exists, Telnyx credential being created (a job is queued or running).
    Provisioning,
    /// Created on Telnyx and stored: dialable until `expires_at`.
    Active,
    /// Provisioning gave up; re-registering the device retries it.
    Failed,
    /// Being deleted on Telnyx (deregistration, rotation, expiry); never dialed.
    Deleting,
}

impl CredentialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Provisioning, Self::Active, Self::Failed, Self::Deleting].into_iter().find(|c| c.as_str() == s)
    }
}

/// A status word that is none of ours (a stored row edited by hand, or a bug).
#[derive(Debug, thiserror::Error)]
#[error("unknown credential status {0:?}")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for CredentialStatus {
    type Error = UnknownStatus;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or(UnknownStatus(s))
    }
}

/// Credential lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialPolicy {
    /// How long a new credential lives (`expires_at = now + ttl`).
    pub ttl: Duration,
    /// A credential this close to expiry is rotated.
    pub rotate_before: Duration,
    /// A Telnyx credential younger than this is never called an orphan (its provisioning may not
    /// have been recorded yet).
    pub orphan_grace: Duration,
}

impl Default for CredentialPolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::days(30),
            rotate_before: Duration::days(3),
            orphan_grace: Duration::minutes(15),
        }
    }
}

impl CredentialPolicy {
    pub fn expires_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.ttl
    }

    /// Whether an active credential expiring at `expires_at` is due for rotation at `now`. An
    /// already expired one is not rotated (the cleanup deletes it; re-registering makes a new one).
    pub fn should_rotate(&self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        expires_at > now && expires_at - now <= self.rotate_before
    }

    /// The instant below which `expires_at` means "rotate now".
    pub fn rotation_horizon(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.rotate_before
    }
}

/// Whether a credential may be dialed: active and not expired. The only rule routing uses.
pub fn dialable(status: CredentialStatus, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    status == CredentialStatus::Active && expires_at.is_none_or(|e| e > now)
}

/// A credential listed on Telnyx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCredential {
    pub id: String,
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// The Telnyx credentials with one of our names (`callfleet:<row>`; a listing does not show
/// tags) that the store does not know and that are older than the grace period. A credential
/// Telnyx lists without a creation date is aged by its name: the row id is a ULID, minted when
/// our row was, just before the credential; one whose age nothing tells is never swept (it could
/// be one being created right now, whose row is not committed yet).
pub fn orphans<'a>(
    remote: &'a [RemoteCredential],
    known_ids: &HashSet<String>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Vec<&'a RemoteCredential> {
    remote
        .iter()
        .filter(|c| row_of_name(&c.name).is_some())
        .filter(|c| !known_ids.contains(&c.id))
        .filter(|c| created(c).is_some_and(|t| now - t >= grace))
        .collect()
}

/// When a listed credential was created: Telnyx's date, else the time in its row id.
fn created(c: &RemoteCredential) -> Option<DateTime<Utc>> {
    c.created_at.or_else(|| {
        let row = row_of_name(&c.name)?.split(':').next()?;
        let ms = ulid::Ulid::from_string(row).ok()?.timestamp_ms();
        DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, 0, 0).unwrap()
    }

    #[test]
    fn names_and_tags_round_trip() {
        let tag = credential_tag("org:1", "01ABC");
        assert!(tag.starts_with("callfleet-org:org:1/") && tag.len() == "callfleet-org:org:1/".len() + 2);
        assert_eq!(tag, credential_tag("org:1", "01ABC"), "deterministic");
        assert_eq!(org_of_tag(&tag), Some("org:1"));
        assert_eq!(org_of_tag("callfleet-org:o1"), Some("o1"), "the bare form of older rows");
        assert_eq!(org_of_tag("callfleet-org:"), None);
        assert_eq!(org_of_tag("someone-else:o1"), None);
        assert_eq!(row_of_name(&credential_name("01ABC")), Some("01ABC"));
        assert_eq!(row_of_name("someone-else"), None);
        assert_eq!(row_of_name("callfleet:"), None);
        for s in ["provisioning", "active", "failed", "deleting"] {
            assert_eq!(CredentialStatus::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn a_large_organization_stays_under_telnyx_s_1000_per_tag() {
        let mut per_tag = std::collections::HashMap::<String, usize>::new();
        for i in 0..100_000 {
            *per_tag.entry(credential_tag("big", &format!("01J{i:020}"))).or_default() += 1;
        }
        assert_eq!(per_tag.len(), TAG_SHARDS);
        let fullest = per_tag.values().max().copied().unwrap_or_default();
        assert!(fullest < 1000, "100,000 devices: the fullest tag holds {fullest}");
    }

    #[test]
    fn only_active_unexpired_credentials_are_dialable() {
        let now = at(10);
        assert!(dialable(CredentialStatus::Active, Some(at(11)), now));
        assert!(!dialable(CredentialStatus::Active, Some(now), now));
        assert!(!dialable(CredentialStatus::Active, Some(at(9)), now));
        for s in [CredentialStatus::Provisioning, CredentialStatus::Failed, CredentialStatus::Deleting] {
            assert!(!dialable(s, Some(at(11)), now));
        }
    }

    #[test]
    fn rotation_window() {
        let p = CredentialPolicy { rotate_before: Duration::hours(2), ..CredentialPolicy::default() };
        let now = at(10);
        assert!(p.should_rotate(at(11), now));
        assert!(p.should_rotate(at(12), now));
        assert!(!p.should_rotate(at(13), now));
        assert!(!p.should_rotate(at(9), now), "expired ones are cleaned up, not rotated");
        assert_eq!(p.expires_at(now), now + Duration::days(30));
    }

    #[test]
    fn orphans_are_unknown_and_old_enough() {
        let now = at(10);
        let c = |id: &str, created, name: &str| RemoteCredential {
            id: id.into(),
            name: name.into(),
            created_at: created,
        };
        let remote = vec![
            c("known", Some(at(1)), "callfleet:r1"),
            c("old", Some(at(1)), "callfleet:r2"),
            c("young", Some(now), "callfleet:r3"),
            c("undated", None, "callfleet:r4:next"),
            c("not-ours", Some(at(1)), "pbx:front-desk"),
            c("unnamed", Some(at(1)), ""),
        ];
        let ulid_at = |t: DateTime<Utc>| ulid::Ulid::from_parts(t.timestamp_millis() as u64, 7).to_string();
        let mut remote = remote;
        remote.push(c("undated-old", None, &format!("callfleet:{}", ulid_at(at(1)))));
        remote.push(c("undated-young", None, &format!("callfleet:{}:next", ulid_at(now))));
        let known: HashSet<String> = ["known".to_string()].into();
        let got: Vec<&str> =
            orphans(&remote, &known, now, Duration::minutes(15)).iter().map(|c| c.id.as_str()).collect();
        // Before, every undated credential was swept at once, with no grace period.
        assert_eq!(got, vec!["old", "undated-old"]);
    }
}
