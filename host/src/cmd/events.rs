//! `edge-runner events`: operate the event sinks: deliver spooled events (`flush`),
//! inspect the spools (`status`), put dead-lettered events back (`requeue`), check
//! CloudEvents files (`validate`) and the runner's signatures on them (`verify`). Events
//! themselves are emitted by the task pipeline.

use super::{CmdResult, Exit, Failure, Global};
use clap::{Args, Subcommand};
use edge_runner::events::{EventSinks, validate};
use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

/// Operate the event sinks and check events.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
    /// The state directory holding the spools, as given to `run --state` (flush, status,
    /// requeue; given before the subcommand).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// The sink, as given to `run --events` (an `http://` URL): replaces the configured
    /// sinks, so that events spooled by `run --events http://...` can be flushed (flush,
    /// status, requeue; given before the subcommand).
    #[arg(long, value_name = "SINK")]
    pub events: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Deliver every spooled event, in order, retrying with backoff.
    ///
    /// Exits 0 when every spool is empty and nothing was dead-lettered, 4 otherwise
    /// (events still pending, or refused for good: see `events status`).
    ///
    /// Example: edge-runner events flush --wait 60
    Flush {
        /// Keep retrying for up to this many seconds while the receiver is unavailable.
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        wait: u64,
    },
    /// Show each HTTP sink's spool: pending events, dead letters, retry schedule.
    ///
    /// Example: edge-runner events status --json
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move dead-lettered events back into their spool (after fixing the cause); deliver
    /// them with `events flush`.
    ///
    /// Example: edge-runner events requeue && edge-runner events flush --wait 60
    Requeue,
    /// Check CloudEvents (structured JSON, one per line) against the CloudEvents v1.0
    /// rules and the configured size cap. Exits 2 if any line is invalid.
    ///
    /// Example: edge-runner events validate /var/log/edge-runner/events.jsonl
    Validate {
        /// A file of JSON lines, or `-` for stdin.
        file: PathBuf,
    },
    /// Print the events a fleet published to JetStream, one JSON line each (all of them,
    /// from the start of the stream, or one tenant's).
    ///
    /// Stops after --count events, or when none arrived for --idle seconds.
    ///
    /// Example: edge-runner events tail --nats nats://127.0.0.1:4222 --tenant acme --count 10
    Tail(super::task::TailArgs),
    /// Check the runner's signature on each event (JSON lines) and name every event that
    /// fails: unsigned, forged or altered, signed by a key not in the key set, bound to
    /// another event id or manifest, or a replay of an event id already seen in the
    /// stream (same `source` and `id`). Signatures are verified through the same verifier
    /// plugins as tasks. Exits 0 when every event verifies, 3 otherwise.
    ///
    /// Example: edge-runner events verify --keys runner-events.jwks /var/log/edge-runner/events.jsonl
    Verify {
        /// The runners' public event keys (a JWKS, as `keys generate --public` writes it).
        #[arg(long, value_name = "JWKS")]
        keys: PathBuf,
        /// A file of JSON lines, or `-` for stdin.
        file: PathBuf,
    },
}

/// Said when a spool command finds nothing to work on.
const NO_HTTP_SINK: &str =
    "no http sink is configured ([[events.sinks]] type = \"http\"); nothing is spooled";

pub fn run(global: &Global, args: EventsArgs) -> CmdResult {
    let mut config = super::load_config(global)?;
    if let EventsCommand::Tail(tail) = args.command {
        return super::task::tail(&mut config, &tail);
    }
    if let Some(dir) = &args.state {
        config.set_state_dir(dir.clone());
    }
    if let Some(spec) = &args.events {
        config.events.sinks = vec![super::run::parse_sink(spec)?];
    }
    // Spools no configured sink owns (left by `run --events http://...`, or by a sink that
    // was renamed or removed) are always reported, configured sinks or not.
    let owned: Vec<PathBuf> = config
        .events
        .sinks()
        .iter()
        .filter_map(|s| match s {
            edge_runner::events::SinkConfig::Http { name, .. } => Some(name.clone()),
            _ => None,
        })
        .flat_map(|name| {
            let (spool, dead) = edge_runner::events::spool_dirs(&config.state_dir, &name);
            [spool, dead]
        })
        .collect();
    let stranded: Vec<(PathBuf, usize)> = edge_runner::events::spooled_events(&config.state_dir)
        .into_iter()
        .filter(|(dir, _)| !owned.contains(dir))
        .collect();
    let describe = |dir: &PathBuf, n: usize| {
        // A dead-letter directory's destination is recorded in its spool's directory.
        let spool_dir = match (dir.parent(), dir.file_name()) {
            (Some(kind), Some(name)) if kind.file_name().is_some_and(|k| k == "dead-letter") => {
                kind.with_file_name("spool").join(name)
            }
            _ => dir.clone(),
        };
        let destination = edge_runner::events::spool_destination(&spool_dir)
            .unwrap_or_else(|| "http://URL".into());
        format!(
            "{}: {n} event(s) of an unconfigured sink; deliver with `edge-runner events --events {destination} flush`",
            dir.display()
        )
    };
    let offline = matches!(
        args.command,
        EventsCommand::Validate { .. } | EventsCommand::Verify { .. }
    );
    if owned.is_empty() && !offline {
        if stranded.is_empty() {
            let _ = writeln!(std::io::stdout().lock(), "{NO_HTTP_SINK}");
            return Ok(Exit::Ok);
        }
        if matches!(args.command, EventsCommand::Status { .. }) {
            let mut out = std::io::stdout().lock();
            for (dir, n) in &stranded {
                let _ = writeln!(out, "{}", describe(dir, *n));
            }
            return Ok(Exit::Ok);
        }
        let list: Vec<String> = stranded.iter().map(|(d, n)| describe(d, *n)).collect();
        return Err(Failure::Runner(anyhow::anyhow!(
            "events are spooled for a sink the configuration does not have (spooled by `run \
             --events http://...` or a renamed sink; give the same --state if one was given): {}",
            list.join("; ")
        )));
    }
    match args.command {
        EventsCommand::Tail(tail) => super::task::tail(&mut config, &tail),
        EventsCommand::Validate { file } => validate_file(&file, config.events.max_event_bytes),
        EventsCommand::Verify { keys, file } => verify_file(&config, &keys, &file),
        EventsCommand::Flush { wait } => {
            let sinks = open(&config)?;
            let reports = sinks
                .flush(Duration::from_secs(wait))
                .map_err(|e| Failure::Runner(e.into()))?;
            let mut clean = true;
            let mut out = std::io::stdout().lock();
            for r in &reports {
                clean &= r.pending == 0 && r.dead_lettered.is_empty();
                let _ = writeln!(
                    out,
                    "{}: delivered {}, pending {}, dead-lettered {}{}",
                    r.sink,
                    r.delivered,
                    r.pending,
                    r.dead_lettered.len(),
                    r.last_error
                        .as_ref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
                for (path, reason) in &r.dead_lettered {
                    let _ = writeln!(out, "  dead letter {}: {reason}", path.display());
                }
            }
            for (dir, n) in &stranded {
                let _ = writeln!(out, "{}", describe(dir, *n));
            }
            if !stranded.is_empty() {
                let list: Vec<String> = stranded.iter().map(|(d, n)| describe(d, *n)).collect();
                return Err(Failure::Runner(anyhow::anyhow!(
                    "events are spooled for sinks the configuration does not have: {}",
                    list.join("; ")
                )));
            }
            if clean {
                Ok(Exit::Ok)
            } else {
                Err(Failure::Runner(anyhow::anyhow!(
                    "events remain undelivered; see `edge-runner events status`"
                )))
            }
        }
        EventsCommand::Status { json } => {
            let sinks = open(&config)?;
            let status = sinks
                .spool_status()
                .map_err(|e| Failure::Runner(e.into()))?;
            let mut out = std::io::stdout().lock();
            let written = if json {
                let unconfigured = stranded.iter().map(|(dir, n)| {
                    serde_json::json!({
                        "sink": null,
                        "spool_dir": dir,
                        "pending": n,
                        "destination": edge_runner::events::spool_destination(dir),
                    })
                });
                let rows: Vec<_> = status
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "sink": s.sink,
                            "spool_dir": s.spool_dir,
                            "dead_letter_dir": s.dead_letter_dir,
                            "pending": s.pending,
                            "pending_bytes": s.pending_bytes,
                            "dead_letters": s.dead_letters,
                            "failures": s.failures,
                            "next_attempt_in_ms": s.next_attempt_in.as_millis() as u64,
                        })
                    })
                    .chain(unconfigured)
                    .collect();
                serde_json::to_writer_pretty(&mut out, &rows)
                    .map_err(std::io::Error::other)
                    .and_then(|()| writeln!(out))
            } else {
                status.iter().try_for_each(|s| {
                    writeln!(
                        out,
                        "{}: {} pending ({} bytes), {} dead-lettered, {} failed attempts, next attempt in {} ms\n  spool: {}\n  dead letters: {}",
                        s.sink,
                        s.pending,
                        s.pending_bytes,
                        s.dead_letters,
                        s.failures,
                        s.next_attempt_in.as_millis(),
                        s.spool_dir.display(),
                        s.dead_letter_dir.display()
                    )
                })
            };
            written.map_err(|e| {
                Failure::Runner(anyhow::Error::new(e).context("failed to write the status"))
            })?;
            if !json {
                for (dir, n) in &stranded {
                    let _ = writeln!(out, "{}", describe(dir, *n));
                }
            }
            Ok(Exit::Ok)
        }
        EventsCommand::Requeue => {
            let sinks = open(&config)?;
            let moved = sinks.requeue().map_err(|e| Failure::Runner(e.into()))?;
            let mut out = std::io::stdout().lock();
            for (sink, n) in moved {
                let _ = writeln!(out, "{sink}: {n} events requeued");
            }
            Ok(Exit::Ok)
        }
    }
}

fn open(config: &edge_runner::config::Config) -> Result<EventSinks, Failure> {
    EventSinks::open(config).map_err(|e| Failure::Runner(e.into()))
}

fn open_lines(path: &std::path::Path) -> Result<Box<dyn std::io::BufRead>, Failure> {
    Ok(if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(path).map_err(|e| {
            Failure::Usage(
                anyhow::Error::new(e).context(format!("failed to open {}", path.display())),
            )
        })?;
        Box::new(std::io::BufReader::new(f))
    })
}

fn validate_file(path: &std::path::Path, cap: usize) -> CmdResult {
    let reader = open_lines(path)?;
    let (mut total, mut bad) = (0u64, 0u64);
    let mut out = std::io::stdout().lock();
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| {
            Failure::Usage(
                anyhow::Error::new(e).context(format!("failed to read {}", path.display())),
            )
        })?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        total += 1;
        if let Err(e) = validate::check_json(&line, Some(cap)) {
            bad += 1;
            let _ = writeln!(out, "line {}: invalid [{}]: {e}", n + 1, e.code());
        }
    }
    let _ = writeln!(
        out,
        "{} events, {} valid, {} invalid",
        total,
        total - bad,
        bad
    );
    if bad == 0 {
        Ok(Exit::Ok)
    } else {
        Err(Failure::Usage(anyhow::anyhow!(
            "{bad} of {total} events in {} are invalid",
            path.display()
        )))
    }
}

/// `events verify`: every line's signature, through the verifier plugins, and replays
/// of an event id within the stream (`signing::StreamVerifier`).
fn verify_file(
    config: &edge_runner::config::Config,
    keys_path: &std::path::Path,
    path: &std::path::Path,
) -> CmdResult {
    use edge_runner::events::signing::StreamVerifier;
    use edge_runner::keys::KeySet;
    use edge_runner::verify::SignatureVerifier;

    let keys = KeySet::load(keys_path).map_err(|e| Failure::Usage(e.into()))?;
    let verifiers = super::load_verifiers(config)?;
    let verifier = SignatureVerifier::new(keys, verifiers).map_err(|e| Failure::Usage(e.into()))?;
    let mut stream = StreamVerifier::new(&verifier);
    let reader = open_lines(path)?;
    let (mut total, mut bad) = (0u64, 0u64);
    let mut out = std::io::stdout().lock();
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| {
            Failure::Usage(
                anyhow::Error::new(e).context(format!("failed to read {}", path.display())),
            )
        })?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        total += 1;
        let line_no = n + 1;
        match stream.check(&line, line_no) {
            Ok(v) => {
                let _ = writeln!(
                    out,
                    "line {line_no}: event {}: verified (kid {}, manifest {})",
                    edge_runner::text::printable(&v.id),
                    v.kid,
                    v.manifest_sha256.as_deref().unwrap_or("none")
                );
            }
            Err(e) => {
                bad += 1;
                let _ = writeln!(
                    out,
                    "line {line_no}: event {}: FAILED [{}]: {e}",
                    event_id(&line),
                    e.code()
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "{total} events, {} verified, {bad} failed",
        total - bad
    );
    if total == 0 {
        return Err(Failure::Usage(anyhow::anyhow!(
            "{} holds no events to verify",
            path.display()
        )));
    }
    if bad == 0 {
        return Ok(Exit::Ok);
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "error: {bad} of {total} events in {} failed verification",
        path.display()
    );
    Ok(Exit::Denied)
}

/// The `id` of an event line for a report, whatever else is wrong with it.
fn event_id(line: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| {
            v.get("id")
                .and_then(|i| i.as_str())
                .map(edge_runner::text::printable)
        })
        .unwrap_or_else(|| "(no id)".to_owned())
}
