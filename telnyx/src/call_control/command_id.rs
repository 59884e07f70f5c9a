//! Deterministic `command_id`s: the same job attempt, retried, sends the same id.
//!
//! Telnyx ignores a command whose `command_id` it has seen for the same `call_control_id` (dial:
//! for the account) — documented as a 60 s window; what it answers to the repeat is unverified
//! (see `call_control_api.md`, "command_id"). That window only helps if a retry carries the *same*
//! id, so ids are never random here: [`CommandId::derive`] hashes a caller-chosen key (e.g. the
//! job's idempotency key plus the step) with SHA-256 into a UUID-shaped string (version nibble 8,
//! RFC 9562 "custom"). Two different keys collide with probability ~2^-122. A caller that already
//! has a suitable id uses [`CommandId::new`].

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Domain separation, so a key hashed for another purpose never yields the same id.
const CONTEXT: &[u8] = b"callfleet/telnyx/command_id/v1\0";
/// Longest id accepted from a caller (Telnyx publishes no limit; UUIDs are 36).
const MAX_LEN: usize = 128;

/// The `command_id` of one Call Control command.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CommandId(String);

/// A caller-supplied id that cannot be sent (empty, longer than 128 bytes, or with control characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid command_id: {0}")]
pub struct InvalidCommandId(&'static str);

impl CommandId {
    /// A UUID-shaped id derived from `key` alone: the same key always gives the same id.
    pub fn derive(key: &str) -> Self {
        let digest = Sha256::new().chain_update(CONTEXT).chain_update(key.as_bytes()).finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0f) | 0x80; // version 8
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Self(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
    }

    /// [`CommandId::derive`] over several parts (e.g. job key, leg, step). Parts are
    /// length-prefixed, so `["ab", "c"]` and `["a", "bc"]` give different ids.
    pub fn derive_parts(parts: &[&str]) -> Self {
        let key: String = parts.iter().map(|p| format!("{}:{p};", p.len())).collect();
        Self::derive(&key)
    }

    /// An id the caller already has (plain string; sent as is).
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidCommandId> {
        let id = id.into();
        if id.is_empty() {
            return Err(InvalidCommandId("empty"));
        }
        if id.len() > MAX_LEN {
            return Err(InvalidCommandId("longer than 128 bytes"));
        }
        if id.chars().any(char::is_control) {
            return Err(InvalidCommandId("control characters"));
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_uuid_shaped_and_distinct() {
        let a = CommandId::derive("job-42:hangup");
        assert_eq!(a, CommandId::derive("job-42:hangup"));
        assert_ne!(a, CommandId::derive("job-42:bridge"));
        let s = a.as_str();
        assert_eq!(s.len(), 36);
        let groups: Vec<usize> = s.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&s[14..15], "8", "version nibble");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "variant");
        assert!(s.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn parts_are_unambiguous() {
        assert_ne!(CommandId::derive_parts(&["ab", "c"]), CommandId::derive_parts(&["a", "bc"]));
        assert_eq!(CommandId::derive_parts(&["j", "1"]), CommandId::derive_parts(&["j", "1"]));
    }

    #[test]
    fn plain_ids_are_checked() {
        assert_eq!(CommandId::new("abc").map(|c| c.to_string()), Ok("abc".to_owned()));
        assert!(CommandId::new("").is_err());
        assert!(CommandId::new("a\nb").is_err());
        assert!(CommandId::new("x".repeat(129)).is_err());
    }
}
