//! The file sink through the whole pipeline: one fsynced JSON line per event, rotation
//! by size with a bounded number of old files, every line valid (issue 5, "Sinks").

use super::*;
use edge_runner::events::{Delivery, validate};

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
