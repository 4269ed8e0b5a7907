//! Unit tests of manifest decoding and claims: every refusal names its field and maps to
//! its reason code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::reason::Reason;
use crate::reason::Refuse as _;
use serde_json::json;

const NOW: &str = "2026-11-26T21:01:00Z";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .with_timezone(&Utc)
}

fn policy() -> ClaimPolicy {
    ClaimPolicy::default().for_audience(["edge-7".to_owned(), "eu-west".to_owned()])
}

fn good() -> Value {
    json!({
        "manifest_version": "1",
        "aud": "edge-7",
        "task_context": {"task_id": "t-42", "tenant_id": "acme", "operator_id": "op-7",
                         "source": "control-plane", "action": "scan"},
        "target_urn": "urn:target:host:web-01",
        "tool_sha256": format!("sha256:{}", "ab".repeat(32)),
        "args": ["--fast"],
        "env": {"LANG": "C.UTF-8"},
        "parameters": {"any": "json", "n": [1, 2.5, null, true]},
        "nonce": "b3a1c09f4e2d8a7b6c5d4e3f2a1b0c9d",
        "issued_at": "2026-11-26T21:00:00Z",
        "expires_at": "2026-11-26T21:05:00Z",
        "limits": {"timeout_ms": 30000, "memory_bytes": 268435456, "output_bytes": 1048576}
    })
}

fn check(v: &Value) -> Result<CheckedManifest, ManifestError> {
    check_payload(
        &serde_json::to_vec(v).unwrap(),
        &policy(),
        now(),
        Reader::Runner,
    )
}

fn with(path: &[&str], value: Value) -> Value {
    let mut v = good();
    let mut slot = &mut v;
    for p in &path[..path.len() - 1] {
        slot = slot.get_mut(*p).unwrap();
    }
    slot[path[path.len() - 1]] = value;
    v
}

fn without(path: &[&str]) -> Value {
    let mut v = good();
    let mut slot = &mut v;
    for p in &path[..path.len() - 1] {
        slot = slot.get_mut(*p).unwrap();
    }
    slot.as_object_mut().unwrap().remove(path[path.len() - 1]);
    v
}

fn refused(v: &Value) -> ManifestError {
    match check(v) {
        Ok(_) => panic!("accepted {v}"),
        Err(e) => e,
    }
}

#[test]
fn the_issue_example_is_accepted_with_every_field() {
    let m = check(&good()).unwrap();
    assert_eq!(m.task().task_id, "t-42");
    assert_eq!(m.task().tenant_id, "acme");
    assert_eq!(m.task().operator_id.as_deref(), Some("op-7"));
    assert_eq!(m.target_urn(), Some("urn:target:host:web-01"));
    assert_eq!(m.tool().hex(), "ab".repeat(32));
    assert_eq!(m.args(), ["--fast"]);
    assert_eq!(m.env(), [("LANG".to_owned(), "C.UTF-8".to_owned())]);
    assert_eq!(m.limits().timeout_ms, 30000);
    let stdin: Value = serde_json::from_slice(&m.stdin()).unwrap();
    assert_eq!(stdin, good()["parameters"]);
}

#[test]
fn optional_fields_default() {
    let mut v = good();
    for k in ["target_urn", "args", "env", "parameters", "limits"] {
        v.as_object_mut().unwrap().remove(k);
    }
    for k in ["operator_id", "source", "action"] {
        v["task_context"].as_object_mut().unwrap().remove(k);
    }
    let m = check(&v).unwrap();
    assert!(m.args().is_empty() && m.env().is_empty() && m.stdin().is_empty());
    let d = LimitsConfig::default();
    assert_eq!(
        m.limits(),
        Limits {
            timeout_ms: d.default_timeout_ms,
            memory_bytes: d.default_memory_bytes,
            output_bytes: d.default_output_bytes
        }
    );
    // A partial limits object keeps the defaults for the rest.
    let m = check(&with(&["limits"], json!({"timeout_ms": 5}))).unwrap();
    assert_eq!(m.limits().timeout_ms, 5);
    assert_eq!(m.limits().memory_bytes, d.default_memory_bytes);
}

#[test]
fn each_required_field_missing_is_named() {
    for (path, field) in [
        (&["manifest_version"][..], "manifest_version"),
        (&["task_context"], "task_context"),
        (&["task_context", "task_id"], "task_context.task_id"),
        (&["task_context", "tenant_id"], "task_context.tenant_id"),
        (&["tool_sha256"], "tool_sha256"),
        (&["nonce"], "nonce"),
        (&["issued_at"], "issued_at"),
        (&["expires_at"], "expires_at"),
    ] {
        let e = refused(&without(path));
        assert_eq!(e, ManifestError::Missing { field }, "{path:?}");
        assert_eq!(e.reason(), Reason::ManifestInvalid);
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn each_field_with_the_wrong_type_is_named() {
    for (path, value, field) in [
        (&["manifest_version"][..], json!(1), "manifest_version"),
        (&["task_context"], json!("acme"), "task_context"),
        (
            &["task_context", "task_id"],
            json!(42),
            "task_context.task_id",
        ),
        (
            &["task_context", "tenant_id"],
            json!(null),
            "task_context.tenant_id",
        ),
        (
            &["task_context", "operator_id"],
            json!(["op"]),
            "task_context.operator_id",
        ),
        (
            &["task_context", "source"],
            json!(true),
            "task_context.source",
        ),
        (
            &["task_context", "action"],
            json!({}),
            "task_context.action",
        ),
        (&["target_urn"], json!(7), "target_urn"),
        (&["tool_sha256"], json!(["sha256:"]), "tool_sha256"),
        (&["args"], json!("--fast"), "args"),
        (&["args"], json!(["--fast", 3]), "args[1]"),
        (&["env"], json!(["LANG=C"]), "env"),
        (&["env"], json!({"LANG": 1}), "env.LANG"),
        (&["nonce"], json!(12345678901234567890u64), "nonce"),
        (&["issued_at"], json!(1764190800), "issued_at"),
        (&["expires_at"], json!(null), "expires_at"),
        (&["limits"], json!(30000), "limits"),
        (
            &["limits", "timeout_ms"],
            json!("30000"),
            "limits.timeout_ms",
        ),
        (
            &["limits", "memory_bytes"],
            json!(1.5),
            "limits.memory_bytes",
        ),
        (
            &["limits", "output_bytes"],
            json!(-1),
            "limits.output_bytes",
        ),
    ] {
        let e = refused(&with(path, value));
        assert_eq!(e.field().as_deref(), Some(field), "{path:?}: {e}");
        assert!(matches!(e, ManifestError::Type { .. }), "{path:?}: {e}");
        assert_eq!(e.reason(), Reason::ManifestInvalid);
    }
}

#[test]
fn unknown_fields_are_refused_at_every_level() {
    for (path, field) in [
        (&["tool"][..], "tool"),
        (&["task_context", "tenant"], "task_context.tenant"),
        (&["limits", "cpu_ms"], "limits.cpu_ms"),
    ] {
        let e = refused(&with(path, json!(1)));
        assert_eq!(
            e,
            ManifestError::Unknown {
                field: field.into()
            }
        );
    }
}

#[test]
fn duplicate_members_are_refused_even_when_equal() {
    let text = serde_json::to_string(&good()).unwrap();
    for dup in [
        text.replacen("{", "{\"nonce\":\"b3a1c09f4e2d8a7b6c5d4e3f2a1b0c9d\",", 1),
        text.replacen("\"task_id\"", "\"task_id\":\"t-1\",\"task_id\"", 1),
        text.replacen("{", "{\"tool_sha256\":\"sha256:00\",", 1),
    ] {
        let e = check_payload(dup.as_bytes(), &policy(), now(), Reader::Runner).unwrap_err();
        assert!(
            matches!(
                e,
                ManifestError::Json {
                    source: crate::json::JsonError::DuplicateMember(_)
                }
            ),
            "{e}"
        );
        assert_eq!(e.reason(), Reason::ManifestInvalid);
    }
}

#[test]
fn not_an_object_or_not_json_or_too_deep() {
    for bad in [
        &b"[]"[..],
        b"\"x\"",
        b"{",
        b"",
        b"{\"manifest_version\":\"1\"} {}",
    ] {
        let e = check_payload(bad, &policy(), now(), Reader::Runner).unwrap_err();
        assert_eq!(e.reason(), Reason::ManifestInvalid, "{bad:?}");
    }
    let deep = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    let e = refused(&with(&["parameters"], serde_json::from_str(&deep).unwrap()));
    assert!(matches!(
        e,
        ManifestError::Json {
            source: crate::json::JsonError::TooDeep(_)
        }
    ));
}

#[test]
fn other_versions_are_refused() {
    for v in ["2", "1.0", "", " 1"] {
        assert!(matches!(
            refused(&with(&["manifest_version"], json!(v))),
            ManifestError::Version { .. }
        ));
    }
}

#[test]
fn oversized_values_are_refused() {
    let long = |n: usize| json!("a".repeat(n));
    for (path, value, field) in [
        (
            &["task_context", "task_id"][..],
            long(129),
            "task_context.task_id",
        ),
        (
            &["task_context", "tenant_id"],
            long(10_000),
            "task_context.tenant_id",
        ),
        (
            &["task_context", "operator_id"],
            long(129),
            "task_context.operator_id",
        ),
        (
            &["target_urn"],
            json!(format!("urn:x:{}", "a".repeat(600))),
            "target_urn",
        ),
        (&["args"], json!(vec!["a"; 257]), "args"),
        (&["args"], json!(["a".repeat(4097)]), "args[0]"),
        (&["args"], json!(vec!["a".repeat(4000); 20]), "args"),
        (&["env"], json!({"LANG": "a".repeat(4097)}), "env.LANG"),
        (
            &["env"],
            json!({ "A".repeat(129): "x" }),
            &format!("env.{}", "A".repeat(64)),
        ),
        (&["nonce"], long(129), "nonce"),
        (
            &["parameters"],
            json!({"blob": "a".repeat(70_000)}),
            "parameters",
        ),
        (
            &["issued_at"],
            json!(format!("2026-11-26T21:00:00.{}Z", "0".repeat(40))),
            "issued_at",
        ),
    ] {
        let e = refused(&with(path, value));
        let shown = e.field().unwrap_or_default();
        assert!(
            shown.starts_with(field) || field.starts_with(&shown),
            "{path:?}: {e}"
        );
        assert_eq!(e.reason(), Reason::ManifestInvalid);
    }
    let many: Map<String, Value> = (0..65).map(|i| (format!("V{i}"), json!("x"))).collect();
    assert_eq!(
        refused(&with(&["env"], Value::Object(many)))
            .field()
            .as_deref(),
        Some("env")
    );
}

#[test]
fn bad_identifiers_urns_and_nul_bytes_are_refused() {
    for (path, value) in [
        (&["task_context", "tenant_id"][..], json!("../acme")),
        (&["task_context", "tenant_id"], json!("")),
        (&["task_context", "task_id"], json!("t 42")),
        (&["task_context", "task_id"], json!("t\n42")),
        (&["target_urn"], json!("https://web-01")),
        (&["args"], json!(["a\u{0}b"])),
        (&["env"], json!({"LANG": "x\u{0}"})),
        (&["env"], json!({"1A": "x"})),
        (&["env"], json!({"A=B": "x"})),
        (&["env"], json!({"": "x"})),
    ] {
        assert_eq!(
            refused(&with(path, value)).reason(),
            Reason::ManifestInvalid,
            "{path:?}"
        );
    }
}

#[test]
fn bad_digests_are_digest_invalid() {
    let hex = "ab".repeat(32);
    for d in [
        hex.clone(),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha512:{hex}"),
        format!("sha256:{}", &hex[..62]),
        "sha256:../../../../bin/sh".to_owned(),
    ] {
        let e = refused(&with(&["tool_sha256"], json!(d)));
        assert_eq!(e.reason(), Reason::DigestInvalid, "{d}");
        assert_eq!(e.field().as_deref(), Some("tool_sha256"));
    }
}

#[test]
fn forbidden_env_names_are_refused() {
    for name in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "ld_audit",
        "PATH",
        "BASH_ENV",
        "GLIBC_TUNABLES",
        "PYTHONPATH",
        "NODE_OPTIONS",
        "EDGE_RUNNER_TOKEN",
    ] {
        let e = refused(&with(&["env"], json!({ name: "x" })));
        assert!(
            matches!(e, ManifestError::EnvForbidden { .. }),
            "{name}: {e}"
        );
        assert_eq!(e.field(), Some(format!("env.{name}")));
    }
}

#[test]
fn limits_over_the_maxima_are_limits_exceeded() {
    let max = LimitsConfig::default();
    for (name, max) in [
        ("timeout_ms", max.max_timeout_ms),
        ("memory_bytes", max.max_memory_bytes),
        ("output_bytes", max.max_output_bytes),
    ] {
        // Exactly the maximum is fine; one more is not.
        assert!(check(&with(&["limits", name], json!(max))).is_ok());
        let e = refused(&with(&["limits", name], json!(max + 1)));
        assert_eq!(
            e,
            ManifestError::LimitExceeded {
                name,
                requested: max + 1,
                max
            }
        );
        assert_eq!(e.reason(), Reason::LimitsExceeded);
        let e = refused(&with(&["limits", name], json!(0)));
        assert_eq!(e.reason(), Reason::ManifestInvalid);
        let e = refused(&with(&["limits", name], json!(u64::MAX)));
        assert_eq!(e.reason(), Reason::LimitsExceeded);
    }
}

#[test]
fn bad_timestamps_are_refused() {
    for (field, value) in [
        ("issued_at", "2026-11-26 21:00:00Z"),
        ("issued_at", "yesterday"),
        ("expires_at", "2026-11-26T21:05:00"),
        ("expires_at", "2026-11-31T21:05:00Z"),
    ] {
        let e = refused(&with(&[field], json!(value)));
        assert_eq!(e.field().as_deref(), Some(field));
        assert_eq!(e.reason(), Reason::ManifestInvalid);
    }
    // expires_at must follow issued_at.
    let e = refused(&with(&["expires_at"], json!("2026-11-26T21:00:00Z")));
    assert_eq!(e.field().as_deref(), Some("expires_at"));
}

#[test]
fn time_claims_use_the_configured_skew_and_age() {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let p = policy(); // skew 30 s, max age 600 s
    let bytes = serde_json::to_vec(&good()).unwrap();
    let run = |t: &str| {
        check_payload(&bytes, &p, at(t), Reader::Runner)
            .map(|_| ())
            .map_err(|e| e.reason())
    };
    // issued 21:00:00, expires 21:05:00
    assert_eq!(run("2026-11-26T20:59:30Z"), Ok(())); // early, within skew
    assert_eq!(
        run("2026-11-26T20:59:29Z"),
        Err(Reason::ManifestNotYetValid)
    );
    assert_eq!(run("2026-11-26T21:05:29Z"), Ok(())); // late, within skew
    assert_eq!(run("2026-11-26T21:05:30Z"), Err(Reason::ManifestExpired));
    assert_eq!(run("2027-01-01T00:00:00Z"), Err(Reason::ManifestExpired));

    let mut strict = policy();
    strict.claims.clock_skew_secs = 0;
    let run0 = |t: &str| {
        check_payload(&bytes, &strict, at(t), Reader::Runner)
            .map(|_| ())
            .map_err(|e| e.reason())
    };
    assert_eq!(
        run0("2026-11-26T20:59:59Z"),
        Err(Reason::ManifestNotYetValid)
    );
    assert_eq!(run0("2026-11-26T21:05:00Z"), Err(Reason::ManifestExpired));
    assert_eq!(run0("2026-11-26T21:04:59Z"), Ok(()));

    // Lifetime: exactly the maximum is fine, one second more is not.
    let long = with(&["expires_at"], json!("2026-11-26T21:10:00Z"));
    assert!(check(&long).is_ok());
    let longer = with(&["expires_at"], json!("2026-11-26T21:10:01Z"));
    assert_eq!(
        refused(&longer),
        ManifestError::LifetimeTooLong {
            lifetime_secs: 601,
            max_secs: 600
        }
    );
    // Offsets are honoured: 22:00+01:00 is 21:00Z.
    let offset = with(&["issued_at"], json!("2026-11-26T22:00:00+01:00"));
    assert_eq!(
        check(&offset).unwrap().issued_at(),
        at("2026-11-26T21:00:00Z")
    );
}

#[test]
fn refusals_carry_the_whole_chain() {
    let r = refused(&with(&["tool_sha256"], json!("sha256:XYZ"))).to_refusal();
    assert_eq!(r.reason, Reason::DigestInvalid);
    assert!(
        r.message.contains("tool_sha256") && r.message.contains("lowercase hex"),
        "{}",
        r.message
    );
}

#[test]
fn the_schema_names_exactly_the_decoded_fields() {
    let s = schema(&LimitsConfig::default());
    let props = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    let sorted = |l: &[&str]| {
        let mut v: Vec<String> = l.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(props(&s), sorted(TOP_FIELDS));
    assert_eq!(
        props(&s["properties"]["task_context"]),
        sorted(CONTEXT_FIELDS)
    );
    assert_eq!(props(&s["properties"]["limits"]), sorted(LIMIT_FIELDS));
    assert_eq!(s["additionalProperties"], json!(false));
    // Required in the schema <=> refused as missing by the decoder.
    let required: Vec<&str> = s["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in TOP_FIELDS {
        let missing = check(&without(&[field])).is_err();
        assert_eq!(required.contains(field), missing, "{field}");
    }
    assert_eq!(
        s["properties"]["limits"]["properties"]["timeout_ms"]["maximum"],
        json!(600_000)
    );
}

#[test]
fn a_memory_limit_below_the_sandbox_minimum_is_refused_before_the_nonce_is_spent() {
    let e = refused(&with(&["limits", "memory_bytes"], json!(1000)));
    assert_eq!(e.reason(), Reason::ManifestInvalid);
    assert_eq!(e.field().as_deref(), Some("limits.memory_bytes"));
    assert!(e.to_string().contains("minimum"), "{e}");
    assert!(check(&with(&["limits", "memory_bytes"], json!(8 << 20))).is_ok());
}

/// Issue 17 item 4: `PYTHONWARNINGS` with `BROWSER` made a harmless Python tool run a
/// shell command, and `LUA_INIT`, `OPENSSL_CONF`, `GIT_SSH_COMMAND` were accepted too. A
/// deny list cannot name every such variable: names are an allow list.
#[test]
fn env_names_off_the_allow_list_are_refused_as_the_attack_used_them() {
    for env in [
        json!({"PYTHONWARNINGS": "::Warning:webbrowser", "BROWSER": "sh -c 'id>/tmp/x' %s"}),
        json!({"LUA_INIT": "os.execute('id')"}),
        json!({"OPENSSL_CONF": "/tmp/evil.cnf"}),
        json!({"GIT_SSH_COMMAND": "sh -c id"}),
        json!({"LANG": "C.UTF-8", "GREETING": "hello"}),
    ] {
        let e = refused(&with(&["env"], env.clone()));
        assert!(
            matches!(e, ManifestError::EnvNotAllowed { .. }),
            "{env}: {e}"
        );
        assert_eq!(e.reason(), Reason::EnvNotAllowed, "{env}");
        assert!(e.to_string().contains("[env] allow"), "{e}");
    }
    // The default set passes.
    let ok = with(
        &["env"],
        json!({"LANG": "C.UTF-8", "TZ": "UTC", "PYTHONUNBUFFERED": "1"}),
    );
    assert!(check(&ok).is_ok());
}

#[test]
fn the_operator_allows_names_globally_or_for_one_tool() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let other = format!("sha256:{}", "cd".repeat(32));
    let m = with(&["env"], json!({"GREETING": "hello"}));
    let bytes = serde_json::to_vec(&m).unwrap();
    let mut p = policy();
    p.env.allow = vec!["GREETING".into()];
    assert!(check_payload(&bytes, &p, now(), Reader::Runner).is_ok());
    let mut p = policy();
    p.env.tools.insert(
        digest.clone(),
        ToolEnv {
            allow: vec!["GREETING".into()],
        },
    );
    assert!(check_payload(&bytes, &p, now(), Reader::Runner).is_ok());
    let mut p = policy();
    p.env.tools.insert(
        other,
        ToolEnv {
            allow: vec!["GREETING".into()],
        },
    );
    assert!(matches!(
        check_payload(&bytes, &p, now(), Reader::Runner),
        Err(ManifestError::EnvNotAllowed { .. })
    ));
    // Case matters: an allowed `GREETING` does not allow `greeting`.
    let mut p = policy();
    p.env.allow = vec!["GREETING".into()];
    let lower = serde_json::to_vec(&with(&["env"], json!({"greeting": "x"}))).unwrap();
    assert!(check_payload(&lower, &p, now(), Reader::Runner).is_err());
}

#[test]
fn the_deny_list_wins_over_the_allow_list_and_bad_names_are_config_errors() {
    for bad in ["LD_PRELOAD", "PATH", "BASH_ENV", "1X", "A=B", ""] {
        let c = EnvConfig {
            allow: vec![bad.into()],
            ..EnvConfig::default()
        };
        assert!(c.check().is_err(), "{bad} accepted");
    }
    let c = EnvConfig {
        tools: [("sha256:XYZ".to_owned(), ToolEnv::default())].into(),
        ..EnvConfig::default()
    };
    assert!(c.check().is_err());
}

/// Issue 17 item 5: `12345678901234567890123` reached the tool as
/// `1.2345678901234568e+22` and `1E2` as `100.0`. The tool gets the signed text.
#[test]
fn parameters_reach_the_tool_exactly_as_signed() {
    let mut text = serde_json::to_string(&without(&["parameters"])).unwrap();
    text.pop(); // the closing brace
    let params = r#"{"big":12345678901234567890123,"e":1E2,"f":-0.0,"s":"\u00e9\n","n":[1,2.50]}"#;
    text.push_str(&format!(",\"parameters\":  {params}}}"));
    let m = check_payload(text.as_bytes(), &policy(), now(), Reader::Runner).unwrap();
    assert_eq!(m.parameters(), Some(params));
    assert_eq!(m.stdin(), format!("{params}\n").into_bytes());
    // An escaped member name is the same member.
    let escaped = text.replace("\"parameters\"", "\"param\\u0065ters\"");
    let m = check_payload(escaped.as_bytes(), &policy(), now(), Reader::Runner).unwrap();
    assert_eq!(m.parameters(), Some(params));
    // The size cap applies to the signed text.
    let mut big = serde_json::to_string(&without(&["parameters"])).unwrap();
    big.pop();
    big.push_str(&format!(
        ",\"parameters\":\"{}\"}}",
        "a".repeat(fields::MAX_PARAMETERS_BYTES)
    ));
    assert!(check_payload(big.as_bytes(), &policy(), now(), Reader::Runner).is_err());
}

/// Issue 13: a captured task ran once on every runner that shared the key set. The
/// manifest names its audience, and a runner runs only what names it or its pool.
#[test]
fn a_task_for_another_runner_or_for_no_one_is_refused() {
    let for_other = with(&["aud"], json!("edge-8"));
    let e = refused(&for_other);
    assert_eq!(e.reason(), Reason::AudienceMismatch, "{e}");
    assert!(
        e.to_string().contains("edge-8") && e.to_string().contains("edge-7"),
        "{e}"
    );
    assert!(check(&with(&["aud"], json!(["edge-8", "eu-west"]))).is_ok());
    assert!(check(&with(&["aud"], json!(["edge-7"]))).is_ok());
    let e = refused(&without(&["aud"]));
    assert_eq!(e.reason(), Reason::AudienceMissing, "{e}");
    // Relaxed: a task without an audience runs; one for another runner still does not.
    let mut relaxed = policy();
    relaxed.claims.require_audience = false;
    let bytes = |v: &Value| serde_json::to_vec(v).unwrap();
    assert!(check_payload(&bytes(&without(&["aud"])), &relaxed, now(), Reader::Runner).is_ok());
    for bad in [json!([]), json!(7), json!(["../x"]), json!(vec!["a"; 17])] {
        let e = refused(&with(&["aud"], bad.clone()));
        assert_eq!(e.reason(), Reason::ManifestInvalid, "{bad}: {e}");
    }
}

/// RFC 8725 section 3.11: another kind of signed object (an armory statement, a JWT for
/// another service) signed by a trusted key is never taken for a task.
#[test]
fn the_header_typ_must_say_edge_runner_task() {
    let p = policy();
    for ok in [
        "edge-runner-task+jws",
        "EDGE-RUNNER-TASK+JWS",
        "application/edge-runner-task+jws",
    ] {
        assert!(check_typ(Some(ok), &p).is_ok(), "{ok}");
    }
    for bad in [
        None,
        Some("JWT"),
        Some("edge-runner-authorization+jws"),
        Some(""),
    ] {
        let e = check_typ(bad, &p).unwrap_err();
        assert_eq!(e.reason(), Reason::TypInvalid, "{bad:?}");
    }
    let mut relaxed = policy();
    relaxed.claims.require_typ = false;
    assert!(check_typ(Some("JWT"), &relaxed).is_ok());
}
