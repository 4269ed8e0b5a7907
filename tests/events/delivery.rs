//! The file sink through the whole pipeline: one fsynced JSON line per event, rotation
//! by size with a bounded number of old files, every line valid (issue 5, "Sinks").

use super::*;
use edge_runner::events::{Delivery, validate};
use std::process::Command;

#[test]
fn file_sink_appends_valid_lines_and_rotates_with_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/events.jsonl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let cfg = format!(
        "[[events.sinks]]\ntype = \"file\"\npath = {:?}\nmax_bytes = 70000\nkeep = 2\n",
        path.display().to_string()
    );
    let p = EventPipeline::new(&config(dir.path(), &cfg), &host()).unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        let r = completed(format!("run {i} ").repeat(2000).as_bytes(), b"");
        let report = p.emit(&r).unwrap();
        assert_eq!(
            report.deliveries,
            vec![(format!("file:{}", path.display()), Delivery::Delivered)]
        );
        assert!(report.is_clean());
        ids.push(report.event_id);
    }
    let mut lines = Vec::new();
    for f in ["events.jsonl.2", "events.jsonl.1", "events.jsonl"] {
        let text = std::fs::read_to_string(path.parent().unwrap().join(f)).unwrap();
        assert!(text.len() <= 70000, "{f} is {} bytes", text.len());
        lines.extend(text.lines().map(str::to_owned));
    }
    assert!(!path.parent().unwrap().join("events.jsonl.3").exists());
    // The newest events survive, in emission order.
    let got: Vec<String> = lines
        .iter()
        .map(|l| validate::check_json(l.as_bytes(), Some(65536)).unwrap())
        .map(|e| cloudevents::AttributesReader::id(&e).to_owned())
        .collect();
    assert!(ids.ends_with(&got), "{got:?} vs {ids:?}");
    assert!(got.len() >= 2);
}

#[test]
fn cli_status_and_validate_work_on_a_real_spool() {
    use super::receiver::free_port;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = format!(
        "state_dir = {:?}\n[[events.sinks]]\ntype = \"http\"\nurl = \"http://127.0.0.1:{port}/e\"\nname = \"c1\"\n",
        dir.path().display().to_string()
    );
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, &text).unwrap();
    let p = EventPipeline::new(&Config::load(&cfg).unwrap(), &host()).unwrap();
    for _ in 0..2 {
        p.emit(&completed(b"queued", b"")).unwrap();
    }
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_edge-runner"))
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["events", "status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["sink"], "http:c1");
    assert_eq!(v[0]["pending"], 2);

    // Every spooled file is a valid event; a broken line makes validate exit 2.
    let spool = edge_runner::events::spool_dirs(dir.path(), "c1").0;
    let mut lines = Vec::new();
    for f in std::fs::read_dir(&spool).unwrap().filter_map(Result::ok) {
        if f.file_name().to_string_lossy().ends_with(".json") {
            lines.push(std::fs::read_to_string(f.path()).unwrap());
        }
    }
    assert_eq!(lines.len(), 2);
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = cli(&["events", "validate", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    lines.push(r#"{"specversion":"1.0","id":"1","source":"urn:x","type":"t","Bad":1}"#.into());
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = cli(&["events", "validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("line 3: invalid [extension_name]"),
        "{stdout}"
    );

    // Flush with the receiver still down: non-zero, events kept.
    let out = cli(&["events", "flush"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(p.sinks().spool_status().unwrap()[0].pending, 2);
}

const STDOUT_CHILD: &str = "EDGE_RUNNER_TEST_STDOUT_CHILD_STATE";

/// Helper process for the stdout test: default configuration (no sink listed), three
/// events. Not a test on its own.
#[test]
#[ignore = "helper process, run by events::delivery::default_sink_is_json_lines_on_stdout"]
fn stdout_child() {
    let state = std::env::var(STDOUT_CHILD).expect("run only by the stdout test");
    let p = EventPipeline::new(&config(Path::new(&state), ""), &host()).unwrap();
    for reason in [Reason::SignatureInvalid, Reason::ReplayedNonce] {
        p.emit(&denied(reason, task())).unwrap();
    }
    p.emit(&completed(b"line one\nline two\n", b"")).unwrap();
}

#[test]
fn default_sink_is_json_lines_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "events::delivery::stdout_child",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env(STDOUT_CHILD, dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Vec<u8>> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{"))
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(events.len(), 3, "{}", String::from_utf8_lossy(&out.stdout));
    let types: Vec<String> = events
        .iter()
        .map(|e| {
            let ev = validate::check_json(e, Some(65536)).unwrap();
            cloudevents::AttributesReader::ty(&ev).to_owned()
        })
        .collect();
    assert_eq!(
        types,
        [
            edge_runner::events::TYPE_DENIED,
            edge_runner::events::TYPE_DENIED,
            edge_runner::events::TYPE_COMPLETED
        ]
    );
    let (ok, report) = python_check(&events, 65536);
    assert!(ok, "{report}");
}
