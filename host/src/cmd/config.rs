//! `edge-runner config check`: validates the configuration and everything it names, prints
//! the effective configuration, and flags every relaxed protection. Loading goes through
//! the same per-component functions `Runner::open` uses (`pipeline::setup`), so "check
//! passes" means "run can start";
//! this module adds only the checks `run` makes lazily (state directory, replay store,
//! event files, sandbox plan) and the list of relaxations. It changes no setting.

use super::run::Overrides;
use super::{CmdResult, Exit, Failure, Global};
use clap::{Args, Subcommand};
use edge_runner::config::Config;
use edge_runner::events::{EventsError, SinkConfig};
use edge_runner::manifest::ClaimsConfig;
use edge_runner::pipeline::{SetupError, setup};
use edge_runner::reason::Refuse as _;
use edge_runner::replay::ReplayStore;
use edge_runner::sandbox::policy::DEFAULT_MASKED_PATHS;
use edge_runner::sandbox::support::{AppArmor, HostSupport};
use edge_runner::sandbox::{BackendChoice, Requirement, plan};
use std::path::{Path, PathBuf};

/// Work with the configuration file.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    Check(CheckArgs),
}

/// Check the configuration and what it names; print the effective configuration and
/// every relaxed protection.
///
/// Reads the file from --config, $EDGE_RUNNER_CONFIG or /etc/edge-runner/config.toml
/// (unknown keys are refused), applies the same flag overrides as `run`, then checks what
/// `run` would use: the key set loads and every key validates through its verifier plugin;
/// plugin files match their sha256 pins; the armory opens, is trusted and its index reads;
/// the state directory is private and writable and its replay store readable (the state
/// directory and plugin cache are created, as `run` would); event files can be written;
/// the sandbox policy can run on this host (`edge-runner sandbox check` adds a trial run).
///
/// Prints the effective configuration as TOML, then `ok:` lines for what passed and a
/// `relaxed:` line for every protection weaker than the hardened default (AppArmor or
/// seccomp not required, the native backend chosen although runsc is installed, masked
/// paths removed, wider claim windows, plain HTTP to a remote host). Problems go to stderr,
/// one `problem:` line each, naming the key and what to do.
///
/// Exit 0: everything is usable (relaxations are warnings); 2: something is invalid.
///
/// Example: edge-runner --config /etc/edge-runner/config.toml config check
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub overrides: Overrides,
    /// Print one JSON document instead: `source`, `effective` (the configuration),
    /// `ok`, `relaxed`, `problems` ({key, message}) and `usable`.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: ConfigArgs) -> CmdResult {
    let ConfigCommand::Check(c) = args.command;
    check(global, &c)
}

/// One thing that would stop `run`: the key (or section) at fault and what to do.
struct Problem {
    key: &'static str,
    message: String,
}

fn check(global: &Global, args: &CheckArgs) -> CmdResult {
    let file = super::config_path(global);
    let mut config = super::load_config(global)?;
    let overridden = args.overrides.any();
    args.overrides.apply(&mut config)?;
    config
        .check_effective()
        .map_err(|e| Failure::Usage(e.into()))?;
    let canonical = file.as_deref().and_then(|p| std::fs::canonicalize(p).ok());

    let mut ok = Vec::new();
    let mut problems = Vec::new();
    check_loading(&config, &mut ok, &mut problems);
    check_authorization(&config, &mut ok, &mut problems);
    check_state_dir(&config.state_dir, &mut ok, &mut problems);
    check_sinks(&config, &mut ok, &mut problems);
    let policy = config.sandbox_policy(canonical.as_deref());
    let host = HostSupport::probe(policy.runsc_path.as_deref());
    match plan::resolve(&policy, &host) {
        Ok(p) => ok.push(format!(
            "sandbox: backend {}{}, apparmor {}, seccomp {} (`edge-runner sandbox check` \
             adds a trial run)",
            p.backend.name(),
            match &p.backend {
                plan::Backend::Runsc { binary } => format!(" ({})", binary.display()),
                plan::Backend::Native => String::new(),
            },
            p.apparmor_posture(),
            p.seccomp_posture()
        )),
        Err(r) => problems.push(Problem {
            key: "sandbox",
            message: format!(
                "tasks would be refused as {}: {}",
                r.reason.code(),
                r.message
            ),
        }),
    }

    let source = match (&file, overridden) {
        (Some(f), false) => f.display().to_string(),
        (Some(f), true) => format!("{} with command-line overrides", f.display()),
        (None, _) => "built-in defaults, no configuration file".to_owned(),
    };
    let relaxed = relaxations(&config, &host);
    if args.json {
        let mut effective = config.clone();
        effective.events.source = Some(config.events.source());
        effective.events.sinks = config.events.sinks();
        effective.armory_settings.path = Some(config.armory.clone());
        effective.armory_settings.authorization = Some(config.armory_settings.mode());
        let doc = serde_json::json!({
            "source": source,
            "effective": effective,
            "ok": ok,
            "relaxed": relaxed,
            "problems": problems
                .iter()
                .map(|p| serde_json::json!({"key": p.key, "message": p.message}))
                .collect::<Vec<_>>(),
            "usable": problems.is_empty(),
        });
        super::write_stdout(&format!("{doc}\n"))?;
        return if problems.is_empty() {
            Ok(Exit::Ok)
        } else {
            Err(Failure::Usage(anyhow::anyhow!(
                "the configuration ({source}) is not usable: {} problem(s); see \"problems\"",
                problems.len()
            )))
        };
    }
    let mut out = format!("# effective configuration ({source})\n");
    out.push_str(&effective_toml(&config)?);
    out.push_str("\n# checks\n");
    for line in &ok {
        out.push_str(&format!("ok: {line}\n"));
    }
    for line in &relaxed {
        out.push_str(&format!("relaxed: {line}\n"));
    }
    if problems.is_empty() {
        out.push_str(&format!(
            "configuration usable ({} relaxed protection{})\n",
            relaxed.len(),
            if relaxed.len() == 1 { "" } else { "s" }
        ));
    }
    super::write_stdout(&out)?;
    if problems.is_empty() {
        return Ok(Exit::Ok);
    }
    let mut message = format!(
        "the configuration ({source}) is not usable: {} problem{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in &problems {
        message.push_str(&format!("\nproblem: {}: {}", p.key, p.message));
    }
    Err(Failure::Usage(anyhow::anyhow!(message)))
}

/// The configuration as `run` sees it, with the defaults that depend on the host (event
/// source, default sink) filled in, as TOML that loads back.
fn effective_toml(config: &Config) -> Result<String, Failure> {
    let mut effective = config.clone();
    effective.events.source = Some(config.events.source());
    effective.events.sinks = config.events.sinks();
    effective.armory_settings.path = Some(config.armory.clone());
    effective.armory_settings.authorization = Some(config.armory_settings.mode());
    toml::to_string(&effective).map_err(|e| {
        Failure::Runner(anyhow::Error::new(e).context("failed to print the configuration"))
    })
}

/// Plugins, mapper and sinks, keys and verifiers, and the armory: each component opened
/// by the same function `Runner::open` uses, on its own, so that every broken component
/// is reported in one pass.
fn check_loading(config: &Config, ok: &mut Vec<String>, problems: &mut Vec<Problem>) {
    let chain = |e: &dyn std::error::Error| edge_runner::reason::chain(e);
    let host = match setup::plugin_host(config, false) {
        Ok(h) => Some(h),
        Err(e) => {
            problems.push(Problem {
                key: "plugins",
                message: chain(&e),
            });
            None
        }
    };
    if let Some(host) = host {
        let events = setup::events(config, &host);
        if let Err(e) = &events {
            let key = match e {
                SetupError::Events(EventsError::Mapper(_)) => "plugins.mapper",
                _ => "events.sinks",
            };
            problems.push(Problem {
                key,
                message: chain(e),
            });
        }
        match setup::verifier(config, host) {
            Ok(verifier) => {
                let keys = verifier.keys();
                let list: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{} {}", k.kid, k.alg))
                    .collect();
                ok.push(format!(
                    "keys {}: {} key{} ({}), each validated by its verifier plugin",
                    config.keys.display(),
                    keys.len(),
                    if keys.len() == 1 { "" } else { "s" },
                    list.join(", ")
                ));
                if events.is_ok() {
                    ok.push(plugins_line(config));
                }
            }
            Err(e) => {
                let key = match e {
                    SetupError::Plugins(_) => "plugins",
                    _ => "keys",
                };
                problems.push(Problem {
                    key,
                    message: chain(&e),
                });
            }
        }
    }
    // `run` reads the index per task: an unreadable one would refuse every task.
    match setup::armory(config).map_err(|e| match e {
        SetupError::Armory(a) => a,
        other => edge_runner::armory::ArmoryError::Index {
            path: config.armory.clone(),
            problem: chain(&other),
        },
    }) {
        Ok(armory) => match armory.list() {
            Ok(tools) => {
                let authorized = tools
                    .iter()
                    .filter(|(_, e)| e.status() == "authorized")
                    .count();
                ok.push(format!(
                    "armory {}: trusted, {} tool{} ({authorized} authorized)",
                    config.armory.display(),
                    tools.len(),
                    if tools.len() == 1 { "" } else { "s" }
                ));
            }
            Err(e) => problems.push(Problem {
                key: "armory",
                message: chain(&e),
            }),
        },
        Err(e) => problems.push(Problem {
            key: "armory",
            message: chain(&e),
        }),
    }
}

/// Which authorization mode is in force and, in signed mode, whether the installed
/// statement verifies and is current (without one every task is refused).
fn check_authorization(config: &Config, ok: &mut Vec<String>, problems: &mut Vec<Problem>) {
    use edge_runner::armory::policy::{Gate, Judge};
    use edge_runner::config::AuthorizationMode;
    let settings = &config.armory_settings;
    let pull = if settings.pull.on_demand {
        format!(
            "pull-on-demand on (registries: {})",
            settings.pull.registries.join(", ")
        )
    } else {
        "pull-on-demand off".to_owned()
    };
    if settings.mode() == AuthorizationMode::Local {
        ok.push(format!(
            "armory authorization: local{} (`armory authorize` marks in the index decide what              runs; set [armory] authorization = \"signed\" to require the control plane's              signed statements); {pull}",
            if settings.authorization.is_none() {
                ", the default when [armory] authorization is not set"
            } else {
                ""
            }
        ));
        return;
    }
    let problem = |message: String| Problem {
        key: "armory.authorization",
        message,
    };
    let verifier = match setup::plugin_host(config, false)
        .and_then(|host| setup::policy_verifier(config, host))
    {
        Ok(v) => v,
        Err(e) => {
            problems.push(problem(format!(
                "signed mode, but the statement key set does not load: {}",
                edge_runner::reason::chain(&e)
            )));
            return;
        }
    };
    let Ok(armory) = setup::armory(config) else {
        // Reported by check_loading.
        return;
    };
    let audience = config.runner.audience();
    let judge = Judge {
        verifier: &verifier,
        audience: &audience,
        skew: chrono::TimeDelta::seconds(config.claims.clock_skew_secs as i64),
    };
    match Gate::default().current(&armory, &judge, chrono::Utc::now()) {
        Ok(s) => ok.push(format!(
            "armory authorization: signed (statement sequence {}, {} tool{}, expires {}); {pull}",
            s.sequence,
            s.tools.len(),
            if s.tools.len() == 1 { "" } else { "s" },
            s.expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        Err(e) => {
            use edge_runner::reason::Refuse as _;
            let r = e.to_refusal();
            problems.push(problem(format!(
                "signed mode: every task would be refused as {}: {}",
                r.reason.code(),
                r.message
            )));
        }
    }
}

/// The plugins in use, once they all loaded.
fn plugins_line(config: &Config) -> String {
    format!(
        "plugins: verifier overrides {}, mapper {}; pins match",
        if config.plugins.verifiers.is_empty() {
            "none (embedded defaults)".to_owned()
        } else {
            config
                .plugins
                .verifiers
                .iter()
                .map(|(alg, v)| match v {
                    edge_runner::config::VerifierSetting::Backend(name) => format!("{alg}={name}"),
                    edge_runner::config::VerifierSetting::File(f) => {
                        format!("{alg}={}", f.path.display())
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
        match &config.plugins.mapper {
            Some(m) => m.path.display().to_string(),
            None => "embedded default".to_owned(),
        }
    )
}

/// The state directory is private and writable, and its replay store readable.
fn check_state_dir(dir: &Path, ok: &mut Vec<String>, problems: &mut Vec<Problem>) {
    let mut problem = |message: String| {
        problems.push(Problem {
            key: "state_dir",
            message,
        });
    };
    if let Err(e) = edge_runner::fsperm::ensure_private_dir(dir, "state directory") {
        problem(format!("{:#}", anyhow::Error::new(e)));
        return;
    }
    if let Err(e) = tempfile::Builder::new()
        .prefix(".config-check.")
        .tempfile_in(dir)
    {
        problem(format!(
            "failed to write in the state directory {}: {e}; the replay store, plugin cache \
             and event spool live there",
            dir.display()
        ));
        return;
    }
    match ReplayStore::new(dir).stats() {
        Ok(stats) => ok.push(format!(
            "state directory {}: private and writable; the replay store remembers {} nonce{}",
            dir.display(),
            stats.entries,
            if stats.entries == 1 { "" } else { "s" }
        )),
        Err(e) => problem(e.to_refusal().message),
    }
}

/// Event files can be created or appended to (a missing directory would fail every task
/// with exit 4 after it ran).
fn check_sinks(config: &Config, ok: &mut Vec<String>, problems: &mut Vec<Problem>) {
    let mut described = Vec::new();
    for sink in config.events.sinks() {
        match sink {
            SinkConfig::Stdout => described.push("stdout".to_owned()),
            SinkConfig::Http { url, name, .. } => described.push(format!("http {name} {url}")),
            SinkConfig::File { path, .. } => match file_sink_problem(&path) {
                None => described.push(format!("file {}", path.display())),
                Some(message) => problems.push(Problem {
                    key: "events.sinks",
                    message,
                }),
            },
        }
    }
    if !described.is_empty() {
        ok.push(format!("events: {}", described.join(", ")));
    }
    if let Some(signing) = &config.events.signing {
        match edge_runner::events::signing::EventSigner::load(&signing.key) {
            Ok(s) => ok.push(format!(
                "events are signed with ES256 key {} ({})",
                s.kid(),
                signing.key.display()
            )),
            Err(e) => problems.push(Problem {
                key: "events.signing.key",
                message: format!("{:#}", anyhow::Error::new(e)),
            }),
        }
    }
}

fn file_sink_problem(path: &Path) -> Option<String> {
    use nix::unistd::{AccessFlags, access};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Some(format!(
                "file sink {} is a symbolic link, which the sink refuses to follow; point \
                 the configuration at the real file",
                path.display()
            ));
        }
        Ok(m) if !m.is_file() => {
            return Some(format!(
                "file sink {} is not a regular file",
                path.display()
            ));
        }
        Ok(_) => {
            return access(path, AccessFlags::W_OK)
                .err()
                .map(|e| format!("file sink {} is not writable: {e}", path.display()));
        }
        Err(_) => {}
    }
    if !dir.is_dir() {
        return Some(format!(
            "file sink {}: the directory {} does not exist; create it (the sink creates \
             only the file)",
            path.display(),
            dir.display()
        ));
    }
    access(&dir, AccessFlags::W_OK | AccessFlags::X_OK)
        .err()
        .map(|e| {
            format!(
                "file sink {}: cannot create files in {}: {e}",
                path.display(),
                dir.display()
            )
        })
}

/// Every protection weaker than the hardened default, with what it means and how to
/// restore it. Tuning that protects nothing (plugin cache, limits) is not listed.
fn relaxations(config: &Config, host: &HostSupport) -> Vec<String> {
    let mut out = Vec::new();
    let sandbox = &config.sandbox;
    let apparmor_here = match &host.apparmor {
        AppArmor::Enabled { .. } => "this host has AppArmor".to_owned(),
        AppArmor::Unavailable(why) => format!("on this host: {why}"),
    };
    match sandbox.apparmor {
        Requirement::Required => {}
        Requirement::IfAvailable => out.push(format!(
            "sandbox.apparmor = \"if-available\": tools run without AppArmor confinement when \
             it cannot be applied ({apparmor_here}); events record what was in force. \
             Restore with apparmor = \"required\""
        )),
        Requirement::Off => out.push(format!(
            "sandbox.apparmor = \"off\": tools never run under AppArmor ({apparmor_here}). \
             Restore with apparmor = \"required\""
        )),
    }
    match sandbox.seccomp {
        Requirement::Required => {}
        req => out.push(format!(
            "sandbox.seccomp = \"{}\": the system-call deny list may not be applied (native \
             backend), or not loaded inside gVisor (runsc). Restore with seccomp = \"required\"",
            req.as_str()
        )),
    }
    if sandbox.backend == BackendChoice::Native
        && let Some(runsc) = &host.runsc
    {
        out.push(format!(
            "sandbox.backend = \"native\" although runsc is installed ({}): tools talk to the \
             host kernel directly instead of gVisor's. Use backend = \"runsc\" (or \"auto\")",
            runsc.display()
        ));
    }
    let unmasked: Vec<&str> = DEFAULT_MASKED_PATHS
        .iter()
        .copied()
        .filter(|d| !sandbox.masked_paths.iter().any(|m| m == Path::new(d)))
        .collect();
    if !unmasked.is_empty() {
        out.push(format!(
            "sandbox.masked_paths no longer hides {}: tools can read them (read-only). Add them \
             back to the list",
            unmasked.join(", ")
        ));
    }
    // Issue 12: Landlock, cgroups, the seccomp allow list and what Landlock lets execute.
    let landlock_here = match host.landlock_abi {
        Some(abi) => format!("this kernel has Landlock ABI {abi}"),
        None => "this kernel has no Landlock".to_owned(),
    };
    match sandbox.landlock {
        Requirement::Required => {}
        Requirement::IfAvailable => out.push(format!(
            "sandbox.landlock = \"if-available\": native tools run with the mount view as \
             their only filesystem layer when Landlock cannot be applied ({landlock_here}); \
             events record landlock=unavailable. Restore with landlock = \"required\""
        )),
        Requirement::Off => out.push(format!(
            "sandbox.landlock = \"off\": native tools never run under a Landlock ruleset \
             ({landlock_here}): a writable or executable path the view exposes by mistake is \
             not caught by a second layer. Restore with landlock = \"required\""
        )),
    }
    match sandbox.cgroups {
        Requirement::Required => {}
        req => out.push(format!(
            "sandbox.cgroups = \"{}\": a run may get no cgroup of its own (no sandbox-wide \
             process and memory caps, no kill of the whole tree; per-process rlimits only), or \
             one without the pids and memory limits; events record which. Restore with \
             cgroups = \"required\"",
            req.as_str()
        )),
    }
    for (key, names) in &sandbox.seccomp_allow {
        if names.is_empty() {
            continue;
        }
        let whom = if key == "*" {
            "every tool".to_owned()
        } else {
            format!("the tool {key}")
        };
        out.push(format!(
            "sandbox.seccomp_allow {key:?}: {whom} may also call {} (outside the default \
             allow list); events list them in seccomp_extra. Remove the entry to restore",
            names.join(", ")
        ));
    }
    let default_exec: Vec<PathBuf> = edge_runner::sandbox::policy::DEFAULT_LANDLOCK_EXEC
        .iter()
        .map(PathBuf::from)
        .collect();
    let extra_exec: Vec<String> = sandbox
        .landlock_exec
        .iter()
        .filter(|p| !default_exec.contains(p))
        .map(|p| p.display().to_string())
        .collect();
    if !extra_exec.is_empty() {
        out.push(format!(
            "sandbox.landlock_exec adds {}: Landlock lets tools execute programs there too. \
             Remove them to restore",
            extra_exec.join(", ")
        ));
    }
    if !config.claims.require_audience {
        out.push(
            "claims.require_audience = false: a task that names no audience runs on every \
             runner trusting its signer, so one captured task can run once per runner. \
             Restore with require_audience = true and sign tasks with --aud"
                .to_owned(),
        );
    }
    if !config.claims.require_typ {
        out.push(
            "claims.require_typ = false: a signed object that is not a task (another kind of \
             statement signed by the same key) is not refused for its type. Restore with \
             require_typ = true"
                .to_owned(),
        );
    }
    let claims = ClaimsConfig::default();
    if config.claims.clock_skew_secs > claims.clock_skew_secs {
        out.push(format!(
            "claims.clock_skew_secs = {} (default {}): expired tasks are accepted longer; \
             fix the clocks instead",
            config.claims.clock_skew_secs, claims.clock_skew_secs
        ));
    }
    if config.claims.max_manifest_age_secs > claims.max_manifest_age_secs {
        out.push(format!(
            "claims.max_manifest_age_secs = {} (default {}): a stolen task stays valid longer",
            config.claims.max_manifest_age_secs, claims.max_manifest_age_secs
        ));
    }
    for sink in &config.events.sinks {
        if let SinkConfig::Http {
            url,
            name,
            allow_remote_plaintext: true,
            ..
        } = sink
        {
            out.push(format!(
                "events.sinks http {name}: allow_remote_plaintext = true: events (task output, \
                 manifests) may cross the network in clear to {url}. Deliver to a loopback \
                 relay that forwards with TLS instead"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(apparmor: bool, runsc: bool) -> HostSupport {
        HostSupport {
            runsc: runsc.then(|| PathBuf::from("/usr/bin/runsc")),
            apparmor: if apparmor {
                AppArmor::Enabled { profiles: vec![] }
            } else {
                AppArmor::Unavailable("this kernel has no AppArmor".into())
            },
            seccomp: Ok(()),
            user_namespaces: Ok(()),
            mount_api: Ok(()),
            cgroups: None,
            cgroups_problem: None,
            landlock_abi: None,
            root: true,
        }
    }

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("c.toml")).unwrap()
    }

    #[test]
    fn the_hardened_defaults_relax_nothing() {
        assert!(relaxations(&parse(""), &host(false, true)).is_empty());
        // Turning the plugin cache off or tightening limits protects nothing less.
        let tuned = parse(
            "[plugins]\ncache = false\n[limits]\nmax_timeout_ms = 1000\ndefault_timeout_ms = 1000\n",
        );
        assert!(relaxations(&tuned, &host(true, false)).is_empty());
    }

    #[test]
    fn every_relaxed_protection_is_flagged_once() {
        let config = parse(
            "[sandbox]\nbackend = \"native\"\napparmor = \"if-available\"\nseccomp = \"off\"\n\
             masked_paths = [\"/home\"]\n\
             [claims]\nclock_skew_secs = 300\nmax_manifest_age_secs = 3600\n\
             [[events.sinks]]\ntype = \"http\"\nurl = \"http://collector.example/e\"\n\
             allow_remote_plaintext = true\n",
        );
        let r = relaxations(&config, &host(false, true));
        let has = |needle: &str| r.iter().filter(|l| l.contains(needle)).count() == 1;
        assert!(has("sandbox.apparmor = \"if-available\""), "{r:#?}");
        assert!(has("sandbox.seccomp = \"off\""), "{r:#?}");
        assert!(has("sandbox.backend = \"native\""), "{r:#?}");
        assert!(
            has("/root") && !r.iter().any(|l| l.contains("/home,")),
            "{r:#?}"
        );
        assert!(has("claims.clock_skew_secs = 300"), "{r:#?}");
        assert!(has("claims.max_manifest_age_secs = 3600"), "{r:#?}");
        assert!(has("allow_remote_plaintext"), "{r:#?}");
        assert_eq!(r.len(), 7, "{r:#?}");
    }

    #[test]
    fn relaxed_landlock_cgroups_and_a_widened_allow_list_are_flagged() {
        let config = parse(
            "[sandbox]
landlock = \"if-available\"
cgroups = \"off\"
             landlock_exec = [\"/usr\", \"/opt/tools\"]
             [sandbox.seccomp_allow]
\"*\" = [\"modify_ldt\"]
",
        );
        let r = relaxations(&config, &host(false, false));
        let has = |needle: &str| r.iter().filter(|l| l.contains(needle)).count() == 1;
        assert!(has("sandbox.landlock = \"if-available\""), "{r:#?}");
        assert!(has("no Landlock"), "{r:#?}");
        assert!(has("sandbox.cgroups = \"off\""), "{r:#?}");
        assert!(has("every tool may also call modify_ldt"), "{r:#?}");
        assert!(has("/opt/tools"), "{r:#?}");
        assert_eq!(r.len(), 4, "{r:#?}");
        // An unknown name is not a relaxation: the configuration is refused, by code.
        let bad = Config::parse(
            "[sandbox.seccomp_allow]\n\"*\" = [\"open_treee\"]\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        let text = edge_runner::reason::chain(&bad);
        assert!(text.contains("seccomp_allow_unknown"), "{text}");
        assert!(text.contains("\"open_treee\""), "{text}");
    }

    #[test]
    fn native_is_a_relaxation_only_where_runsc_is_installed() {
        let config = parse("[sandbox]\nbackend = \"native\"\n");
        assert_eq!(relaxations(&config, &host(true, true)).len(), 1);
        assert!(relaxations(&config, &host(true, false)).is_empty());
    }

    #[test]
    fn the_effective_configuration_loads_back_unchanged() {
        let config = parse(
            "state_dir = \"/srv/er\"\n[sandbox]\napparmor = \"off\"\n[[events.sinks]]\n\
             type = \"file\"\npath = \"/var/log/er.jsonl\"\n",
        );
        let text = effective_toml(&config).unwrap();
        let again = parse(&text);
        assert_eq!(again.armory, PathBuf::from("/srv/er/armory"));
        assert_eq!(again.sandbox, config.sandbox);
        assert_eq!(again.events.sinks, config.events.sinks);
        assert_eq!(again.events.source, Some(config.events.source()));
        assert_eq!(effective_toml(&again).unwrap(), text);
    }
}
