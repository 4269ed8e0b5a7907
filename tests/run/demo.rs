//! `edge-runner demo`: the whole product on a throwaway setup, as the README's first
//! command runs it. Issue 6, "`edge-runner demo`".

use super::{Backend, assert_exit, prerequisites, stdout};

#[test]
fn the_demo_runs_a_task_and_shows_three_refusals_with_their_events() {
    // The demo picks runsc when it is installed, as it is in CI.
    prerequisites(Backend::Runsc);
    let o = std::process::Command::new(crate::support::bin())
        .args(["demo", "--keep"])
        .env_remove("EDGE_RUNNER_CONFIG")
        .env_remove("EDGE_RUNNER_LOG")
        .output()
        .unwrap();
    let out = stdout(&o);
    // Remove the kept directory whatever the outcome.
    let kept = out
        .lines()
        .find_map(|l| l.strip_prefix("kept "))
        .map(std::path::PathBuf::from);
    let _cleanup = kept.clone().map(Cleanup);
    assert_exit(&o, 0);
    assert!(!out.contains("unexpected"), "{out}");
    assert!(out.contains("sandbox:     runsc (gVisor)"), "{out}");
    assert!(out.contains("the tool ran: Exited(0)"), "{out}");
    assert!(out.contains("hello from the sandbox: uid=65534"), "{out}");
    assert!(
        out.contains("\"type\": \"dev.edge-runner.task.completed.v1\""),
        "{out}"
    );
    for (stage, reason) in [
        ("signature", "signature_invalid"),
        ("armory", "digest_unauthorized"),
        ("replay", "replayed_nonce"),
    ] {
        assert!(
            out.contains(&format!("refused at stage {stage}: {reason}")),
            "{reason}: {out}"
        );
        assert!(
            out.contains(&format!("\"reason\": \"{reason}\"")),
            "{reason}: {out}"
        );
    }
    assert_eq!(
        out.matches("\"type\": \"dev.edge-runner.task.denied.v1\"")
            .count(),
        3,
        "{out}"
    );

    // Its events file holds the four events, each valid.
    let kept = kept.unwrap_or_else(|| panic!("--keep prints the directory: {out}"));
    let text = std::fs::read(kept.join("events.jsonl")).unwrap();
    let lines: Vec<Vec<u8>> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(lines.len(), 4);
    let (ok, report) = crate::events::python_check(&lines, 65536);
    assert!(ok, "{report}");
}

struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
