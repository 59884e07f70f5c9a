//! `PUT /v1/organizations/{id}` and `PUT /v1/users/{id}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fleet_store::{Organization, User};
use serde::Deserialize;

use super::{ApiState, check_id, parse_body, store_rejection};
use crate::error::Rejection;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgBody {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    org_id: String,
    #[serde(default)]
    name: Option<String>,
}

fn status(created: bool) -> StatusCode {
    if created { StatusCode::CREATED } else { StatusCode::OK }
}

pub(super) async fn put_org(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Organization>), Rejection> {
    check_id("organization id", &id)?;
    let body: OrgBody = parse_body(&body)?;
    let org = Organization { id, name: body.name, ..Organization::default() };
    let created = state.store.upsert_organization(&org).await.map_err(store_rejection)?;
    Ok((status(created), Json(org)))
}

pub(super) async fn put_user(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<User>), Rejection> {
    check_id("user id", &id)?;
    let body: UserBody = parse_body(&body)?;
    check_id("org_id", &body.org_id)?;
    let user = User { id, org_id: body.org_id, name: body.name, ..User::default() };
    let created = state.store.upsert_user(&user).await.map_err(store_rejection)?;
    Ok((status(created), Json(user)))
}
