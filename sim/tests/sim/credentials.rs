//! Telephony credentials: create, filtered listing, pagination, token, delete, expiry.

use serde_json::json;

use crate::support::{Env, code};

#[tokio::test]
async fn credential_lifecycle() {
    let env = Env::start(|_| {}).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let tag = if i < 2 { "org-1" } else { "org-2" };
        let body = json!({"connection_id": "777", "name": format!("dev-{i}"), "tag": tag,
                          "expires_at": "2026-01-01T01:00:00Z"});
        let (s, v) = env.post("/telephony_credentials", body).await;
        assert_eq!(s, 201, "{v}");
        let d = &v["data"];
        assert_eq!(d["record_type"], "credential");
        assert_eq!(d["resource_id"], "connection:777");
        assert!(d["sip_username"].as_str().unwrap().starts_with("gencred"));
        assert_eq!(d["expired"], false);
        ids.push(d["id"].as_str().unwrap().to_owned());
    }
    let (s, v) = env.post("/telephony_credentials", json!({"name": "x"})).await;
    assert_eq!((s, code(&v)), (422, "10004"));

    let (_, v) = env.get("/telephony_credentials?filter[tag]=org-1&page[size]=1&page[number]=2").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["id"], ids[1].as_str());
    assert_eq!(v["meta"], json!({"page_number": 2, "page_size": 1, "total_pages": 2, "total_results": 2}));
    let (_, v) = env.get("/telephony_credentials?filter%5Bname%5D=dev-2").await;
    assert_eq!(v["meta"]["total_results"], 1);
    let (_, v) =
        env.get("/telephony_credentials?filter[resource_id]=connection:777&filter[status]=active").await;
    assert_eq!(v["meta"]["total_results"], 3);
    let (s, _) = env.get("/telephony_credentials?page[size]=500").await;
    assert_eq!(s, 400);

    let res = env
        .http
        .post(env.url(&format!("/telephony_credentials/{}/token", ids[0])))
        .bearer_auth(&env.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let jwt = res.text().await.unwrap();
    assert_eq!(jwt.split('.').count(), 3);

    let (s, v) = env.send(reqwest::Method::DELETE, &format!("/telephony_credentials/{}", ids[0]), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["id"], ids[0].as_str());
    let (s, v) = env.get(&format!("/telephony_credentials/{}", ids[0])).await;
    assert_eq!((s, code(&v)), (404, "10005"));
    let (s, _) = env.post(&format!("/telephony_credentials/{}/token", ids[0]), json!({})).await;
    assert_eq!(s, 404);

    env.advance_ms(3_600_000).await;
    let (_, v) = env.get("/telephony_credentials?filter[status]=expired").await;
    assert_eq!(v["meta"]["total_results"], 2);
    assert_eq!(v["data"][0]["expired"], true);
    let (s, v) = env
        .send(
            reqwest::Method::PATCH,
            &format!("/telephony_credentials/{}", ids[1]),
            Some(json!({"expires_at": "2027-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["expired"], false);
    crate::conformance::assert_conforms(&env);
}
