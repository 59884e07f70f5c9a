//! The `/sim/push/` control API.

use serde_json::{Value, json};

use super::{APNS_TOKEN, apns_jwt, call_message, start};

#[tokio::test]
async fn script_log_and_keys_over_http() {
    let h = start().await;
    let put = h
        .http
        .put(format!("{}/sim/push/scripts/fcm/tok-ctl", h.base))
        .json(&json!({"steps": [{"kind": "retry_after", "status": 503, "after_ms": 1000}, {"kind": "ok"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let bad =
        h.http.put(format!("{}/sim/push/scripts/gcm/tok-ctl", h.base)).json(&json!({})).send().await.unwrap();
    assert!(bad.status().is_client_error());
    let bad = h
        .http
        .put(format!("{}/sim/push/scripts/apns/tok-ctl", h.base))
        .json(&json!({"steps": [{"kind": "explode"}]}))
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error());

    // The service account and APNs key come from the control API too.
    let sa: Value = h
        .http
        .get(format!("{}/sim/push/service-account", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sa["token_uri"], format!("{}/token", h.base));
    let key: Value =
        h.http.get(format!("{}/sim/push/apns-key", h.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(key["key_id"].as_str().unwrap().len(), 10);
    assert!(key["private_key_pem"].as_str().unwrap().contains("BEGIN PRIVATE KEY"));

    let token = h.access_token().await;
    let r = h.fcm_send(&token, &call_message("tok-ctl")).await;
    assert_eq!((r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()), (503, "1"));
    assert_eq!(h.fcm_send(&token, &call_message("tok-ctl")).await.status(), 200);
    let jwt = apns_jwt(&h.sim.apns_key(), h.sim.now_unix());
    assert_eq!(h.apns_send(APNS_TOKEN, &jwt, &[], &json!({"a": "b"})).await.status(), 200);

    let log: Value = h
        .http
        .get(format!("{}/sim/push/requests?provider=fcm&token=tok-ctl", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<_> =
        log.as_array().unwrap().iter().map(|r| r["reply"]["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [503, 200]);
    assert_eq!(log[0]["kind"], "fcm_send");
    assert_eq!(log[0]["reply"]["retry_after_secs"], 1);
    let all: Value =
        h.http.get(format!("{}/sim/push/requests", h.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 4);
    let delivered: Value = h
        .http
        .get(format!("{}/sim/push/delivered/tok-ctl", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(delivered[0]["data"]["type"], "incoming_call");
    assert_eq!(delivered[0]["provider"], "fcm");

    let r = h
        .http
        .put(format!("{}/sim/push/latency", h.base))
        .json(&json!({"latency_ms": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        h.http.delete(format!("{}/sim/push/scripts/fcm/tok-ctl", h.base)).send().await.unwrap().status(),
        204
    );
    assert_eq!(h.http.post(format!("{}/sim/push/reset", h.base)).send().await.unwrap().status(), 204);
    assert!(h.sim.requests().is_empty());
    assert!(h.sim.delivered("tok-ctl").is_empty());
    // Access tokens survive a reset; revoking them is explicit.
    assert_eq!(h.fcm_send(&token, &call_message("tok-ctl")).await.status(), 200);
    assert_eq!(
        h.http.post(format!("{}/sim/push/revoke-access-tokens", h.base)).send().await.unwrap().status(),
        204
    );
    assert_eq!(h.fcm_send(&token, &call_message("tok-ctl")).await.status(), 401);
}
