//! `edge-runner serve`: a long-lived runner pulling signed tasks from NATS JetStream.
//!
//! ```text
//! JetStream tasks.<tenant>  ─pull (durable consumer per tenant, shared by the fleet)─▶
//!   [bounded: at most `concurrency` tasks pulled and running]
//!   spawn_blocking: Runner::decide ─▶ tenant of the subject = tenant of the manifest?
//!                   ─▶ Runner::launch (the fleet guard records the nonce: KV create)
//!                   ─▶ the one event (mapper + validation)
//!   ─▶ publish events.<tenant>.<type> (Nats-Msg-Id = event id), await the server's ack
//!      (or keep it in the outbox) ─▶ only then ack the task
//! ```
//!
//! The pipeline is the one `run` uses (`Runner`), opened once for the process. Every
//! message ends acknowledged with its event published (or in the outbox), whatever it
//! was (a forged task, garbage, a replay): the consumer never stalls on it. The only
//! exception is a refusal that says nothing about the task, `replay_store_unavailable`
//! (the guard could not be asked): such a task has not run, and is handed back to the
//! server (`nak`) to be tried again, until its last delivery, which is refused with its
//! event like any other. A task that runs longer than the server's ack wait is kept
//! alive with progress acknowledgements. On SIGTERM the runner stops pulling, hands back
//! what it pulled but did not start, lets running tasks finish within the drain grace,
//! and exits.

pub mod client;
pub mod guard;
pub mod metrics;
pub mod outbox;

pub use crate::config::FleetConfig;

use crate::events::{Disposition, ExecutionRecord};
use crate::pipeline::{Rejected, Runner, SetupError, Verdict};
use crate::reason::{Reason, Refusal};
use async_nats::jetstream::{self, AckKind, consumer, kv, stream};
use futures::StreamExt as _;
use metrics::Metrics;
use outbox::{Outbox, Pending};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long one pull request may stay unanswered (its own expiry is 250 ms).
const PULL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the runner waits for the server to acknowledge one publication.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// Events are deduplicated by id within this window (a republish from the outbox later
/// than that is a second copy with the same CloudEvents id, which receivers dedupe).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(20 * 60);

/// Why `serve` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The configuration is unusable for a fleet runner.
    #[error("the [fleet] configuration is invalid: {0}")]
    Config(String),
    /// The runner's own setup failed (plugins, keys, armory, events).
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The NATS server could not be reached.
    #[error("failed to connect to NATS at {url}: {message}")]
    Connect {
        /// The server URL.
        url: String,
        /// What the client said.
        message: String,
    },
    /// A JetStream stream, consumer or bucket could not be used.
    #[error("failed to {what}: {message}")]
    JetStream {
        /// What was being done.
        what: String,
        /// What the server or client said.
        message: String,
    },
    /// A local file the runner needs could not be used.
    #[error(transparent)]
    Trust(#[from] crate::fsperm::PermError),
}

fn js_err(what: impl Into<String>) -> impl FnOnce(String) -> FleetError {
    let what = what.into();
    move |message| FleetError::JetStream { what, message }
}

/// What a finished `serve` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeSummary {
    /// Tasks acknowledged (ran or refused, their events published or kept).
    pub handled: u64,
    /// Tasks still running when the drain grace ran out.
    pub abandoned: u64,
}

/// Connects to the configured server, with the client's automatic reconnection.
pub async fn connect(fleet: &FleetConfig, name: &str) -> Result<async_nats::Client, FleetError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None::<usize>);
    if let Some(ca) = &fleet.nats_ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if fleet.nats_url.starts_with("tls://") {
        options = options.require_tls(true);
    }
    let connecting = options.connect(fleet.nats_url.as_str());
    match tokio::time::timeout(Duration::from_secs(15), connecting).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(FleetError::Connect {
            url: fleet.nats_url.clone(),
            message: e.to_string(),
        }),
        Err(_) => Err(FleetError::Connect {
            url: fleet.nats_url.clone(),
            message: "no connection within 15 s (is nats-server running with JetStream?)".into(),
        }),
    }
}

/// The task stream, the event stream and the replay bucket, created when missing (and
/// `fleet.create` allows it), with the bucket checked to outlive every task.
async fn ensure_jetstream(
    js: &jetstream::Context,
    fleet: &FleetConfig,
    max_manifest_age_secs: u64,
) -> Result<kv::Store, FleetError> {
    let tasks = stream::Config {
        name: fleet.task_stream.clone(),
        subjects: vec![format!("{}.*", fleet.task_subject_prefix)],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let events = stream::Config {
        name: fleet.event_stream.clone(),
        subjects: vec![format!("{}.>", fleet.event_subject_prefix)],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    for config in [tasks, events] {
        let name = config.name.clone();
        if fleet.create {
            js.get_or_create_stream(config)
                .await
                .map_err(|e| js_err(format!("create the stream {name}"))(e.to_string()))?;
        } else {
            js.get_stream(&name).await.map_err(|e| {
                js_err(format!("find the stream {name} (fleet.create is off)"))(e.to_string())
            })?;
        }
    }
    let needed = guard::required_max_age(max_manifest_age_secs);
    let bucket = match js.get_key_value(&fleet.replay_bucket).await {
        Ok(b) => b,
        Err(_) if fleet.create => {
            // The bucket's stream, made as the key-value API makes it (`create_key_value`
            // first asks for account details that Debian's nats-server 2.9 answers in a
            // form this client cannot read).
            js.get_or_create_stream(stream::Config {
                name: format!("KV_{}", fleet.replay_bucket),
                description: Some("edge-runner: (tenant, nonce) pairs that ran".into()),
                subjects: vec![format!("$KV.{}.>", fleet.replay_bucket)],
                max_messages_per_subject: 1,
                max_age: needed,
                storage: stream::StorageType::File,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                js_err(format!("create the bucket {}", fleet.replay_bucket))(e.to_string())
            })?;
            js.get_key_value(&fleet.replay_bucket).await.map_err(|e| {
                js_err(format!("open the bucket {}", fleet.replay_bucket))(e.to_string())
            })?
        }
        Err(e) => {
            return Err(js_err(format!(
                "find the bucket {} (fleet.create is off)",
                fleet.replay_bucket
            ))(e.to_string()));
        }
    };
    let status = bucket
        .status()
        .await
        .map_err(|e| js_err("read the replay bucket's configuration")(e.to_string()))?;
    let max_age = status.info.config.max_age;
    // Zero means "forever": always enough.
    if !max_age.is_zero() && max_age < needed {
        return Err(FleetError::Config(format!(
            "the replay bucket {} forgets pairs after {} s, but a task can stay valid for {} s \
             (claims.max_manifest_age_secs plus clock skew): a replay could run again. Raise \
             its max_age to at least {} s",
            fleet.replay_bucket,
            max_age.as_secs(),
            needed.as_secs(),
            needed.as_secs()
        )));
    }
    Ok(bucket)
}

/// Everything the task handlers share.
struct Shared {
    runner: Arc<Runner>,
    js: jetstream::Context,
    fleet: FleetConfig,
    outbox: Outbox,
    metrics: Arc<Metrics>,
    /// Deliver events to the configured local sinks too (when the file names any).
    local_sinks: bool,
}

/// What `serve` needs besides the runner: the `[fleet]` section and the few facts of the
/// rest of the configuration it acts on (so that `fleet` names what it uses, and the
/// configuration depends on `fleet`, not the other way round).
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// `[fleet]`.
    pub fleet: FleetConfig,
    /// `[runner] id`: recorded with every pair in the replay guard.
    pub runner_id: String,
    /// The state directory (the event outbox lives under it).
    pub state_dir: std::path::PathBuf,
    /// `claims.max_manifest_age_secs`: the replay bucket must outlive it.
    pub max_manifest_age_secs: u64,
    /// Deliver events to the configured local sinks as well.
    pub local_sinks: bool,
}

/// Runs `serve` with `runner` (opened once, long-lived; its replay guard is replaced by the
/// fleet's) until `shutdown` resolves, then drains.
pub async fn serve(
    runner: Runner,
    settings: ServeSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<ServeSummary, FleetError> {
    let ServeSettings {
        fleet,
        runner_id,
        state_dir,
        max_manifest_age_secs,
        local_sinks,
    } = settings;
    fleet.check().map_err(FleetError::Config)?;
    if fleet.tenants.is_empty() {
        return Err(FleetError::Config(
            "fleet.tenants is empty: name the tenants whose tasks this runner pulls".into(),
        ));
    }
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = &fleet.health_addr {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            FleetError::Config(format!("failed to listen on fleet.health_addr {addr}: {e}"))
        })?;
        tokio::spawn(metrics::serve_http(listener, metrics.clone()));
    }
    let client = connect(&fleet, &runner_id).await?;
    let js = jetstream::new(client.clone());
    let bucket = ensure_jetstream(&js, &fleet, max_manifest_age_secs).await?;
    let runtime = tokio::runtime::Handle::current();
    let runner = Arc::new(runner.with_replay_guard(Box::new(guard::FleetGuard::new(
        bucket, runtime, &runner_id,
    ))));
    {
        let r = runner.clone();
        let check = tokio::task::spawn_blocking(move || {
            crate::sandbox::prepare(r.sandbox_policy()).map(drop)
        })
        .await
        .map_err(|e| FleetError::Config(format!("sandbox check panicked: {e}")))?;
        match check {
            Ok(()) => metrics
                .sandbox_ok
                .store(true, std::sync::atomic::Ordering::Relaxed),
            Err(e) => {
                tracing::error!(error = %crate::reason::chain(&e), "the sandbox cannot run tasks on this host; every task will be refused")
            }
        }
    }

    let shared = Arc::new(Shared {
        runner,
        js: js.clone(),
        outbox: Outbox::open(&state_dir)?,
        fleet: fleet.clone(),
        metrics: metrics.clone(),
        local_sinks,
    });
    tokio::spawn(watch_connection(client.clone(), metrics.clone()));
    tokio::spawn(flush_outbox(shared.clone()));

    let task_stream = js
        .get_stream(&fleet.task_stream)
        .await
        .map_err(|e| js_err("open the task stream")(e.to_string()))?;
    let mut consumers = Vec::new();
    for tenant in &fleet.tenants {
        let name = format!("{}-{tenant}", fleet.consumer);
        let c: consumer::PullConsumer = task_stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: fleet.task_subject(tenant),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(fleet.ack_wait_secs),
                    max_deliver: fleet.max_deliver,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| js_err(format!("create the consumer {name}"))(e.to_string()))?;
        consumers.push((tenant.clone(), c));
    }
    tracing::info!(
        runner = %runner_id,
        tenants = %fleet.tenants.join(","),
        concurrency = fleet.concurrency(),
        "serving"
    );

    let summary = pull_loop(shared.clone(), &consumers, shutdown).await;
    let _ = client.flush().await;
    Ok(summary)
}

/// Pulls at most as many tasks as there are free slots, round robin over the tenants,
/// until `shutdown`; then drains.
async fn pull_loop(
    shared: Arc<Shared>,
    consumers: &[(String, consumer::PullConsumer)],
    shutdown: impl std::future::Future<Output = ()>,
) -> ServeSummary {
    let slots = Arc::new(Semaphore::new(shared.fleet.concurrency()));
    let mut running = tokio::task::JoinSet::new();
    let mut summary = ServeSummary::default();
    let mut next = 0usize;
    let mut idle_rounds = 0usize;
    tokio::pin!(shutdown);
    'pull: loop {
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let (tenant, consumer) = &consumers[next % consumers.len()];
        next += 1;
        // Every tenant without waiting first; wait on one only when a whole round was idle.
        let waiting = idle_rounds >= consumers.len();
        let batch = if waiting {
            consumer
                .batch()
                .max_messages(permits.len())
                .expires(Duration::from_millis(250))
                .messages()
                .await
        } else {
            consumer
                .fetch()
                .max_messages(permits.len())
                .messages()
                .await
        };
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "failed to pull tasks; retrying");
                drop(permits);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {},
                    () = &mut shutdown => break,
                }
                continue;
            }
        };
        let mut got = 0usize;
        loop {
            // A pull request lost in a server restart never ends on its own: give up on it
            // after its expiry plus a margin, and ask again.
            let item = tokio::select! {
                m = tokio::time::timeout(PULL_TIMEOUT, batch.next()) => match m {
                    Ok(m) => m,
                    Err(_) => {
                        tracing::debug!(tenant = %tenant, "pull request unanswered; asking again");
                        break;
                    }
                },
                () = &mut shutdown => {
                    // Pulled, not started: hand it back at once.
                    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(50), batch.next()).await {
                        let _ = m.ack_with(AckKind::Nak(None)).await;
                    }
                    break 'pull;
                }
            };
            let Some(item) = item else { break };
            match item {
                Ok(msg) => {
                    let Some(permit) = permits.pop() else {
                        // More than asked for: hand it back.
                        let _ = msg.ack_with(AckKind::Nak(None)).await;
                        continue;
                    };
                    got += 1;
                    running.spawn(handle(shared.clone(), msg, tenant.clone(), permit));
                }
                Err(e) => {
                    tracing::debug!(tenant = %tenant, error = %e, "pull ended");
                    break;
                }
            }
        }
        idle_rounds = if got == 0 { idle_rounds + 1 } else { 0 };
        drop(permits);
        while let Some(done) = running.try_join_next() {
            if done.is_ok() {
                summary.handled += 1;
            }
        }
    }
    // Drain: running tasks may finish within the grace period.
    let grace = Duration::from_secs(shared.fleet.drain_grace_secs);
    tracing::info!(
        running = running.len(),
        grace_s = grace.as_secs(),
        "draining"
    );
    let deadline = Instant::now() + grace;
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline.into(), running.join_next()).await {
            Ok(Some(done)) => {
                if done.is_ok() {
                    summary.handled += 1;
                }
            }
            Ok(None) => break,
            Err(_) => {
                summary.abandoned = running.len() as u64;
                tracing::warn!(
                    abandoned = summary.abandoned,
                    "drain grace over; tasks still running are left to be redelivered (and refused as replays)"
                );
                break;
            }
        }
    }
    summary
}

/// What the blocking part of a task produced.
struct Handled {
    verdict: Verdict,
    record: ExecutionRecord,
    decide: Duration,
    launch: Duration,
}

/// One task message: decide and launch on a blocking thread (keeping the message alive
/// with progress acknowledgements), publish its event, then acknowledge it.
async fn handle(
    shared: Arc<Shared>,
    msg: jetstream::Message,
    tenant: String,
    permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    shared.metrics.in_flight.inc();
    let msg = Arc::new(msg);
    let keepalive = {
        let msg = msg.clone();
        let every = Duration::from_secs(shared.fleet.ack_wait_secs).div_f64(3.0);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = msg.ack_with(AckKind::Progress).await;
            }
        })
    };
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let last_delivery = delivered >= shared.fleet.max_deliver;
    let runner = shared.runner.clone();
    let payload = msg.payload.clone();
    let t = tenant.clone();
    let handled = tokio::task::spawn_blocking(move || run_task(&runner, &payload, &t)).await;
    keepalive.abort();
    let handled = match handled {
        Ok(h) => h,
        Err(e) => {
            // A panic in the pipeline: the task's fate is unknown; the server redelivers
            // it and the replay guard decides.
            tracing::error!(error = %e, "task handler panicked");
            shared.metrics.in_flight.dec();
            drop(permit);
            return;
        }
    };
    shared.metrics.stage("decide", handled.decide);
    shared.metrics.stage("launch", handled.launch);
    let (outcome, reason) = labels(&handled.verdict);
    if reason == Reason::ReplayStoreUnavailable.code() && !last_delivery {
        // Nothing ran and nothing was decided about the task: try it again later.
        tracing::warn!(tenant = %tenant, delivered, "replay guard unavailable; task handed back");
        let _ = msg
            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
            .await;
        shared.metrics.task("retried", reason);
        shared.metrics.in_flight.dec();
        drop(permit);
        return;
    }
    let publishing = Instant::now();
    let kept = publish_event(&shared, &tenant, &handled.record).await;
    shared.metrics.stage("publish", publishing.elapsed());
    if kept {
        if let Err(e) = msg.double_ack().await {
            tracing::warn!(error = %e, "failed to acknowledge a task (it will be redelivered and refused as a replay)");
        }
    } else {
        tracing::error!(
            "the task's event could be neither published nor kept; the task is not acknowledged"
        );
    }
    shared.metrics.task(outcome, reason);
    shared.metrics.stage("task", started.elapsed());
    shared.metrics.in_flight.dec();
    drop(permit);
}

/// The pipeline, as `run` runs it, plus the fleet's own check: the tenant of the subject
/// the task arrived on must be the tenant its signed manifest names (a task published
/// under another tenant's subject is refused, not run on that tenant's account).
fn run_task(runner: &Runner, payload: &[u8], tenant: &str) -> Handled {
    let deciding = Instant::now();
    let decided = runner.decide(payload).and_then(|d| {
        let named = &d.manifest().task().tenant_id;
        if named == tenant {
            Ok(d)
        } else {
            Err(Box::new(Rejected {
                task: d.task().clone(),
                refusal: Refusal::new(
                    Reason::TenantMismatch,
                    format!(
                        "the task was published for tenant {tenant} but is signed for tenant \
                         {}; publish it on its own tenant's subject",
                        crate::text::printable(named)
                    ),
                ),
            }))
        }
    });
    let decide = deciding.elapsed();
    let launching = Instant::now();
    let result = decided.and_then(|d| runner.launch(d));
    let launch = launching.elapsed();
    let (verdict, record) = runner.settle(result);
    Handled {
        verdict,
        record,
        decide,
        launch,
    }
}

fn labels(v: &Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Ran(o) if o.success() => ("completed", "ok"),
        Verdict::Ran(_) => ("completed", "tool_failed"),
        Verdict::Denied(r) => ("denied", r.reason.code()),
        Verdict::Failed(r) => ("failed", r.reason.code()),
    }
}

/// Builds the event and publishes it (awaiting the server's acknowledgement), or keeps it
/// in the outbox. True when the event is safe either way.
async fn publish_event(shared: &Shared, tenant: &str, record: &ExecutionRecord) -> bool {
    let mapped = shared.runner.events().build(record);
    if shared.local_sinks {
        for (sink, d) in shared.runner.events().sinks().deliver(&mapped.json) {
            tracing::debug!(sink = %sink, delivery = ?d, "event to a local sink");
        }
    }
    let pending = Pending {
        subject: shared.fleet.event_subject(tenant, &mapped.ty),
        id: mapped.id.clone(),
        event: String::from_utf8_lossy(&mapped.json).into_owned(),
    };
    if matches!(record.disposition, Disposition::Denied(_)) {
        tracing::info!(event_id = %pending.id, subject = %pending.subject, "denial event");
    }
    match publish(&shared.js, &pending).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(event_id = %pending.id, error = %e, "event not published; kept in the outbox");
            match shared.outbox.put(&pending) {
                Ok(_) => {
                    shared.metrics.outbox_depth.inc();
                    true
                }
                Err(e) => {
                    tracing::error!(event_id = %pending.id, error = %e, "failed to keep the event in the outbox");
                    false
                }
            }
        }
    }
}

/// One publication with `Nats-Msg-Id`, acknowledged by the server.
async fn publish(js: &jetstream::Context, p: &Pending) -> Result<(), String> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", p.id.as_str());
    headers.insert("Content-Type", "application/cloudevents+json");
    let sent = tokio::time::timeout(
        PUBLISH_TIMEOUT,
        js.publish_with_headers(
            p.subject.clone(),
            headers,
            p.event.clone().into_bytes().into(),
        ),
    )
    .await
    .map_err(|_| "no answer from the server".to_owned())?
    .map_err(|e| e.to_string())?;
    tokio::time::timeout(PUBLISH_TIMEOUT, sent)
        .await
        .map_err(|_| "no acknowledgement from the server".to_owned())?
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Republishes what the outbox holds, oldest first, whenever the server answers.
async fn flush_outbox(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let waiting = shared.outbox.list();
        for (path, pending) in &waiting {
            if let Err(e) = publish(&shared.js, pending).await {
                tracing::debug!(error = %e, "outbox: server still unavailable");
                break;
            }
            if let Err(e) = shared.outbox.remove(path) {
                tracing::error!(path = %path.display(), error = %e, "failed to remove a published event from the outbox");
                break;
            }
        }
        shared
            .metrics
            .outbox_depth
            .set(shared.outbox.depth() as i64);
    }
}

/// Keeps the `nats_connected` gauge current.
async fn watch_connection(client: async_nats::Client, metrics: Arc<Metrics>) {
    loop {
        let up = client.connection_state() == async_nats::connection::State::Connected;
        metrics.connected.set(i64::from(up));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
