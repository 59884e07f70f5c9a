//! The timeline as pages a person reads in a browser: an index of calls (`GET /sim/timeline`) and one
//! page per call (`GET /sim/timeline/{call_session_id}`): its legs, then every entry in order with its
//! sim time, the time since the call's first entry, the leg it concerns and a one-line summary; the
//! entry's data unfolds on click. Plain HTML and CSS, no script; every value is escaped.

use std::fmt::Write;

use super::{CallSummary, CallTimeline, EntryKind};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:3px 8px;\
text-align:left;vertical-align:top}th{background:#f4f4f4}code,pre{font:12px ui-monospace,monospace}\
pre{white-space:pre-wrap;margin:4px 0}tr.webhook td.k{color:#05a}tr.command td.k{color:#a50}\
tr.push td.k{color:#080}tr.app_event td.k{color:#708}tr.anomaly{background:#fdd}\
summary{cursor:pointer}.n{text-align:right;white-space:nowrap}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\
         <body>{body}</body></html>",
        escape(title)
    )
}

fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Webhook => "webhook",
        EntryKind::Command => "command",
        EntryKind::Push => "push",
        EntryKind::AppEvent => "app_event",
        EntryKind::Anomaly => "anomaly",
    }
}

/// The index of calls.
pub fn index(calls: &[CallSummary]) -> String {
    let mut b = String::from(
        "<h1>Calls</h1><table><tr><th>started (ms)</th><th>call_session_id</th>\
        <th>from</th><th>to</th><th>legs</th><th>live</th><th>anomalies</th></tr>",
    );
    for c in calls {
        let id = escape(&c.call_session_id);
        let _ = write!(
            b,
            "<tr{}><td class=\"n\">{}</td><td><a href=\"/sim/timeline/{id}\"><code>{id}</code></a></td>\
             <td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if c.anomalies > 0 { " class=\"anomaly\"" } else { "" },
            c.start_ms,
            escape(&c.from),
            escape(&c.to),
            c.legs,
            c.live_legs,
            c.anomalies
        );
    }
    if calls.is_empty() {
        b.push_str("<tr><td colspan=\"7\">No calls yet.</td></tr>");
    }
    b.push_str("</table>");
    page("callfleet simulator: calls", &b)
}

/// One call's page.
pub fn call(t: &CallTimeline) -> String {
    let mut b = format!(
        "<p><a href=\"/sim/timeline\">← all calls</a> · <a href=\"/sim/calls/{0}/timeline\">JSON</a></p>\
         <h1>Call <code>{0}</code></h1><h2>Legs</h2><table><tr><th>leg</th><th>direction</th><th>from</th>\
         <th>to</th><th>state</th><th>hangup</th><th>start / answer / end (ms)</th></tr>",
        escape(&t.call_session_id)
    );
    // Legs get short names (A, B, …) in the order they started, used in the entries below.
    let name = |ccid: &str| {
        t.legs.iter().position(|l| l.call_control_id == ccid).map(|i| {
            let letter = (b'A' + (i % 26) as u8) as char;
            if i < 26 { letter.to_string() } else { format!("{letter}{}", i / 26) }
        })
    };
    for l in &t.legs {
        let ms = |v: Option<u64>| v.map_or("–".to_owned(), |v| v.to_string());
        let _ = write!(
            b,
            "<tr><td><b>{}</b> <code>{}</code></td><td>{:?}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td>\
             <td class=\"n\">{} / {} / {}</td></tr>",
            name(&l.call_control_id).unwrap_or_default(),
            escape(&l.call_control_id),
            l.direction,
            escape(&l.from),
            escape(&l.to),
            l.state,
            escape(&l.hangup_cause.clone().unwrap_or_default()),
            l.start_ms,
            ms(l.answered_ms),
            ms(l.ended_ms)
        );
    }
    b.push_str(
        "</table><h2>Timeline</h2><table><tr><th>sim ms</th><th>+ms</th><th>time</th><th>kind</th>\
        <th>leg</th><th>what</th></tr>",
    );
    let t0 = t.entries.first().map_or(0, |e| e.at_ms);
    for e in &t.entries {
        let k = kind_name(e.kind);
        let leg = e.call_control_id.as_deref().and_then(name).unwrap_or_default();
        let detail = serde_json::to_string_pretty(&e.detail).unwrap_or_default();
        let _ = write!(
            b,
            "<tr class=\"{k}\"><td class=\"n\">{}</td><td class=\"n\">+{}</td><td>{}</td><td class=\"k\">{k}</td>\
             <td>{leg}</td><td><details><summary>{}</summary><pre>{}</pre></details></td></tr>",
            e.at_ms,
            e.at_ms - t0,
            escape(&e.at),
            escape(&e.summary),
            escape(&detail)
        );
    }
    b.push_str("</table>");
    page(&format!("call {}", t.call_session_id), &b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(super::escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
