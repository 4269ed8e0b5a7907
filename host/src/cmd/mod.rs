//! Command-line surface: flag parsing (clap), loading configuration, and the exit-code
//! table. Each subcommand lives in its own file and calls into the library; this module
//! only wires them up and reports failures.

mod apparmor;
mod armory;
mod config;
mod demo;
mod events;
mod keys;
mod manifest;
mod plugin;
mod plugins;
mod run;
mod sandbox;
mod serve;
mod task;
mod verify;

use clap::{Args, Parser, Subcommand};
use edge_runner::config::Config;
use edge_runner::reason::Refusal;
use std::path::PathBuf;

/// Exit codes, the documented contract with scripts and supervisors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The task verified (and, for `run`, the tool ran and exited 0).
    Ok = 0,
    /// The tool ran and failed (non-zero exit, signal or timeout).
    ToolFailed = 1,
    /// Usage or configuration error.
    Usage = 2,
    /// The task was refused; the reason code is on stderr.
    Denied = 3,
    /// The runner itself failed (I/O, sandbox setup, plugin engine).
    RunnerFailed = 4,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  the task verified (run: the tool ran and exited 0)
  1  the tool ran and failed (non-zero exit, signal or timeout)
  2  usage or configuration error
  3  the task was refused; the stable reason code is printed on stderr
  4  the runner itself failed (I/O, sandbox setup, plugin engine)";

/// A hardened edge execution host: verifies signed tasks through WebAssembly plugins and
/// runs digest-pinned tools in a sandbox.
#[derive(Debug, Parser)]
#[command(name = "edge-runner", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file [default: $EDGE_RUNNER_CONFIG, else /etc/edge-runner/config.toml
    /// when it exists, else built-in defaults].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::RunArgs),
    Serve(serve::ServeArgs),
    Task(task::TaskArgs),
    Demo(demo::DemoArgs),
    Verify(verify::VerifyArgs),
    Events(events::EventsArgs),
    Plugins(plugins::PluginsArgs),
    Plugin(plugin::PluginArgs),
    Keys(keys::KeysArgs),
    Manifest(manifest::ManifestArgs),
    Sandbox(sandbox::SandboxArgs),
    Apparmor(apparmor::AppArmorArgs),
    Armory(armory::ArmoryArgs),
    Config(config::ConfigArgs),
}

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// Bad flags or configuration (exit 2).
    Usage(anyhow::Error),
    /// The task was refused (exit 3).
    Denied(Refusal),
    /// The runner is broken (exit 4).
    Runner(anyhow::Error),
    /// The runner failed with a stable reason code (exit 4): `armory_failed`,
    /// `sandbox_failed`.
    RunnerRefusal(Refusal),
}

impl Failure {
    pub fn exit_code(&self) -> Exit {
        match self {
            Failure::Usage(_) => Exit::Usage,
            Failure::Denied(_) => Exit::Denied,
            Failure::Runner(_) | Failure::RunnerRefusal(_) => Exit::RunnerFailed,
        }
    }

    /// The stable code of this failure: the reason code of a refusal, otherwise a code
    /// naming the kind of problem (`config_invalid`, `keys_invalid`, `plugin_invalid`,
    /// `armory_untrusted`, `events_setup_failed`, `fleet_unavailable`, `usage`,
    /// `runner_failed`). Scripts branch on it; the message is for people.
    pub fn code(&self) -> &'static str {
        use edge_runner::pipeline::SetupError;
        match self {
            Failure::Denied(r) | Failure::RunnerRefusal(r) => r.reason.code(),
            Failure::Usage(e) => {
                if e.downcast_ref::<edge_runner::config::ConfigError>()
                    .is_some()
                {
                    "config_invalid"
                } else if let Some(s) = e.downcast_ref::<SetupError>() {
                    match s {
                        SetupError::Trust(_) | SetupError::Keys(_) => "keys_invalid",
                        SetupError::Plugins(_) => "plugin_invalid",
                        SetupError::Armory(_) => "armory_untrusted",
                        SetupError::Events(_) => "events_setup_failed",
                        SetupError::Registry(_) => "registry_setup_failed",
                    }
                } else if e
                    .downcast_ref::<edge_runner::plugins::PluginError>()
                    .is_some()
                {
                    "plugin_invalid"
                } else if e.downcast_ref::<edge_runner::fleet::FleetError>().is_some() {
                    "fleet_config_invalid"
                } else {
                    "usage"
                }
            }
            Failure::Runner(e) => {
                if e.downcast_ref::<edge_runner::fleet::FleetError>().is_some() {
                    "fleet_unavailable"
                } else {
                    "runner_failed"
                }
            }
        }
    }

    /// Prints the failure once, with its cause chain, on stderr: `error[<code>]: ...`,
    /// or one JSON object with `--log-format json`.
    #[allow(clippy::print_stderr)]
    pub fn report(&self, format: LogFormat) {
        let (message, stage) = match self {
            Failure::Denied(r) | Failure::RunnerRefusal(r) => (r.message.clone(), Some(r.stage())),
            Failure::Usage(e) | Failure::Runner(e) => (format!("{e:#}"), None),
        };
        match format {
            LogFormat::Json => {
                let doc = serde_json::json!({
                    "error": {
                        "code": self.code(),
                        "exit": self.exit_code() as u8,
                        "stage": stage.map(|s| s.as_str()),
                        "message": message,
                    }
                });
                eprintln!("{doc}");
            }
            LogFormat::Text => match stage {
                Some(stage) => eprintln!("error[{}]: {message} (stage: {stage})", self.code()),
                None => eprintln!("error[{}]: {message}", self.code()),
            },
        }
    }
}

pub type CmdResult = Result<Exit, Failure>;

/// A refusal at the CLI edge: a judged task exits 3 with its code; a runner failure
/// (a runner-failure reason code) exits 4.
pub fn refused(r: Refusal) -> Failure {
    if r.is_runner_failure() {
        Failure::RunnerRefusal(r)
    } else {
        Failure::Denied(r)
    }
}

pub fn run(cli: Cli) -> CmdResult {
    match cli.command {
        Command::Run(args) => run::run(&cli.global, args),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Task(args) => task::run(&cli.global, args),
        Command::Demo(args) => demo::run(&cli.global, args),
        Command::Verify(args) => verify::run(&cli.global, args),
        Command::Events(args) => events::run(&cli.global, args),
        Command::Plugins(args) => plugins::run(&cli.global, args),
        Command::Plugin(args) => plugin::run(&cli.global, args),
        Command::Keys(args) => keys::run(args),
        Command::Manifest(args) => manifest::run(&cli.global, args),
        Command::Armory(args) => armory::run(&cli.global, args),
        Command::Sandbox(args) => sandbox::run(&cli.global, args),
        Command::Apparmor(args) => apparmor::run(args),
        Command::Config(args) => config::run(&cli.global, args),
    }
}

pub fn init_logging(global: &Global) {
    use tracing_subscriber::EnvFilter;
    let default = match global.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_env("EDGE_RUNNER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only on a terminal: a pipe, a file or journald gets plain text (issue 18).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match global.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads the configuration named by `--config`, `$EDGE_RUNNER_CONFIG`, or the default
/// path when it exists; otherwise the built-in defaults.
pub fn load_config(global: &Global) -> Result<Config, Failure> {
    let explicit = global.config.clone().or_else(|| {
        std::env::var_os(edge_runner::config::ENV_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let path = match explicit {
        Some(p) => p,
        None => {
            let p = PathBuf::from(edge_runner::config::DEFAULT_PATH);
            if !p.exists() {
                return Ok(Config::default());
            }
            p
        }
    };
    Config::load(&path).map_err(|e| Failure::Usage(e.into()))
}

/// Every verifier plugin, embedded and configured (for listing them).
pub fn load_verifiers(config: &Config) -> Result<edge_runner::plugins::Verifiers, Failure> {
    let host = edge_runner::pipeline::setup::plugin_host(config, false)
        .map_err(|e| Failure::Runner(e.into()))?;
    edge_runner::plugins::Verifiers::load(host, &config.plugins.verifier_overrides())
        .map_err(|e| Failure::Usage(e.into()))
}

/// Reads a task from a file or `-` (stdin), bounded by `max` bytes (+1 to detect
/// oversize without reading everything).
pub fn read_task(path: &std::path::Path, max: usize) -> Result<Vec<u8>, Failure> {
    use std::io::Read as _;
    let mut buf = Vec::new();
    let limit = max as u64 + 1;
    let result = if path.as_os_str() == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut buf))
    };
    result.map_err(|e| {
        Failure::Usage(
            anyhow::Error::new(e).context(format!("failed to read task {}", path.display())),
        )
    })?;
    Ok(buf)
}

/// The configuration file in effect, if any: `--config`, `$EDGE_RUNNER_CONFIG`, or the
/// default path when it exists.
pub fn config_path(global: &Global) -> Option<PathBuf> {
    global
        .config
        .clone()
        .or_else(|| {
            std::env::var_os(edge_runner::config::ENV_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| Some(PathBuf::from(edge_runner::config::DEFAULT_PATH)).filter(|p| p.exists()))
}

/// Writes `text` to stdout, mapping a write error to a runner failure.
pub fn write_stdout(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Runner(anyhow::Error::new(e).context("failed to write to stdout")))
}
