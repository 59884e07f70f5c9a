//! Device-credential decisions: names and tags on Telnyx, expiry, which credentials to rotate,
//! which Telnyx credentials are orphans.
//!
//! Every Telnyx credential callfleet creates carries a deterministic `name` derived from the store
//! row it belongs to (`callfleet:<row id>`), so a provisioning attempt that crashed after Telnyx
//! created the credential but before the store recorded it is *adopted* by the next attempt (found
//! by name) instead of creating a ghost. The `tag` is per organization (`callfleet-org:<org id>`),
//! which is how the orphan sweep lists what is ours.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

/// Prefix of every tag callfleet puts on Telnyx credentials.
pub const TAG_PREFIX: &str = "callfleet-org:";
/// Prefix of every credential name callfleet gives.
pub const NAME_PREFIX: &str = "callfleet:";

/// The Telnyx `tag` of an organization's credentials.
pub fn org_tag(org_id: &str) -> String {
    format!("{TAG_PREFIX}{org_id}")
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The Telnyx credentials (listed by one of our tags) that the store does not know and that are
/// older than the grace period.
pub fn orphans<'a>(
    remote: &'a [RemoteCredential],
    known_ids: &HashSet<String>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Vec<&'a RemoteCredential> {
    remote
        .iter()
        .filter(|c| !known_ids.contains(&c.id))
        .filter(|c| c.created_at.is_none_or(|t| now - t >= grace))
        .collect()
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
        assert_eq!(org_tag("o1"), "callfleet-org:o1");
        assert_eq!(row_of_name(&credential_name("01ABC")), Some("01ABC"));
        assert_eq!(row_of_name("someone-else"), None);
        assert_eq!(row_of_name("callfleet:"), None);
        for s in ["provisioning", "active", "failed", "deleting"] {
            assert_eq!(CredentialStatus::parse(s).unwrap().as_str(), s);
        }
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
        let c =
            |id: &str, created| RemoteCredential { id: id.into(), name: String::new(), created_at: created };
        let remote =
            vec![c("known", Some(at(1))), c("old", Some(at(1))), c("young", Some(now)), c("undated", None)];
        let known: HashSet<String> = ["known".to_string()].into();
        let got: Vec<&str> =
            orphans(&remote, &known, now, Duration::minutes(15)).iter().map(|c| c.id.as_str()).collect();
        assert_eq!(got, vec!["old", "undated"]);
    }
}
