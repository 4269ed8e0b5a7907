//! The default mapping: attributes, data members, denials, and the size cap with large,
//! binary and multibyte output (issue 5, "Mapping").

use super::*;
use edge_runner::digest::sha256_id;
use edge_runner::events::{Mapping, TYPE_COMPLETED, TYPE_DENIED, validate};
use serde_json::Value;

#[test]
fn completed_event_carries_attributes_and_every_documented_member() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(
        dir.path(),
        "[events]\nsource = \"urn:edge-runner:test-host\"\n",
    );
    let m = p.build(&completed(b"hello\n", b"warn: x\n"));
    assert_eq!(m.mapping, Mapping::Plugin { attempts: 1 });
    let v = json(&m);
    assert_eq!(v["specversion"], "1.0");
    assert_eq!(v["type"], TYPE_COMPLETED);
    assert_eq!(v["source"], "urn:edge-runner:test-host");
    assert_eq!(v["subject"], "task-42");
    assert_eq!(v["tenantid"], "tenant-a");
    assert_eq!(v["datacontenttype"], "application/json");
    assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).is_ok());
    assert!(v.get("mapperfailed").is_none());
    let d = &v["data"];
    assert_eq!(d["task_id"], "task-42");
    assert_eq!(d["tenant_id"], "tenant-a");
    assert_eq!(d["operator_id"], "operator-7");
    assert_eq!(d["target_urn"], "urn:edge:target:pump-3");
    assert_eq!(d["tool_sha256"], format!("sha256:{}", "ab".repeat(32)));
    assert_eq!(d["manifest_jws"], JWS, "the exact JWS received");
    assert_eq!(d["manifest_sha256"], sha256_id(JWS.as_bytes()));
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["exit_code"], 0);
    assert_eq!(d["signal"], Value::Null);
    assert_eq!(d["timed_out"], false);
    assert_eq!(d["stdout"], "hello\n");
    assert_eq!(d["stdout_encoding"], "utf-8");
    assert_eq!(d["stdout_bytes"], 6);
    assert_eq!(d["stdout_kept_bytes"], 6);
    assert_eq!(d["stdout_truncated"], false);
    assert_eq!(d["stdout_sha256"], sha256_id(b"hello\n"));
    assert_eq!(d["stderr"], "warn: x\n");
    assert_eq!(d["wall_ms"], 12);
    assert_eq!(d["cpu_ms"], 3);
    assert_eq!(d["peak_memory_bytes"], 4 << 20);
    let s = &d["sandbox"];
    assert_eq!(s["backend"], "native");
    assert_eq!(s["namespaces"].as_array().unwrap().len(), 6);
    assert_eq!(s["capabilities"], serde_json::json!([]));
    assert_eq!(s["seccomp"], "filter");
    assert_eq!(s["seccomp_extra"], serde_json::json!([]));
    assert_eq!(s["landlock"], "abi:7");
    assert_eq!(s["cgroup"], "v1:pids,memory");
    assert_eq!(s["apparmor"], "unavailable");
    assert_eq!(s["network"], "none");
    assert_eq!(s["uid"], 65534);
    assert_eq!(s["no_new_privs"], true);
    assert_eq!(s["read_only_root"], true);
    validate::check_json(&m.json, Some(p.max_event_bytes())).unwrap();
}

#[test]
fn status_follows_exit_signal_and_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "");
    let case = |t: Termination, timed_out: bool| {
        let mut r = completed(b"", b"");
        if let Disposition::Completed(o) = &mut r.disposition {
            o.termination = t;
            o.timed_out = timed_out;
        }
        json(&p.build(&r))["data"].clone()
    };
    let d = case(Termination::Exited(3), false);
    assert_eq!(
        (d["status"].as_str(), d["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
    let d = case(Termination::Signaled(9), false);
    assert_eq!(d["status"], "signaled");
    assert_eq!(d["signal"], 9);
    assert_eq!(d["exit_code"], Value::Null);
    let d = case(Termination::Signaled(9), true);
    assert_eq!(d["status"], "timed_out");
    assert_eq!(d["timed_out"], true);
}

#[test]
fn denial_carries_stage_reason_and_whatever_was_known() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "");
    // Refused while parsing: only the JWS and its digest are known.
    let m = p.build(&denied(
        Reason::JwsMalformed,
        TaskContext::received(b"not.a.jws"),
    ));
    assert_eq!(m.mapping, Mapping::Plugin { attempts: 1 });
    let v = json(&m);
    assert_eq!(v["type"], TYPE_DENIED);
    assert!(v.get("subject").is_none(), "no task id, no subject");
    assert!(v.get("tenantid").is_none());
    let d = &v["data"];
    assert_eq!(d["status"], "denied");
    assert_eq!(d["stage"], "parse");
    assert_eq!(d["reason"], "jws_malformed");
    assert_eq!(d["message"], "refused for the test: jws_malformed");
    assert_eq!(d["manifest_jws"], "not.a.jws");
    assert_eq!(d["task_id"], Value::Null);
    assert!(d.get("stdout").is_none() && d.get("exit_code").is_none());
    // Refused late: everything is known and kept.
    let v = json(&p.build(&denied(Reason::DigestUnauthorized, task())));
    assert_eq!(v["subject"], "task-42");
    assert_eq!(v["tenantid"], "tenant-a");
    assert_eq!(v["data"]["stage"], "armory");
    assert_eq!(
        v["data"]["tool_sha256"],
        format!("sha256:{}", "ab".repeat(32))
    );
}

fn assert_linkage(d: &Value) {
    assert_eq!(d["task_id"], "task-42");
    assert_eq!(d["tenant_id"], "tenant-a");
    assert_eq!(d["tool_sha256"], format!("sha256:{}", "ab".repeat(32)));
    assert_eq!(d["manifest_jws"], JWS);
}

#[test]
fn large_text_output_is_cut_at_a_char_boundary_under_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "");
    // Multibyte text with escapes, 1 MiB+ each.
    let stdout = "é\"ø\n€\t".repeat(100_000).into_bytes();
    let stderr = "x".repeat(2_000_000).into_bytes();
    let m = p.build(&completed(&stdout, &stderr));
    assert!(m.json.len() <= 65536, "{} bytes", m.json.len());
    assert!(
        m.json.len() > 60000,
        "the budget is used, not wasted: {}",
        m.json.len()
    );
    assert!(matches!(m.mapping, Mapping::Plugin { .. }));
    let d = &json(&m)["data"];
    assert_linkage(d);
    assert_eq!(
        d["stdout_encoding"], "utf-8",
        "a cut at a char boundary stays text"
    );
    assert_eq!(d["stdout_truncated"], true);
    assert_eq!(d["stdout_bytes"], stdout.len());
    assert_eq!(d["stdout_captured_bytes"], stdout.len());
    assert_eq!(
        d["stdout_sha256"],
        sha256_id(&stdout),
        "digest of everything captured"
    );
    let kept = d["stdout"].as_str().unwrap().as_bytes();
    assert_eq!(d["stdout_kept_bytes"], kept.len());
    assert!(stdout.starts_with(kept), "a prefix of the real output");
    assert_eq!(d["stderr_truncated"], true);
    assert!(
        d["stderr"].as_str().unwrap().len() > 10_000,
        "both streams get a share"
    );
}

#[test]
fn binary_output_is_base64_and_cut_under_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "[events]\nmax_event_bytes = 16384\n");
    let stdout: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i * 7 % 251) as u8 | 0x80)
        .collect();
    let m = p.build(&completed(&stdout, b"small stderr"));
    assert!(m.json.len() <= 16384, "{}", m.json.len());
    let d = &json(&m)["data"];
    assert_linkage(d);
    assert_eq!(d["stdout_encoding"], "base64");
    use base64::Engine as _;
    let kept = base64::engine::general_purpose::STANDARD
        .decode(d["stdout"].as_str().unwrap())
        .unwrap();
    assert!(!kept.is_empty() && stdout.starts_with(&kept));
    assert_eq!(d["stdout_kept_bytes"], kept.len());
    assert_eq!(d["stdout_bytes"], 1_000_000);
    assert_eq!(
        d["stderr"], "small stderr",
        "the small stream is kept whole"
    );
    assert_eq!(d["stderr_truncated"], false);
}

#[test]
fn output_already_truncated_by_the_sandbox_keeps_true_counts() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "");
    let mut r = completed(b"", b"");
    if let Disposition::Completed(o) = &mut r.disposition {
        o.stdout = Captured {
            bytes: b"first 16 bytes..".to_vec(),
            total_bytes: 5_000_000_000,
            truncated: true,
        };
    }
    let d = &json(&p.build(&r))["data"];
    assert_eq!(d["stdout_bytes"], 5_000_000_000u64);
    assert_eq!(d["stdout_captured_bytes"], 16);
    assert_eq!(d["stdout_kept_bytes"], 16);
    assert_eq!(d["stdout_truncated"], true);
}

#[test]
fn linkage_that_alone_exceeds_the_cap_is_emitted_whole_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "[events]\nmax_event_bytes = 4096\n");
    let mut r = completed(&[b'o'; 10_000], b"");
    let big_jws = format!(
        "{}.{}.{}",
        "a".repeat(3000),
        "b".repeat(3000),
        "c".repeat(86)
    );
    r.task.manifest_jws = Some(big_jws.clone());
    let m = p.build(&r);
    assert!(m.over_cap, "linkage alone is {} bytes", big_jws.len());
    assert!(matches!(m.mapping, Mapping::Fallback { .. }));
    let d = &json(&m)["data"];
    assert_eq!(d["manifest_jws"], big_jws.as_str(), "never cut");
    assert!(
        d.get("stdout").is_none(),
        "the fallback carries digests, not output"
    );
    assert_eq!(d["stdout_sha256"], sha256_id(&[b'o'; 10_000]));
}

#[test]
fn small_cap_with_a_real_sized_jws_stays_under_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "[events]\nmax_event_bytes = 4096\n");
    let mut r = completed(&[b'o'; 10_000], &[0xffu8; 10_000]);
    r.task.manifest_jws = Some(format!(
        "{}.{}.{}",
        "a".repeat(600),
        "b".repeat(900),
        "c".repeat(86)
    ));
    let m = p.build(&r);
    assert!(!m.over_cap);
    assert!(m.json.len() <= 4096, "{}", m.json.len());
    assert!(
        matches!(m.mapping, Mapping::Plugin { .. }),
        "{:?}",
        m.mapping
    );
    let d = &json(&m)["data"];
    assert!(d["stdout_kept_bytes"].as_u64().unwrap() > 100);
    assert!(d["stderr_kept_bytes"].as_u64().unwrap() > 100);
}

#[test]
fn ids_are_unique_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "");
    let r = completed(b"x", b"");
    let a = json(&p.build(&r))["id"].clone();
    let b = json(&p.build(&r))["id"].clone();
    assert_ne!(a, b);
}
