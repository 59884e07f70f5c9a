//! The API's path parameters: each handler extracts the struct its `#[utoipa::path]` documents,
//! so the document's parameter names are the ones the router binds. The patterns say what the
//! handlers check (`check_id`, `validate_e164`); a value outside them gets `400`.

use serde::Deserialize;
use utoipa::IntoParams;

/// `{id}`: an id the app chose.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct IdPath {
    /// 1 to 128 of `A-Z a-z 0-9 . _ : -`
    #[param(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub id: String,
}

/// `{e164}`: one of the app's numbers.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct E164Path {
    /// E.164 with a literal + (percent-encoded %2B is accepted too)
    #[param(pattern = "^\\+[1-9][0-9]{1,14}$", example = "+15551234567")]
    pub e164: String,
}

/// `{id}` (an organization) and `{e164}` (a caller).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct OrgNumberPath {
    /// the organization: 1 to 128 of `A-Z a-z 0-9 . _ : -`
    #[param(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub id: String,
    /// the caller, E.164 with a literal + (percent-encoded %2B is accepted too)
    #[param(pattern = "^\\+[1-9][0-9]{1,14}$", example = "+15551234567")]
    pub e164: String,
}

/// `{call_session_id}`: Telnyx's id of a call.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct SessionPath {
    /// Telnyx call_session_id
    #[param(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub call_session_id: String,
}

/// `{call_control_id}`: Telnyx's id of one leg.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ControlPath {
    /// Telnyx call_control_id
    #[param(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub call_control_id: String,
}
