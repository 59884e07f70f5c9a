//! The demo of `callfleet run` without a Telnyx key: the built-in carrier simulator stands in
//! for Telnyx, FCM, APNs and the app backend's event receiver, and a demo organization, user,
//! number and two simulated phones are seeded, so the printed one-line call rings both phones,
//! one answers and the other is dismissed — visibly, on the simulator's timeline page.
//!
//! Nothing configured is overridden: the webhook key, FCM, APNs, the events URL and the API token
//! are pointed at the simulator (or generated) only when they are not set. (A configured
//! `TELNYX_PUBLIC_KEY` stays the only key trusted, so the simulator's webhooks are then refused:
//! a demo with a real key configured does not ring, and says so at start.) The seed is idempotent (PUT-like
//! upserts under fixed ids), so restarting the demo on the same database changes nothing.

use std::time::Duration;

use anyhow::Context as _;
use fleet_domain::credentials::CredentialStatus;
use fleet_domain::routing::{Mode, NumberConfig, OutsideHours};
use fleet_platform::shutdown::CancellationToken;
use fleet_platform::{Config, Secret};
use fleet_sim::{CredentialRef, DevicePlatform, DeviceScript, RingBehaviour, SimHandle};
use fleet_store::{DeviceRegistration, OrgSettings, Organization, Store, User};

/// The demo simulator's address (`CALLFLEET_SIM_LISTEN`, default 127.0.0.1:8090) and number.
const DEMO_SIM_LISTEN: &str = "127.0.0.1:8090";
const DEMO_NUMBER: &str = "+13125550199";
const DEMO_ORG: &str = "demo-org";
const DEMO_USER: &str = "demo-user";
/// The phone that answers (after 4 s) and the one that only rings until it is dismissed.
const DEMO_PHONES: [(&str, &str); 2] = [("demo-android", "android"), ("demo-iphone", "ios")];

/// Without FCM or APNs keys, the demo sends pushes to the simulator's FCM and APNs (its own
/// service account and `.p8` key; the key is written under `CALLFLEET_DATA_DIR`).
fn point_push_at_simulator(config: &mut Config, sim: &SimHandle) -> anyhow::Result<()> {
    if config.fcm_service_account.is_some() || config.apns_key_path.is_some() {
        return Ok(());
    }
    let base = sim.base_url().to_owned();
    config.fcm_service_account = Some(Secret::new(sim.push().service_account_json(&base)));
    config.fcm_api_base = Some(base.clone());
    let key = sim.push().apns_key();
    std::fs::create_dir_all(&config.data_dir).context("creating CALLFLEET_DATA_DIR")?;
    let path = config.data_dir.join("simulator-apns.p8");
    std::fs::write(&path, key.private_key_pem).context("writing the simulator's APNs key")?;
    config.apns_key_path = Some(path);
    config.apns_key_id = Some(key.key_id);
    config.apns_team_id = Some(key.team_id);
    config.apns_topic = Some("com.callfleet.demo".into());
    config.apns_api_base = Some(base);
    Ok(())
}

/// Starts the carrier simulator in-process and points the fleet at it: its Telnyx API, its
/// webhook key, its push providers and its event receiver; our ingress is its webhook target.
pub async fn start_simulator(config: &mut Config, token: CancellationToken) -> anyhow::Result<SimHandle> {
    let listen = std::env::var("CALLFLEET_SIM_LISTEN").unwrap_or_else(|_| DEMO_SIM_LISTEN.into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding the simulator on {listen}"))?;
    let base = format!("http://{}", config.listen);
    let mut sim_config = fleet_sim::SimConfig::new(format!("{base}/webhooks/telnyx"));
    sim_config.failover_url = Some(format!("{base}/webhooks/telnyx/failover"));
    // A seed of its own per run: ids (call sessions, webhook events, credentials) derive from it,
    // and the embedded database keeps an earlier run's, so a repeated seed would make this run's
    // first call a "duplicate" of that run's.
    sim_config.seed = rand::random();
    let sim =
        fleet_sim::Simulator::start(sim_config, listener, token).await.context("starting the simulator")?;
    sim.add_number(DEMO_NUMBER);
    if config.telnyx_public_keys.is_empty() {
        config.telnyx_public_keys.push(sim.public_key_base64());
    } else {
        // A configured key is never replaced: the simulator's webhooks are then refused (401),
        // which is what trusting only the configured key means.
        tracing::warn!(
            simulator_key = sim.public_key_base64(),
            "TELNYX_PUBLIC_KEY is set, so the simulator's signature is not trusted: its webhooks get 401. \
             Unset TELNYX_PUBLIC_KEY for the demo."
        );
    }
    config.telnyx_api_base = sim.telnyx_api_base();
    config.telnyx_api_key = Some(Secret::new("simulator"));
    config.telnyx_connection_id.get_or_insert_with(|| sim.config().connection_id.clone());
    config.telnyx_credential_connection_id.get_or_insert_with(|| "simulator-credential-connection".into());
    if config.events_url.is_none() && config.events_secret.is_none() {
        config.events_url = Some(sim.events_url());
        config.events_secret = Some(Secret::new(sim.events_secret().to_owned()));
    }
    if config.api_token.is_none() {
        let token: String = (0..32).map(|_| format!("{:x}", rand::random::<u8>() & 15)).collect();
        config.api_token = Some(Secret::new(format!("dev-{token}")));
    }
    point_push_at_simulator(config, &sim)?;
    tracing::info!(
        simulator = sim.base_url(),
        "No TELNYX_API_KEY: running against the built-in carrier simulator."
    );
    Ok(sim)
}

/// Seeds the demo organization, user, number and phones (once the workers run: the phones'
/// SIP credentials are provisioned by the fleet against the simulator), then prints how to call.
pub async fn seed_and_print(config: &Config, store: &dyn Store, sim: &SimHandle) -> anyhow::Result<()> {
    let org =
        Organization { id: DEMO_ORG.into(), name: Some("Demo Org".into()), settings: OrgSettings::default() };
    store.upsert_organization(&org).await?;
    let user = User {
        id: DEMO_USER.into(),
        org_id: DEMO_ORG.into(),
        name: Some("Demo User".into()),
        ..User::default()
    };
    store.upsert_user(&user).await?;
    let number = NumberConfig {
        org_id: DEMO_ORG.into(),
        user_id: Some(DEMO_USER.into()),
        mode: Mode::Ring,
        ring_timeout_secs: 30,
        schedule: None,
        outside_hours: OutsideHours::Voicemail,
    };
    store.put_number(DEMO_NUMBER, &number).await?;
    for (i, (id, platform)) in DEMO_PHONES.iter().enumerate() {
        let token = format!("demo-token-{id}");
        let reg = DeviceRegistration {
            id: (*id).into(),
            user_id: DEMO_USER.into(),
            org_id: DEMO_ORG.into(),
            platform: (*platform).into(),
            push_token: (*platform == "android").then(|| token.clone()),
            voip_token: (*platform == "ios").then(|| "ab".repeat(32)),
            app_version: None,
            name: Some(format!("Demo {platform}")),
        };
        // The simulator starts empty on every run, so a credential an earlier run stored (the
        // embedded database persists) names nothing on it: the phone is registered afresh and
        // its old credential is deleted like any deregistered device's.
        store.deregister_device(id).await?;
        store.register_device(&reg).await?;
        let sip = provisioned(store, id).await?;
        let on_ring = if i == 0 {
            RingBehaviour::Answer { after: Duration::from_secs(4) }
        } else {
            RingBehaviour::Never
        };
        let device = DeviceScript {
            id: (*id).into(),
            platform: if *platform == "ios" { DevicePlatform::Ios } else { DevicePlatform::Android },
            push_token: Some(if *platform == "ios" { "ab".repeat(32) } else { token }),
            credential: CredentialRef::SipUsername(sip),
            online: true,
            register_after_push: None,
            on_ring,
        };
        sim.add_device(device).map_err(|e| anyhow::anyhow!("adding the demo phone {id}: {e}"))?;
    }
    print(config, sim);
    Ok(())
}

/// Waits for the fleet to provision a demo phone's SIP credential on the simulator.
async fn provisioned(store: &dyn Store, device: &str) -> anyhow::Result<String> {
    for _ in 0..300 {
        let credential = store.device(device).await?.and_then(|d| d.credential);
        if let Some(c) = credential.filter(|c| c.status == CredentialStatus::Active) {
            if let Some(sip) = c.sip_username {
                return Ok(sip);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the demo phone {device} got no SIP credential in 30 s")
}

fn print(config: &Config, sim: &SimHandle) {
    let api = format!("http://{}", config.listen);
    let sim_base = sim.base_url();
    let token = config.api_token.as_ref().map(|t| t.expose().to_owned()).unwrap_or_default();
    eprintln!(
        "
callfleet is running every role, against the built-in carrier simulator.

  ingress     {api}/webhooks/telnyx      metrics {api}/metrics
  app API     {api}/v1   (OpenAPI: {api}/v1/openapi.json)
  API token   {token}   (dev token of this run; set CALLFLEET_API_TOKEN to choose one)
  simulator   {sim_base}/sim/openapi.json
  timeline    {sim_base}/sim/timeline

Demo: a caller rings {DEMO_NUMBER}; both demo phones ring, the Android one answers after 4 s, the
iPhone is dismissed, the caller hangs up after 10 s:
  curl -s -X POST {sim_base}/sim/calls -H 'content-type: application/json' -d '{{\"from\":{{\"pstn\":\"+13125550101\"}},\"to\":\"{DEMO_NUMBER}\",\"hangup_after_ms\":10000}}'
Then open {sim_base}/sim/timeline, or ask the fleet: curl -s -H 'authorization: Bearer {token}' {api}/v1/users/{DEMO_USER}/active-call
"
    );
}
