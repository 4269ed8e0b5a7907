//! The plugin boundary, input side: the embedded CloudEvents mapper plugin, run by the
//! host exactly as the pipeline runs it (size budget, plugin call, checks, fallback), on
//! any record the pipeline can build (arbitrary tool output, any refusal). Invariants: the
//! event is one line of JSON that passes the host's receiver-side check, the official
//! schema and the rules beyond it; it carries the host's id, source and every linkage
//! field; it fits the size cap unless flagged over it; and the shipped mapper itself never
//! needs the fallback for a record the pipeline can produce.
#![no_main]

use arbitrary::Unstructured;
use edge_runner::events::Mapping;
use edge_runner::fuzzing::EventMapper;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::OnceLock;

const CAP: usize = 16 * 1024;
const ID: &str = "0190b4a2-6c1e-7c3a-9a59-1d2f3e4a5b6c";
const TIME: &str = "2026-11-26T21:00:00.000Z";
const SOURCE: &str = "urn:edge-runner:fuzz";

fuzz_target!(|bytes: &[u8]| {
    static MAPPER: OnceLock<EventMapper> = OnceLock::new();
    let mapper = MAPPER.get_or_init(|| match EventMapper::embedded(CAP) {
        Ok(m) => m,
        Err(e) => panic!("the embedded mapper does not load: {e}"),
    });
    let mut u = Unstructured::new(bytes);
    let Ok(record) = edge_runner_fuzz::record(&mut u) else {
        return;
    };
    let mapped = mapper.map(&record, ID, TIME, SOURCE);
    if let Mapping::Fallback { code, reason } = &mapped.mapping {
        panic!("the shipped mapper fell back ({code}): {reason}\n{record:?}");
    }
    if let Err(e) = edge_runner::events::validate::check_json(&mapped.json, None) {
        panic!("emitted an event its own check refuses: {e}");
    }
    assert!(!mapped.json.contains(&b'\n'), "not one line");
    assert!(
        mapped.over_cap || mapped.json.len() <= CAP,
        "over the cap, unflagged"
    );
    let v = edge_runner_fuzz::json(&mapped.json);
    edge_runner_fuzz::assert_cloudevent(&v);
    assert_eq!(v["id"], ID);
    assert_eq!(v["source"], SOURCE);
    assert_eq!(v["type"], record.kind().default_type());
    for (name, value) in edge_runner_fuzz::linkage(&record) {
        assert_eq!(
            v["data"].get(name).and_then(Value::as_str),
            Some(value.as_str()),
            "linkage field {name} lost"
        );
    }
});
