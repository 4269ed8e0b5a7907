//! What the fuzz targets share: the independent oracles (the published JSON schemas,
//! checked by the `jsonschema` crate, not by the runner's own code) and generators of the
//! inputs the pipeline can really produce (an execution record as the runner builds one).
//! Nothing here may call the code under test to decide what is valid.

use arbitrary::Unstructured;
use edge_runner::events::record::{Denial, Disposition, ExecutionRecord, TaskContext};
use edge_runner::reason::Reason;
use edge_runner::sandbox::{
    Captured as CapturedOutput, Outcome, Posture as SandboxPosture, Termination,
};
use serde_json::Value;
use std::sync::OnceLock;

/// The official CloudEvents v1.0.2 JSON schema (the verbatim copy the tests use).
const CLOUDEVENTS_SCHEMA: &str =
    include_str!("../../tests/fixtures/cloudevents-v1.0.2.schema.json");

fn compile(schema: &Value) -> jsonschema::Validator {
    match jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
    {
        Ok(v) => v,
        Err(e) => panic!("the schema does not compile: {e}"),
    }
}

/// Panics (a fuzz finding) unless `event` passes the CloudEvents JSON schema *and* the
/// spec rules that schema leaves out (DESIGN.md: `specversion`, extension names and
/// types, `data` with `data_base64`), checked here from the spec's own words.
pub fn assert_cloudevent(event: &Value) {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    let v = V.get_or_init(|| {
        let schema: Value = match serde_json::from_str(CLOUDEVENTS_SCHEMA) {
            Ok(s) => s,
            Err(e) => panic!("the CloudEvents schema is not JSON: {e}"),
        };
        compile(&schema)
    });
    if let Err(e) = v.validate(event) {
        panic!("accepted event fails the CloudEvents schema: {e}\n{event}");
    }
    let Value::Object(map) = event else {
        panic!("accepted event is not an object: {event}");
    };
    assert_eq!(
        map.get("specversion"),
        Some(&Value::String("1.0".into())),
        "{event}"
    );
    assert!(
        !(map.contains_key("data") && map.contains_key("data_base64")),
        "data and data_base64: {event}"
    );
    const CORE: &[&str] = &[
        "id",
        "source",
        "specversion",
        "type",
        "datacontenttype",
        "dataschema",
        "subject",
        "time",
        "data",
        "data_base64",
    ];
    for (name, value) in map {
        if CORE.contains(&name.as_str()) {
            // "MUST be a non-empty string" for every core attribute present.
            if name != "data" && name != "data_base64" {
                assert!(
                    value.as_str().is_some_and(|s| !s.is_empty()),
                    "{name}: {event}"
                );
            }
            continue;
        }
        // Extension names: lower-case ASCII letters or digits, at most 20 (spec 3.1.4
        // "Attribute Naming Convention").
        assert!(
            !name.is_empty()
                && name.len() <= 20
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "extension name {name:?}: {event}"
        );
        match value {
            Value::String(_) | Value::Bool(_) => {}
            Value::Number(n) => assert!(
                n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                "extension {name} is not a 32-bit integer: {event}"
            ),
            other => panic!("extension {name} has type {other}: {event}"),
        }
    }
    for attr in ["id", "source", "type", "subject"] {
        if let Some(s) = map.get(attr).and_then(Value::as_str) {
            assert!(
                !s.chars().any(|c| c.is_control()),
                "{attr} holds a control character: {event}"
            );
        }
    }
}

/// Panics unless `manifest` passes the manifest JSON schema the runner publishes
/// (`edge-runner manifest schema`) with the default limits.
pub fn assert_manifest_schema(manifest: &Value) {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    let v = V.get_or_init(|| {
        compile(&edge_runner::manifest::schema(
            &edge_runner::manifest::LimitsConfig::default(),
        ))
    });
    if let Err(e) = v.validate(manifest) {
        panic!("accepted manifest fails the published schema: {e}\n{manifest}");
    }
}

/// Nesting depth of a JSON value (a scalar is 0, `[]` is 1).
pub fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// An identifier as the manifest decoder lets one through: `[A-Za-z0-9][A-Za-z0-9._:@-]*`.
fn identifier(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-";
    let len = u.int_in_range(1..=128)?;
    let mut s = String::with_capacity(len);
    s.push(char::from(*u.choose(FIRST)?));
    for _ in 1..len {
        s.push(char::from(*u.choose(REST)?));
    }
    Ok(s)
}

fn digest(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let bytes: [u8; 32] = u.arbitrary()?;
    Ok(edge_runner::digest::sha256_id(&bytes))
}

fn option<T>(
    u: &mut Unstructured<'_>,
    f: impl FnOnce(&mut Unstructured<'_>) -> arbitrary::Result<T>,
) -> arbitrary::Result<Option<T>> {
    if u.arbitrary()? {
        Ok(Some(f(u)?))
    } else {
        Ok(None)
    }
}

fn output(u: &mut Unstructured<'_>) -> arbitrary::Result<CapturedOutput> {
    let bytes: Vec<u8> = u.arbitrary()?;
    let extra: u16 = u.arbitrary()?;
    let truncated = extra > 0 && u.arbitrary()?;
    Ok(CapturedOutput {
        total_bytes: bytes.len() as u64 + if truncated { u64::from(extra) } else { 0 },
        truncated,
        bytes,
    })
}

/// An execution record of the shape the pipeline builds: identifiers and digests as the
/// earlier stages let them through, arbitrary tool output, any refusal reason with an
/// arbitrary message (refusal messages quote attacker text through `printable`).
pub fn record(u: &mut Unstructured<'_>) -> arbitrary::Result<ExecutionRecord> {
    let jws: Option<String> = option(u, |u| {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
        let n = u.int_in_range(0..=512)?;
        (0..n)
            .map(|_| u.choose(B64).map(|b| char::from(*b)))
            .collect()
    })?;
    let task = TaskContext {
        task_id: option(u, identifier)?,
        tenant_id: option(u, identifier)?,
        operator_id: option(u, identifier)?,
        target_urn: option(u, |u| Ok(format!("urn:target:{}", identifier(u)?)))?,
        tool_sha256: option(u, digest)?,
        action: option(u, identifier)?,
        manifest_sha256: jws
            .as_ref()
            .map(|j| edge_runner::digest::sha256_id(j.as_bytes())),
        manifest_jws: jws,
    };
    let disposition = if u.arbitrary()? {
        let reasons = Reason::ALL;
        let reason = *u.choose(reasons)?;
        let message: String = u.arbitrary()?;
        Disposition::Denied(Denial {
            reason,
            message: edge_runner::text::printable(&message),
        })
    } else {
        let code: i32 = u.arbitrary()?;
        let termination = if u.arbitrary()? {
            Termination::Exited(code)
        } else {
            Termination::Signaled(code.rem_euclid(65))
        };
        Disposition::Completed(Outcome {
            termination,
            timed_out: u.arbitrary()?,
            stdout: output(u)?,
            stderr: output(u)?,
            wall_ms: u.arbitrary()?,
            cpu_ms: u.arbitrary()?,
            peak_memory_bytes: u.arbitrary()?,
            posture: SandboxPosture::arbitrary_shape(u)?,
        })
    };
    Ok(ExecutionRecord { task, disposition })
}

/// A sandbox posture as a backend reports one.
trait ArbitraryShape: Sized {
    fn arbitrary_shape(u: &mut Unstructured<'_>) -> arbitrary::Result<Self>;
}

impl ArbitraryShape for SandboxPosture {
    fn arbitrary_shape(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        let mut p = SandboxPosture::default();
        p.backend = (*u.choose(&["native", "runsc"])?).to_owned();
        for ns in ["pid", "net", "mount", "ipc", "uts", "user", "cgroup"] {
            if u.arbitrary()? {
                p.namespaces.push(ns.to_owned());
            }
        }
        p.seccomp = (*u.choose(&["filter", "off", "gvisor"])?).to_owned();
        p.landlock = (*u.choose(&["abi:7", "unavailable", "off"])?).to_owned();
        p.cgroup =
            (*u.choose(&["v1:pids,memory", "v2:pids,memory", "unavailable", "off"])?).to_owned();
        if u.arbitrary()? {
            p.seccomp_extra.push("io_uring_setup".to_owned());
        }
        p.apparmor = (*u.choose(&["enforced:edge-runner-tool", "unavailable", "off"])?).to_owned();
        p.network = (*u.choose(&["none", "loopback-only"])?).to_owned();
        p.uid = u.arbitrary()?;
        p.gid = u.arbitrary()?;
        p.no_new_privs = u.arbitrary()?;
        p.read_only_root = u.arbitrary()?;
        Ok(p)
    }
}

/// The linkage fields a record knows, as (name, value) for the event's `data`.
pub fn linkage(record: &ExecutionRecord) -> Vec<(&'static str, String)> {
    let t = &record.task;
    [
        ("task_id", &t.task_id),
        ("tenant_id", &t.tenant_id),
        ("tool_sha256", &t.tool_sha256),
        ("manifest_jws", &t.manifest_jws),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.clone().map(|v| (n, v)))
    .collect()
}

/// Decodes a JSON line, panicking with the text when the runner emitted non-JSON.
pub fn json(bytes: &[u8]) -> Value {
    match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => panic!(
            "emitted event is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        ),
    }
}
