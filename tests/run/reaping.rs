//! Issue 12 item 6 through the real binary: a runner started under a child subreaper
//! leaves it nothing. runsc's gofer and sandbox outlive the process that started them; the
//! run's reaper (`host/src/sandbox/runsc/reaper.rs`) collects them, so without it they
//! would be reparented to the subreaper above the runner (here the wrapper, on a host the
//! service manager or init). Checked on a normal run and on the kill path (timeout).

use super::{Backend, World, prerequisites};
use serde_json::{Value, json};

/// `edge-runner run` of `task` under `tests/fixtures/subreaper.py`: the runner's exit code
/// and what it left to the subreaper.
fn run_under_subreaper(w: &World, task: &std::path::Path) -> (i64, Vec<String>) {
    let script = crate::support::fixtures().join("subreaper.py");
    let mut args = vec!["run".to_owned()];
    args.extend(w.flags("if-available"));
    args.push(task.to_str().unwrap().to_owned());
    let o = std::process::Command::new("python3")
        .arg(script)
        .arg(crate::support::bin())
        .args(&args)
        .current_dir(w.path(""))
        .env("EDGE_RUNNER_CONFIG", w.config_file())
        .env_remove("EDGE_RUNNER_LOG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    let orphans = report["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (report["rc"].as_i64().unwrap(), orphans)
}

#[test]
fn runsc_leaves_nothing_to_a_subreaper_above_the_runner() {
    prerequisites(Backend::Runsc);
    let w = World::new(Backend::Runsc);
    let quick = w.add_tool("quick", "#!/bin/sh\necho done\n", true);
    let slow = w.add_tool("slow", "#!/bin/sh\nexec sleep 60\n", true);
    for (name, digest, rc) in [("quick", &quick, 0), ("slow", &slow, 1)] {
        for n in 0..2 {
            let mut m = w.manifest(&format!("t-{name}-{n}"), digest);
            if name == "slow" {
                m["limits"] = json!({"timeout_ms": 1500});
            }
            let task = w.sign(&m);
            let (code, orphans) = run_under_subreaper(&w, &task);
            assert_eq!(code, rc, "{name} run {n}");
            assert!(
                orphans.is_empty(),
                "{name} run {n} left these to the subreaper: {orphans:?}"
            );
        }
    }
}
