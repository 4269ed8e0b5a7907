//! `edge-runner serve`: a long-lived fleet runner on NATS JetStream (see `fleet`). This
//! file only starts the runtime, wires SIGTERM/SIGINT to the drain, and maps the end to
//! the exit-code table.

use super::run::Overrides;
use super::{CmdResult, Exit, Failure, Global};
use clap::Args;
use edge_runner::fleet::FleetError;

/// Pull signed tasks from NATS JetStream and run each through the same pipeline as `run`.
///
/// Pulls `<fleet.task_subject_prefix>.<tenant>` for every tenant in [fleet] tenants
/// through durable consumers the fleet shares, runs at most fleet.concurrency tasks at
/// once, publishes each task's CloudEvent to `<fleet.event_subject_prefix>.<tenant>.<type>`
/// (Nats-Msg-Id = event id) and acknowledges the task only once its event is published or
/// kept in the local outbox. The fleet-wide replay guard (a JetStream key-value bucket)
/// makes sure no task runs twice across the fleet. SIGTERM or SIGINT stops pulling and
/// drains running tasks within fleet.drain_grace_secs. With fleet.health_addr set,
/// serves /healthz and /metrics (Prometheus).
///
/// Example: edge-runner --config /etc/edge-runner/config.toml serve --nats nats://10.0.0.5:4222
#[derive(Debug, Args)]
#[command(after_help = super::EXIT_CODES_HELP)]
pub struct ServeArgs {
    #[command(flatten)]
    pub overrides: Overrides,
    #[command(flatten)]
    pub nats: super::task::NatsArgs,
    /// A tenant to serve (repeat; replaces fleet.tenants).
    #[arg(long = "tenant", value_name = "TENANT")]
    pub tenants: Vec<String>,
    /// Tasks run at once (replaces fleet.concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// The health and metrics address (replaces fleet.health_addr).
    #[arg(long, value_name = "HOST:PORT")]
    pub health: Option<String>,
}

pub fn run(global: &Global, args: ServeArgs) -> CmdResult {
    let mut config = super::load_config(global)?;
    args.overrides.apply(&mut config)?;
    if let Some(url) = &args.nats.nats {
        config.fleet.nats_url = url.clone();
    }
    if !args.tenants.is_empty() {
        config.fleet.tenants = args.tenants.clone();
    }
    if let Some(c) = args.concurrency {
        config.fleet.concurrency = c;
    }
    if let Some(h) = &args.health {
        config.fleet.health_addr = Some(h.clone());
    }
    config
        .check_effective()
        .map_err(|e| Failure::Usage(e.into()))?;
    let config_file = super::config_path(global).and_then(|p| std::fs::canonicalize(p).ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("edge-runner-serve")
        .build()
        .map_err(|e| {
            Failure::Runner(anyhow::Error::new(e).context("failed to start the async runtime"))
        })?;
    // The runner is opened once, before the first task (plugins compiled or loaded from
    // the cache, keys validated, armory opened).
    let runner = edge_runner::pipeline::Runner::open_long_lived(&config, config_file.as_deref())
        .map_err(|e| Failure::Usage(e.into()))?;
    let settings = edge_runner::fleet::ServeSettings {
        fleet: config.fleet.clone(),
        runner_id: config.runner.id.clone(),
        state_dir: config.state_dir.clone(),
        max_manifest_age_secs: config.claims.max_manifest_age_secs,
        local_sinks: !config.events.sinks.is_empty(),
    };
    let result = runtime.block_on(async {
        let shutdown = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => std::future::pending::<()>().await,
            }
            tracing::info!("signal received: draining");
        };
        edge_runner::fleet::serve(runner, settings, shutdown).await
    });
    // Tasks abandoned at the end of the grace period keep their blocking threads: do not
    // wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(summary) => {
            tracing::info!(
                handled = summary.handled,
                abandoned = summary.abandoned,
                "stopped"
            );
            Ok(Exit::Ok)
        }
        Err(e @ (FleetError::Config(_) | FleetError::Setup(_))) => Err(Failure::Usage(e.into())),
        Err(e) => Err(Failure::Runner(e.into())),
    }
}
