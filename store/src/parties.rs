//! Who a call's `from` is among ours: the one lookup the app API (a recording request) and the
//! webhooks pool (a direct call's first event) must agree on, written once over the port.
//!
//! A credential's SIP user (`sip:<user>@…` or bare) names its org, user and device; otherwise one
//! of our numbers names its org and receiving user. Anything else is no party of ours.

use fleet_domain::routing::sip_user;

use crate::{Store, StoreError};

/// The org (and, when known, user and device) a call's `from` belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub org_id: String,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
}

/// `from` as one of ours; see the module header.
pub async fn party(store: &dyn Store, from: &str) -> Result<Option<Party>, StoreError> {
    let user = sip_user(from);
    if !user.is_empty() {
        if let Some(cred) = store.credential_by_sip_username(user).await? {
            return Ok(Some(Party {
                org_id: cred.org_id,
                user_id: Some(cred.user_id),
                device_id: Some(cred.device_id),
            }));
        }
    }
    let number = store.number(from).await?;
    Ok(number.map(|n| Party { org_id: n.org_id, user_id: n.user_id, device_id: None }))
}
