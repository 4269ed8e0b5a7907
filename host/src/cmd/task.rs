//! `edge-runner task submit` and the NATS side of `events tail`: drive a fleet from a
//! shell. The task is verified by the runner that pulls it, not here.

use super::{CmdResult, Exit, Failure, Global};
use clap::{Args, Subcommand};
use edge_runner::config::Config;
use std::path::PathBuf;
use std::time::Duration;

/// Work with tasks on a fleet's queue.
#[derive(Debug, Args)]
pub struct TaskArgs {
    #[command(subcommand)]
    pub command: TaskCommand,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    Submit(SubmitArgs),
}

/// `events tail` options.
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Only this tenant's events.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop when no event arrived for this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub idle: u64,
}

/// The NATS server and subjects [default: the configuration's [fleet] section].
#[derive(Debug, Args, Default)]
pub struct NatsArgs {
    /// The NATS server (nats:// or tls://).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
}

/// Publish a signed task (a compact JWS) to its tenant's subject for a fleet to run.
///
/// The subject is `<fleet.task_subject_prefix>.<tenant>`; the tenant is --tenant, or
/// the one the task's payload names (read, not verified: the runner verifies it and
/// refuses a task published under another tenant's subject). The task's sha256 is its
/// `Nats-Msg-Id`, so submitting it twice within two minutes stores it once. Prints the
/// stream sequence number.
///
/// Example: edge-runner task submit --nats nats://127.0.0.1:4222 task.jws
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The tenant [default: the one the task names].
    #[arg(long)]
    pub tenant: Option<String>,
    /// The task: a file holding a compact JWS, or `-` for stdin.
    #[arg(value_name = "TASK")]
    pub task: PathBuf,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::Runner(anyhow::Error::new(e).context("failed to start the async runtime"))
        })
}

fn apply(config: &mut Config, nats: &NatsArgs) -> Result<(), Failure> {
    if let Some(url) = &nats.nats {
        config.fleet.nats_url = url.clone();
    }
    config
        .fleet
        .check()
        .map_err(|e| Failure::Usage(anyhow::anyhow!(e)))
}

pub fn run(global: &Global, args: TaskArgs) -> CmdResult {
    let mut config = super::load_config(global)?;
    let TaskCommand::Submit(s) = args.command;
    apply(&mut config, &s.nats)?;
    let task = super::read_task(&s.task, config.input.max_jws_bytes)?;
    let tenant = match &s.tenant {
        Some(t) => t.clone(),
        None => edge_runner::fleet::client::tenant_of_task(&task).ok_or_else(|| {
            Failure::Usage(anyhow::anyhow!(
                "the task names no readable task_context.tenant_id; give --tenant"
            ))
        })?,
    };
    let submitted = runtime()?
        .block_on(edge_runner::fleet::client::submit(
            &config.fleet,
            &task,
            &tenant,
        ))
        .map_err(|e| Failure::Runner(e.into()))?;
    let line = serde_json::json!({
        "subject": submitted.subject,
        "sequence": submitted.sequence,
        "duplicate": submitted.duplicate,
    });
    super::write_stdout(&format!("{line}\n"))?;
    Ok(Exit::Ok)
}

/// `events tail`.
pub fn tail(config: &mut Config, args: &TailArgs) -> CmdResult {
    apply(config, &args.nats)?;
    let mut out = std::io::stdout().lock();
    let seen = runtime()?
        .block_on(edge_runner::fleet::client::tail(
            &config.fleet,
            args.tenant.as_deref(),
            args.count,
            Duration::from_secs(args.idle),
            |event| {
                use std::io::Write as _;
                out.write_all(event)?;
                out.write_all(b"\n")?;
                out.flush()
            },
        ))
        .map_err(|e| Failure::Runner(e.into()))?;
    tracing::info!(events = seen, "tail ended");
    Ok(Exit::Ok)
}
