//! Load generator for `bench/serve-throughput.sh`: signs N tasks, publishes them to a
//! fleet's task subject as fast as the server takes them, and reads the N events back,
//! reporting tasks per second and publish-to-event latency (p50/p99) as one JSON line.
//!
//! Usage: serve_load NATS_URL SIGNING_KEY.jwk TOOL_DIGEST TENANT AUD N [TASK_DIR | --serial]
//! With TASK_DIR, it only writes the signed tasks there (for the one-process-per-task
//! baseline) and exits. With `--serial`, it publishes one task at a time and waits for
//! its event (latency with no queue); otherwise all at once (throughput; the latency then
//! includes waiting in the queue).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use async_nats::jetstream::{self, consumer};
use edge_runner::sign::SigningKey;
use futures::StreamExt as _;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    assert!(
        a.len() >= 7,
        "usage: serve_load NATS_URL KEY.jwk DIGEST TENANT AUD N [TASK_DIR]"
    );
    let (url, key, digest, tenant, aud) = (&a[1], &a[2], &a[3], &a[4], &a[5]);
    let n: usize = a[6].parse().unwrap();
    let key = SigningKey::load(std::path::Path::new(key), None).unwrap();
    let now = chrono::Utc::now();
    let t = |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let tasks: Vec<(String, String)> = (0..n)
        .map(|i| {
            let mut nonce = [0u8; 16];
            getrandom::fill(&mut nonce).unwrap();
            let id = format!("load-{i}");
            let m = serde_json::json!({
                "manifest_version": "1", "aud": aud,
                "task_context": {"task_id": id, "tenant_id": tenant},
                "tool_sha256": digest,
                "nonce": edge_runner::text::hex(&nonce),
                "issued_at": t(now), "expires_at": t(now + chrono::TimeDelta::minutes(9)),
            });
            (id, key.sign_compact(&serde_json::to_vec(&m).unwrap()))
        })
        .collect();
    let serial = a.get(7).is_some_and(|x| x == "--serial");
    if let Some(dir) = a.get(7).filter(|_| !serial) {
        for (id, jws) in &tasks {
            std::fs::write(std::path::Path::new(dir).join(format!("{id}.jws")), jws).unwrap();
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let js = jetstream::new(client);
        let events = js.get_stream("EDGE_RUNNER_EVENTS").await.unwrap();
        let reader: consumer::PullConsumer = events
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut incoming = reader.messages().await.unwrap();
        let mut sent: HashMap<String, Instant> = HashMap::with_capacity(n);
        let start = Instant::now();
        let subject = format!("tasks.{tenant}");
        let mut acks = Vec::with_capacity(n);
        let mut latencies = Vec::with_capacity(n);
        let mut completed = 0usize;
        for (id, jws) in &tasks {
            sent.insert(id.clone(), Instant::now());
            let ack = js
                .publish(subject.clone(), jws.clone().into_bytes().into())
                .await
                .unwrap();
            if !serial {
                acks.push(ack);
                continue;
            }
            ack.await.unwrap();
            let m = tokio::time::timeout(Duration::from_secs(60), incoming.next())
                .await
                .expect("events stopped arriving")
                .unwrap()
                .unwrap();
            let ev: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            if ev["type"] == "dev.edge-runner.task.completed.v1" {
                completed += 1;
            }
            latencies.push(sent[id].elapsed());
        }
        for ack in acks {
            ack.await.unwrap();
        }
        while latencies.len() < n {
            let m = tokio::time::timeout(Duration::from_secs(60), incoming.next())
                .await
                .expect("events stopped arriving")
                .unwrap()
                .unwrap();
            let ev: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            if ev["type"] == "dev.edge-runner.task.completed.v1" {
                completed += 1;
            }
            if let Some(t0) = ev["data"]["task_id"].as_str().and_then(|id| sent.get(id)) {
                latencies.push(t0.elapsed());
            }
        }
        let total = start.elapsed();
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "{}",
            serde_json::json!({
                "tasks": n,
                "completed": completed,
                "seconds": total.as_secs_f64(),
                "tasks_per_second": n as f64 / total.as_secs_f64(),
                "p50_ms": pct(0.50).as_secs_f64() * 1000.0,
                "p99_ms": pct(0.99).as_secs_f64() * 1000.0,
            })
        );
    });
}
