//! The fleet under stress and attack: many runners, a server restart, a runner killed
//! mid-task, hostile messages, and a drain on SIGTERM.

use super::{Fleet, Nats, by_task, client, collect, publish, rt, task_data};
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const COMPLETED: &str = "dev.edge-runner.task.completed.v1";

/// 3 runners on one stream, 200 tasks across 3 tenants: every task runs exactly once and
/// its event arrives once.
#[test]
fn three_runners_run_two_hundred_tasks_exactly_once() {
    let nats = Nats::start();
    let fleet = Fleet::new(&nats);
    let tenants = ["acme", "globex", "initech"];
    let _runners: Vec<_> = ["r1", "r2", "r3"]
        .iter()
        .map(|id| fleet.runner(id, &tenants, ""))
        .collect();
    let mut ids = BTreeSet::new();
    rt().block_on(async {
        let c = client(&nats.url()).await;
        for i in 0..200 {
            let tenant = tenants[i % 3];
            let id = format!("t-{i}");
            let task = fleet.task(tenant, &id, &fleet.quick);
            publish(&c, &format!("tasks.{tenant}"), task.into_bytes(), None).await;
            ids.insert(id);
        }
    });
    let events = collect(&nats.url(), Duration::from_secs(180), |e| e.len() >= 200);
    let tasks = by_task(&events);
    assert_eq!(events.len(), 200, "{} events", events.len());
    for id in &ids {
        let (completed, denials) = tasks.get(id).cloned().unwrap_or_default();
        assert_eq!(
            (completed, denials.len()),
            (1, 0),
            "{id}: {completed} completed, {denials:?}; its events: {:#?}",
            task_data(&events, id)
        );
    }
    // Every event id is unique (no duplicate deliveries in the stream).
    let unique: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 200);
    // The work was shared (each runner's own log counts what it handled).
    for e in &events {
        assert_eq!(e["type"], COMPLETED);
        let tenant = e["data"]["tenant_id"].as_str().unwrap();
        assert!(tenants.contains(&tenant));
    }
}

/// nats-server restarted (same store) while tasks are in flight: nothing lost, nothing
/// run twice.
#[test]
fn a_server_restart_mid_run_loses_nothing_and_runs_nothing_twice() {
    let mut nats = Nats::start();
    let fleet = Fleet::new(&nats);
    let _runners: Vec<_> = ["r1", "r2"]
        .iter()
        .map(|id| fleet.runner(id, &["acme"], "ack_wait_secs = 5\n"))
        .collect();
    rt().block_on(async {
        let c = client(&nats.url()).await;
        for i in 0..60 {
            let task = fleet.task("acme", &format!("t-{i}"), &fleet.quick);
            publish(&c, "tasks.acme", task.into_bytes(), None).await;
        }
    });
    // Let some run, then restart the server under them.
    let _ = collect(&nats.url(), Duration::from_secs(60), |e| e.len() >= 15);
    nats.restart(Duration::from_secs(2));
    let events = collect(&nats.url(), Duration::from_secs(120), |e| {
        let t = by_task(e);
        (0..60).all(|i| t.get(&format!("t-{i}")).is_some_and(|(c, _)| *c >= 1))
    });
    let tasks = by_task(&events);
    for i in 0..60 {
        let id = format!("t-{i}");
        let (completed, denials) = tasks.get(&id).cloned().unwrap_or_default();
        assert_eq!(
            completed,
            1,
            "{id}: ran {completed} times ({denials:?}); its events: {:#?}",
            task_data(&events, &id)
        );
        // A redelivery of a task that already ran is refused as a replay, never run.
        assert!(
            denials.iter().all(|r| r == "replayed_nonce"),
            "{id}: {denials:?}"
        );
    }
}

/// A runner killed with SIGKILL mid-task: the task is redelivered to another runner and
/// refused there as a replay (the nonce was recorded before the tool started); it never
/// runs twice, and the event stream says so.
#[test]
fn a_runner_killed_mid_task_never_runs_it_twice() {
    let nats = Nats::start();
    let fleet = Fleet::new(&nats);
    let mut victim = fleet.runner("victim", &["acme"], "ack_wait_secs = 3\nconcurrency = 1\n");
    rt().block_on(async {
        let c = client(&nats.url()).await;
        let task = fleet.task("acme", "t-slow", &fleet.slow);
        publish(&c, "tasks.acme", task.into_bytes(), None).await;
    });
    // Wait until the victim has recorded the nonce and started the tool.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !super::log_lines(&victim).iter().any(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sandbox run"))
    }) {
        assert!(
            Instant::now() < deadline,
            "the task never started:\n{}",
            victim.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    victim.signal(Signal::SIGKILL);
    assert_eq!(victim.wait(Duration::from_secs(10)), None);
    let _survivor = fleet.runner("survivor", &["acme"], "ack_wait_secs = 3\n");
    let events = collect(&nats.url(), Duration::from_secs(60), |e| !e.is_empty());
    let tasks = by_task(&events);
    let (completed, denials) = tasks.get("t-slow").cloned().unwrap_or_default();
    assert_eq!(
        completed, 0,
        "the killed runner's task ran again: {events:#?}"
    );
    assert_eq!(denials, ["replayed_nonce"], "{events:#?}");
    // The denial names the runner that recorded the pair.
    let denial = &events[0];
    assert!(
        denial["data"]["message"]
            .as_str()
            .unwrap()
            .contains("victim"),
        "{denial:#}"
    );
}

/// Hostile messages are each acknowledged with a denial event and a stable code, and the
/// consumer never stalls: a good task after them runs.
#[test]
fn hostile_messages_are_refused_with_events_and_never_stall_the_consumer() {
    let nats = Nats::start();
    let fleet = Fleet::new(&nats);
    let _r = fleet.runner("r1", &["acme"], "");
    let replayed = fleet.task("acme", "t-once", &fleet.quick);
    let other =
        edge_runner::sign::SigningKey::generate(edge_runner::sign::SignAlg::Es256, "cp-1").unwrap();
    rt().block_on(async {
        let c = client(&nats.url()).await;
        let send = |payload: Vec<u8>| publish(&c, "tasks.acme", payload, None);
        // For another audience.
        send(
            fleet
                .task_with("acme", "t-other-aud", &fleet.quick, |m| {
                    m["aud"] = "elsewhere".into()
                })
                .into_bytes(),
        )
        .await;
        // Forged: signed by a key with the trusted kid but another secret.
        let mut m = serde_json::json!({
            "manifest_version": "1", "aud": "fleet",
            "task_context": {"task_id": "t-forged", "tenant_id": "acme"},
            "tool_sha256": fleet.quick, "nonce": crate::task_kit::nonce(),
            "issued_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        m["expires_at"] = (chrono::Utc::now() + chrono::TimeDelta::minutes(5))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into();
        send(
            other
                .sign_compact(&serde_json::to_vec(&m).unwrap())
                .into_bytes(),
        )
        .await;
        // The same task twice (different message ids, so JetStream keeps both).
        send(replayed.clone().into_bytes()).await;
        publish(
            &c,
            "tasks.acme",
            replayed.clone().into_bytes(),
            Some("second-copy"),
        )
        .await;
        // Signed for another tenant, published under acme.
        send(
            fleet
                .task("globex", "t-wrong-tenant", &fleet.quick)
                .into_bytes(),
        )
        .await;
        // Not a JWS, and 10 MB of garbage.
        send(b"this is not a jws".to_vec()).await;
        send(vec![b'A'; 10 * 1024 * 1024]).await;
        // And then a good task.
        send(fleet.task("acme", "t-good", &fleet.quick).into_bytes()).await;
    });
    // Eight messages, eight events (their order depends on the two task slots).
    let events = collect(&nats.url(), Duration::from_secs(90), |e| e.len() >= 8);
    let reasons: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["data"]["task_id"].as_str().unwrap_or("-").to_owned(),
                e["data"]["reason"].as_str().unwrap_or("ran").to_owned(),
            )
        })
        .collect();
    let want = [
        // Refused at the claims stage: the event carries what was received, not what the
        // refused manifest claims.
        ("-", "audience_mismatch"),
        ("-", "signature_invalid"),
        ("t-once", "ran"),
        ("t-once", "replayed_nonce"),
        ("t-wrong-tenant", "tenant_mismatch"),
        ("-", "jws_malformed"),
        ("-", "jws_too_large"),
        ("t-good", "ran"),
    ];
    let got: Vec<(&str, &str)> = reasons
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    for w in want {
        assert!(got.contains(&w), "missing {w:?} in {got:?}");
    }
    // Denials of unverified input go to the tenant of the subject they came on.
    for e in &events {
        if e["data"]["reason"] == "jws_too_large" {
            assert!(e["data"]["manifest_jws"].is_null(), "10 MB in an event");
        }
    }
    assert_eq!(events.len(), want.len(), "{got:?}");
}

/// SIGTERM: the runner stops pulling, lets the running task finish within the grace
/// period, publishes its event, and exits 0.
#[test]
fn sigterm_drains_within_the_grace_period() {
    let nats = Nats::start();
    let fleet = Fleet::new(&nats);
    let mut r = fleet.runner("r1", &["acme"], "drain_grace_secs = 20\nconcurrency = 1\n");
    rt().block_on(async {
        let c = client(&nats.url()).await;
        publish(
            &c,
            "tasks.acme",
            fleet.task("acme", "t-draining", &fleet.slow).into_bytes(),
            None,
        )
        .await;
        publish(
            &c,
            "tasks.acme",
            fleet.task("acme", "t-waiting", &fleet.quick).into_bytes(),
            None,
        )
        .await;
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !r.log_text().contains("sandbox run") {
        assert!(Instant::now() < deadline, "{}", r.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked = Instant::now();
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait(Duration::from_secs(25)), Some(0), "{}", r.log_text());
    assert!(asked.elapsed() < Duration::from_secs(20));
    let events = collect(&nats.url(), Duration::from_secs(10), |e| !e.is_empty());
    let tasks = by_task(&events);
    assert_eq!(tasks.get("t-draining").map(|t| t.0), Some(1), "{events:#?}");
    // The second task was never started: it is still queued for the next runner.
    assert!(!tasks.contains_key("t-waiting"), "{events:#?}");
    let _next = fleet.runner("r2", &["acme"], "");
    let events = collect(&nats.url(), Duration::from_secs(30), |e| {
        by_task(e).contains_key("t-waiting")
    });
    assert_eq!(by_task(&events).get("t-waiting").map(|t| t.0), Some(1));
}
