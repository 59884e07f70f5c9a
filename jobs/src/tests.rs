//! Wire-format tests: these JSON shapes are stored in queues and must not drift.

use super::*;

#[test]
fn the_wire_format_is_frozen() {
    let env = Envelope::new(Job::ProcessWebhookV1 { event_id: "e1".into() }, "webhook:e1")
        .with_call_session(Some("s1".into()));
    let json = serde_json::to_string(&env).unwrap();
    assert_eq!(
        json,
        r#"{"v":1,"job":{"type":"process_webhook.v1","event_id":"e1"},"attempt":1,"work_id":"webhook:e1","call_session_id":"s1"}"#
    );
    let purge = serde_json::to_string(&Job::PurgeWebhookEventsV1 { before: 10 }).unwrap();
    assert_eq!(purge, r#"{"type":"purge_webhook_events.v1","before":10}"#);
}

#[test]
fn every_variant_round_trips() {
    let id = || "c1".to_string();
    for job in [
        Job::ProcessWebhookV1 { event_id: "x".into() },
        Job::PurgeWebhookEventsV1 { before: 1 },
        Job::ProvisionCredentialV1 { credential_id: id() },
        Job::DeleteCredentialV1 { credential_id: id() },
        Job::RotateCredentialV1 { credential_id: id() },
        Job::CleanupExpiredCredentialsV1 { now: 1 },
        Job::SweepOrphanCredentialsV1 { now: 1, resume_at: 0 },
        Job::SweepOrphanCredentialsV1 { now: 1, resume_at: 750 },
        Job::SweepDepartedCredentialsV1 { now: 1 },
        Job::RotateExpiringCredentialsV1 { now: 1 },
        Job::ResealSecretsV1 { now: 1 },
    ] {
        let env = Envelope::new(job, "w").next_attempt();
        let back: Envelope = serde_json::from_str(&serde_json::to_string(&env).unwrap()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.attempt, 2);
        let again = back.restarted("g2");
        assert_eq!((again.attempt, again.work_id.as_str()), (1, "w~g2"));
        assert_ne!(again.attempt_key(), env.restarted("g3").attempt_key());
    }
}

#[test]
fn attempts_have_distinct_keys() {
    let env = Envelope::new(Job::ProcessWebhookV1 { event_id: "x".into() }, "webhook:x");
    assert_eq!(env.attempt_key(), "webhook:x#1");
    assert_eq!(env.next_attempt().attempt_key(), "webhook:x#2");
}

#[test]
fn pools_parse() {
    assert_eq!(Pool::parse_list("push").unwrap(), vec![Pool::Push]);
    assert_eq!(Pool::parse_list("push, webhooks,push").unwrap(), vec![Pool::Webhooks, Pool::Push]);
    assert_eq!(Pool::parse_list("all").unwrap().len(), 8);
    assert!(Pool::parse_list("pushes").is_err());
    assert!(Pool::parse_list("").is_err());
    for pool in Pool::ALL {
        assert_eq!(pool.as_str().parse::<Pool>().unwrap(), pool);
    }
}

#[test]
fn credential_jobs_have_their_pools_and_frozen_names() {
    let p = Job::ProvisionCredentialV1 { credential_id: "c1".into() };
    assert_eq!(p.pool(), Pool::Credentials);
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        r#"{"type":"provision_credential.v1","credential_id":"c1"}"#
    );
    let c = Job::CleanupExpiredCredentialsV1 { now: 5 };
    assert_eq!(c.pool(), Pool::Maintenance);
    assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"type":"cleanup_expired_credentials.v1","now":5}"#);
}

#[test]
fn push_jobs_are_keyed_per_call_device_and_kind() {
    use fleet_domain::push::{CallEndedReason, PushMessage};
    let ended = |reason| PushMessage::CallEnded { call_session_id: "s1".into(), org_id: "o1".into(), reason };
    let env = push_envelope("d1", ended(CallEndedReason::AnsweredElsewhere), 1_000);
    assert_eq!(env.pool(), Pool::Push);
    assert_eq!(env.attempt_key(), "push:call_ended:s1:d1#1");
    assert_eq!(env.call_session_id.as_deref(), Some("s1"));
    assert_eq!(env.job.deadline(), None);
    assert_eq!(
        serde_json::to_string(&env.job).unwrap(),
        r#"{"type":"send_push.v1","device_id":"d1","message":{"type":"call_ended","call_session_id":"s1","org_id":"o1","reason":"answered_elsewhere"},"requested_at_ms":1000}"#
    );
    let back: Envelope = serde_json::from_str(&serde_json::to_string(&env).unwrap()).unwrap();
    assert_eq!(back, env);
    // The same push asked for again (another reason included) is the same work.
    let again = push_envelope("d1", ended(CallEndedReason::Completed), 2_000);
    assert_eq!(again.attempt_key(), env.attempt_key());
}

#[test]
fn event_jobs_are_keyed_by_event_id_and_carry_the_call() {
    let event = AppEventMessage {
        id: "evt_s1_answered".into(),
        event_type: "call.answered".into(),
        occurred_at_ms: 1_700_000_000_000,
        data: serde_json::json!({"call_session_id": "s1", "org_id": "org-1"}),
    };
    let env = event_envelope(event.clone());
    assert_eq!(env.work_id, "event:evt_s1_answered");
    assert_eq!(env.attempt_key(), "event:evt_s1_answered#1");
    assert_eq!(env.call_session_id.as_deref(), Some("s1"));
    assert_eq!(env.pool(), Pool::Events);
    assert_eq!(event_envelope(event), env, "the same event is the same work");
}
