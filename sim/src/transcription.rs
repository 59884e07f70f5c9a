//! The transcription stub behind `POST /v2/ai/audio/transcriptions`: which form fields Telnyx's
//! `AudioTranscriptionRequest` takes, how a bad one is reported, and a deterministic "transcript".
//!
//! # Design
//! No speech is recognised: the text is [`transcript_of`] the uploaded bytes, a pure function (byte count and
//! the start of the SHA-256), so a test computes the text a worker should have stored from the file it
//! uploaded, and two uploads of the same recording get the same text. `response_format` `verbose_json` adds
//! `duration` (seconds, [`crate::media::duration_secs`]) and one segment spanning it, for every model (Telnyx
//! documents model-dependent extras; the simulator does not model them). `language` is accepted and ignored.
//!
//! # Failure behaviour
//! Errors use FastAPI's `HTTPValidationError` shape, as the spec documents for this operation: 422
//! `{"detail": [{"loc": ["body", <field>], "msg", "type", …}]}`, one entry per problem: `model` or `file`
//! missing (`missing`, "Field required"), `model` / `response_format` not one of the spec's values (`enum`),
//! `file_url` (`value_error`: the simulator does not fetch URLs, and Telnyx forbids it together with
//! `file`). A body that is not multipart/form-data at all has no fields, so it gets the `missing` entries.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The `model` values the spec allows.
pub(crate) const MODELS: &[&str] =
    &["distil-whisper/distil-large-v2", "openai/whisper-large-v3-turbo", "deepgram/nova-3"];

/// The `response_format` values the spec allows.
pub(crate) const RESPONSE_FORMATS: &[&str] = &["json", "verbose_json"];

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The text the simulator "transcribes" from `bytes`:
/// `Simulated transcript of <n> bytes of audio (sha256 <first 12 hex digits>).`
pub fn transcript_of(bytes: &[u8]) -> String {
    let sha = sha256_hex(bytes);
    format!("Simulated transcript of {} bytes of audio (sha256 {}).", bytes.len(), &sha[..12])
}

/// A request that passed validation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Valid<'a> {
    pub model: &'a str,
    pub verbose: bool,
    pub file: &'a [u8],
}

fn detail(field: &str, msg: impl Into<String>, kind: &str, input: Option<&str>) -> Value {
    let mut d = json!({ "loc": ["body", field], "msg": msg.into(), "type": kind });
    if let Some(i) = input {
        d["input"] = json!(i);
    }
    d
}

fn one_of(allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("Input should be {} or {last}", rest.join(", ")),
        _ => format!("Input should be {}", quoted.join("")),
    }
}

/// Checks the text fields (`(name, value)`, first occurrence of each) and the uploaded file; the `Err` is
/// the `detail` array of a 422.
pub(crate) fn validate<'a>(
    fields: &'a [(String, String)],
    file: Option<&'a [u8]>,
) -> Result<Valid<'a>, Vec<Value>> {
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut errors = Vec::new();
    let model = get("model");
    match model {
        None => errors.push(detail("model", "Field required", "missing", None)),
        Some(m) if !MODELS.contains(&m) => errors.push(detail("model", one_of(MODELS), "enum", Some(m))),
        Some(_) => {}
    }
    let format = get("response_format").unwrap_or("json");
    if !RESPONSE_FORMATS.contains(&format) {
        errors.push(detail("response_format", one_of(RESPONSE_FORMATS), "enum", Some(format)));
    }
    match (file, get("file_url")) {
        (None, None) => errors.push(detail("file", "Field required", "missing", None)),
        (Some(_), Some(u)) => errors.push(detail(
            "file_url",
            "Value error, `file` and `file_url` cannot be used together",
            "value_error",
            Some(u),
        )),
        (None, Some(u)) => errors.push(detail(
            "file_url",
            "Value error, the simulator does not fetch `file_url`; upload the audio as `file`",
            "value_error",
            Some(u),
        )),
        (Some(_), None) => {}
    }
    match (model, file) {
        (Some(model), Some(file)) if errors.is_empty() => {
            Ok(Valid { model, verbose: format == "verbose_json", file })
        }
        _ => Err(errors),
    }
}

/// The 200 body (`AudioTranscriptionResponse`).
pub(crate) fn answer(v: &Valid<'_>) -> Value {
    let text = transcript_of(v.file);
    if !v.verbose {
        return json!({ "text": text });
    }
    let duration = crate::media::duration_secs(v.file);
    json!({
        "text": text,
        "duration": duration,
        "segments": [{ "id": 0, "start": 0.0, "end": duration, "text": text }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn transcript_is_a_pure_function_of_the_bytes() {
        assert_eq!(transcript_of(b"abc"), transcript_of(b"abc"));
        assert_ne!(transcript_of(b"abc"), transcript_of(b"abd"));
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(transcript_of(b"abc"), "Simulated transcript of 3 bytes of audio (sha256 ba7816bf8f01).");
    }

    #[test]
    fn validation_reports_every_problem() {
        let ok = fields(&[("model", "deepgram/nova-3"), ("response_format", "verbose_json")]);
        let v = validate(&ok, Some(b"x")).unwrap();
        assert_eq!((v.model, v.verbose), ("deepgram/nova-3", true));
        let e = validate(&[], None).unwrap_err();
        assert_eq!(e[0], json!({"loc": ["body", "model"], "msg": "Field required", "type": "missing"}));
        assert_eq!(e[1]["loc"], json!(["body", "file"]));
        let bad = fields(&[("model", "gpt"), ("response_format", "srt"), ("file_url", "http://x/a.mp3")]);
        let e = validate(&bad, Some(b"x")).unwrap_err();
        let locs: Vec<&Value> = e.iter().map(|d| &d["loc"][1]).collect();
        assert_eq!(locs, ["model", "response_format", "file_url"]);
        assert_eq!(e[1]["msg"], "Input should be 'json' or 'verbose_json'");
    }

    #[test]
    fn verbose_answer_has_duration_and_a_segment() {
        let wav = crate::media::wav(1);
        let a = answer(&Valid { model: MODELS[0], verbose: true, file: &wav });
        assert_eq!(a["duration"], 1.0);
        assert_eq!(a["segments"][0]["text"], a["text"]);
        assert_eq!(
            answer(&Valid { model: MODELS[0], verbose: false, file: &wav }),
            json!({"text": transcript_of(&wav)})
        );
    }
}
