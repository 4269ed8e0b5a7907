//! `edge-runner config check`, and configuration and usage errors of `run` (exit 2, no
//! event). Issue 6, "Configuration".

use super::{Backend, ECHO_TOOL, World, assert_exit, stderr, stdout};
use edge_runner::config::Config;
use std::path::Path;

/// Splits `config check` output into the effective configuration (parsed back) and the
/// lines of the checks section.
fn report(o: &std::process::Output) -> (Config, Vec<String>) {
    let out = stdout(o);
    let (toml, checks) = out
        .split_once("\n# checks\n")
        .unwrap_or_else(|| panic!("no checks section: {out}"));
    let config = Config::parse(toml, Path::new("printed"))
        .unwrap_or_else(|e| panic!("the printed configuration does not load back: {e}\n{toml}"));
    (config, checks.lines().map(str::to_owned).collect())
}

fn lines_starting<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn config_check_accepts_a_usable_configuration_and_prints_it() {
    let w = World::new(Backend::Runsc);
    w.add_tool("echo-tool", ECHO_TOOL, true);
    w.add_tool("pending", ECHO_TOOL.replace("uid", "id").as_str(), false);
    w.write_config(&format!(
        "keys = {:?}\n[sandbox]\napparmor = \"if-available\"\n[[events.sinks]]\ntype = \"file\"\n\
         path = {:?}\n",
        w.path("keys.json").to_str().unwrap(),
        w.events_file().to_str().unwrap()
    ));
    let o = w.er(&["config", "check"]);
    assert_exit(&o, 0);
    let (printed, checks) = report(&o);
    assert!(
        stdout(&o).starts_with(&format!(
            "# effective configuration ({})",
            w.config_file().display()
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(printed.state_dir, w.state());
    assert_eq!(printed.keys, w.path("keys.json"));
    assert_eq!(printed.armory, w.state().join("armory"));
    assert_eq!(printed.events.sinks.len(), 1);
    assert!(
        printed.events.source.is_some(),
        "the effective source is printed"
    );

    for needle in [
        "ok: keys ",
        "1 key (k1 ES256)",
        "ok: plugins: ",
        "trusted, 2 tools (1 authorized)",
        "ok: state directory ",
        &format!("ok: events: file {}", w.events_file().display()),
        "ok: sandbox: backend runsc",
    ] {
        assert!(
            checks.iter().any(|l| l.contains(needle)),
            "{needle}: {checks:#?}"
        );
    }
    let relaxed = lines_starting(&checks, "relaxed: ");
    assert_eq!(relaxed.len(), 1, "{checks:#?}");
    assert!(relaxed[0].contains("sandbox.apparmor = \"if-available\""));
    assert_eq!(
        checks.last().unwrap(),
        "configuration usable (1 relaxed protection)"
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    // Checking runs nothing and emits nothing.
    assert!(w.events().is_empty());
}

#[test]
fn config_check_flags_every_relaxed_protection_but_accepts_them() {
    let w = World::new(Backend::Runsc);
    w.write_config(&format!(
        "keys = {:?}\n[sandbox]\nbackend = \"native\"\napparmor = \"off\"\n\
         seccomp = \"if-available\"\nmasked_paths = [\"/home\", \"/root\"]\n\
         [claims]\nmax_manifest_age_secs = 3600\n\
         [[events.sinks]]\ntype = \"http\"\nurl = \"http://192.0.2.1:8080/events\"\n\
         allow_remote_plaintext = true\n",
        w.path("keys.json").to_str().unwrap(),
    ));
    // An armory must exist for the configuration to be usable.
    w.add_tool("echo-tool", ECHO_TOOL, true);
    let o = w.er(&["config", "check"]);
    assert_exit(&o, 0);
    let (printed, checks) = report(&o);
    assert_eq!(printed.sandbox.masked_paths.len(), 2);
    let relaxed = lines_starting(&checks, "relaxed: ");
    for needle in [
        "sandbox.apparmor = \"off\"",
        "sandbox.seccomp = \"if-available\"",
        "sandbox.backend = \"native\" although runsc is installed",
        "no longer hides /run",
        "claims.max_manifest_age_secs = 3600",
        "allow_remote_plaintext = true",
    ] {
        assert_eq!(
            relaxed.iter().filter(|l| l.contains(needle)).count(),
            1,
            "{needle}: {relaxed:#?}"
        );
    }
    assert_eq!(relaxed.len(), 6, "{relaxed:#?}");
    assert!(
        checks
            .iter()
            .any(|l| l.contains("ok: sandbox: backend native"))
    );
    assert!(
        checks
            .iter()
            .any(|l| l == "configuration usable (6 relaxed protections)")
    );
    // The same report as one JSON document (issue 18).
    let o = w.er(&["config", "check", "--json"]);
    assert_exit(&o, 0);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["usable"], true);
    assert_eq!(doc["relaxed"].as_array().unwrap().len(), 6, "{doc:#}");
    assert_eq!(doc["effective"]["sandbox"]["apparmor"], "off", "{doc:#}");
    assert!(doc["problems"].as_array().unwrap().is_empty());
    // Relaxing the audience and type requirements is reported too.
    w.write_config("[claims]\nrequire_audience = false\nrequire_typ = false\n");
    let o = w.er(&["config", "check", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let relaxed: Vec<&str> = doc["relaxed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for needle in [
        "claims.require_audience = false",
        "claims.require_typ = false",
    ] {
        assert!(
            relaxed.iter().any(|l| l.contains(needle)),
            "{needle}: {relaxed:#?}"
        );
    }
}

#[test]
fn config_check_reports_every_problem_naming_the_key_and_exits_2() {
    let w = World::new(Backend::Native);
    // The hardened default (AppArmor required) on a kernel without AppArmor, a key set
    // that does not exist, no armory, and an events file in a missing directory.
    w.write_config(&format!(
        "keys = {:?}\n[[events.sinks]]\ntype = \"file\"\npath = {:?}\n",
        w.path("missing-keys.json").to_str().unwrap(),
        w.path("no-such-dir/events.jsonl").to_str().unwrap()
    ));
    let o = w.er(&["config", "check"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("is not usable: 4 problems"), "{err}");
    for needle in [
        "problem: keys: ",
        "missing-keys.json",
        "problem: armory: ",
        "does not exist (create it with `edge-runner armory add",
        "problem: events.sinks: ",
        "no-such-dir does not exist; create it",
        "problem: sandbox: tasks would be refused as apparmor_unavailable",
        "apparmor = \"if-available\"",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // The effective configuration is still printed, for reference.
    let (printed, checks) = report(&o);
    assert_eq!(printed.keys, w.path("missing-keys.json"));
    assert!(!checks.iter().any(|l| l.starts_with("configuration usable")));

    // Fixing them one by one: --apparmor, --keys, --events flags override the file.
    w.add_tool("echo-tool", ECHO_TOOL, true);
    let o = w.er(&[
        "config",
        "check",
        "--keys",
        "keys.json",
        "--apparmor",
        "if-available",
        "--events",
        "stdout",
    ]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("with command-line overrides)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn config_check_refuses_a_plugin_whose_pin_does_not_match() {
    let w = World::new(Backend::Native);
    w.add_tool("echo-tool", ECHO_TOOL, true);
    let plugin = crate::support::fixture("misbehaving");
    let wrong = format!("sha256:{}", "f".repeat(64));
    w.write_config(&format!(
        "keys = \"keys.json\"\n[sandbox]\napparmor = \"if-available\"\n\
         [plugins.verifiers.ES256]\npath = {plugin:?}\nsha256 = \"{wrong}\"\n"
    ));
    let o = w.er(&["config", "check"]);
    assert_exit(&o, 2);
    let actual = edge_runner::digest::sha256_id(&std::fs::read(&plugin).unwrap());
    let err = stderr(&o);
    assert!(
        err.contains("problem: plugins: ") && err.contains(&wrong) && err.contains(&actual),
        "{err}"
    );
    // The event mapper is pinned the same way.
    w.write_config(&format!(
        "keys = \"keys.json\"\n[sandbox]\napparmor = \"if-available\"\n\
         [plugins.mapper]\npath = {plugin:?}\nsha256 = \"{wrong}\"\n"
    ));
    let o = w.er(&["config", "check"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("problem: plugins.mapper: ") && err.contains(&actual),
        "{err}"
    );
}

#[test]
fn config_check_refuses_unknown_keys_naming_key_and_file() {
    let w = World::new(Backend::Native);
    std::fs::write(w.config_file(), "[sandbox]\napparmour = \"off\"\n").unwrap();
    for args in [
        vec!["config", "check"],
        vec![
            "--config",
            w.config_file().to_str().unwrap(),
            "config",
            "check",
        ],
    ] {
        let o = w.er(&args);
        assert_exit(&o, 2);
        let err = stderr(&o);
        assert!(
            err.contains("apparmour") && err.contains(w.config_file().to_str().unwrap()),
            "{err}"
        );
        assert!(o.stdout.is_empty(), "{}", stdout(&o));
    }
    // A file that does not exist is an error too, naming it.
    let o = w.er(&[
        "--config",
        "/nonexistent/edge-runner.toml",
        "config",
        "check",
    ]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("/nonexistent/edge-runner.toml"));
}

#[test]
fn config_check_help_has_an_example_and_the_exit_codes() {
    let o = std::process::Command::new(crate::support::bin())
        .args(["config", "check", "--help"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let text = stdout(&o);
    assert!(text.contains("Example: edge-runner"), "{text}");
    assert!(
        text.contains("relaxed:") && text.contains("Exit 0"),
        "{text}"
    );
}

#[test]
fn run_refuses_a_configuration_with_an_unknown_key_naming_it_and_the_file() {
    let w = World::new(Backend::Native);
    let digest = w.add_tool("echo-tool", ECHO_TOOL, true);
    let task = w.sign(&w.manifest("t-config", &digest));
    std::fs::write(
        w.config_file(),
        format!(
            "state_dir = {:?}\n[limits]\ntimeout = 5\n",
            w.state().to_str().unwrap()
        ),
    )
    .unwrap();
    let o = w.run(&task);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("timeout") && err.contains(w.config_file().to_str().unwrap()),
        "{err}"
    );
    // A value out of range, named by its key.
    w.write_config("[claims]\nclock_skew_secs = 3600\n");
    let o = w.run(&task);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("claims.clock_skew_secs"),
        "{}",
        stderr(&o)
    );
    assert!(w.events().is_empty(), "configuration errors emit no event");
    // The task was never looked at: with the configuration fixed it runs.
    w.write_config("");
    assert_exit(&w.run(&task), 0);
}

#[test]
fn run_refuses_bad_flag_values_with_exit_2() {
    let w = World::new(Backend::Native);
    let digest = w.add_tool("echo-tool", ECHO_TOOL, true);
    let task = w.sign(&w.manifest("t-flags", &digest));
    let task = task.to_str().unwrap();
    for (args, needle) in [
        (vec!["run", "--sandbox", "docker", task], "docker"),
        (vec!["run", "--apparmor", "sometimes", task], "sometimes"),
        (
            vec!["run", "--events", "ftp://collector/x", task],
            "--events",
        ),
        (
            vec![
                "run",
                "--events",
                "http://192.0.2.1/x",
                "--keys",
                "keys.json",
                task,
            ],
            "allow_remote_plaintext",
        ),
        (vec!["run", "--keys", "missing.json", task], "missing.json"),
        (
            vec!["run", "--keys", "keys.json", "no-such-task.jws"],
            "no-such-task.jws",
        ),
        (vec!["run", "--no-such-flag", task], "--no-such-flag"),
        (vec!["run"], "TASK"),
    ] {
        let o = w.er(&args);
        assert_exit(&o, 2);
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    assert!(w.events().is_empty(), "usage errors emit no event");
    // None of this consumed the task.
    assert_exit(&w.run(std::path::Path::new(task)), 0);
}
