//! Issue 15, property tests (proptest): sign-then-verify round trips for every signing
//! algorithm over random manifests (and any one-byte change refused), event build then
//! validate over random records, and the replay store's model: any interleaving of
//! check / check-and-record across two real processes on one temporary store lets each
//! (tenant, nonce) pair run at most once. (The spool's write-then-read property is a unit
//! test beside the spool, `host/src/events/sinks/spool/props.rs`, as the spool is
//! crate-private.)

use crate::task_kit::{self, Kit};
use edge_runner::events::{Denial, Disposition, ExecutionRecord, Mapping, TaskContext};
use edge_runner::manifest::{self, ClaimPolicy};
use edge_runner::reason::{Reason, Refusal};
use edge_runner::replay::ReplayStore;
use edge_runner::sandbox::{Captured, Outcome, Termination};
use edge_runner::sign::{SignAlg, SigningKey};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

fn identifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._:@-]{0,40}"
}

/// A nonce as a control plane makes one: 32 random bytes as hex.
fn nonce() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 32)
        .prop_map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A random valid manifest (times around now, any args, env, parameters and limits the
/// default policy allows).
fn manifest_strategy() -> impl Strategy<Value = Value> {
    (
        identifier(),
        identifier(),
        proptest::option::of(identifier()),
        any::<[u8; 32]>(),
        nonce(),
        proptest::collection::vec("[^\u{0}]{0,30}", 0..5),
        proptest::collection::btree_map(
            proptest::sample::select(edge_runner::manifest::env::DEFAULT_ALLOWED_ENV)
                .prop_map(str::to_owned),
            "[^\u{0}]{0,20}",
            0..4,
        ),
        proptest::option::of(prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[^\u{0}]{0,40}".prop_map(Value::from),
            proptest::collection::vec(any::<bool>(), 0..4).prop_map(|v| json!(v)),
        ]),
        (1u64..=600_000, 1u64..=16 * 1024 * 1024),
        0i64..300,
    )
        .prop_map(
            |(task, tenant, op, tool, nonce, args, env, params, (timeout, output), age)| {
                let now = chrono::Utc::now();
                let t = |d: chrono::DateTime<chrono::Utc>| {
                    d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                };
                let mut m = json!({
                    "manifest_version": "1",
                    "aud": edge_runner::config::RunnerConfig::default().id,
                    "task_context": {"task_id": task, "tenant_id": tenant},
                    "tool_sha256": edge_runner::digest::sha256_id(&tool),
                    "nonce": nonce,
                    "issued_at": t(now - chrono::TimeDelta::seconds(age)),
                    "expires_at": t(now + chrono::TimeDelta::seconds(300)),
                    "args": args,
                    "env": env,
                    "limits": {"timeout_ms": timeout, "output_bytes": output},
                });
                if let Some(op) = op {
                    m["task_context"]["operator_id"] = json!(op);
                }
                if let Some(p) = params {
                    m["parameters"] = p;
                }
                m
            },
        )
}

/// Every algorithm the runner can sign with (`sign::SignAlg`), with a fixed key.
fn keys() -> Vec<SigningKey> {
    vec![
        SigningKey::generate(SignAlg::Hs256, "hs").unwrap(),
        SigningKey::generate(SignAlg::Es256, "es").unwrap(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sign_then_verify_round_trips_for_every_algorithm(m in manifest_strategy(), flip in any::<(usize, u8)>()) {
        let keys = keys();
        let verifier = crate::support::signature_verifier(
            &keys.iter().map(SigningKey::public_jwk).collect::<Vec<_>>(),
        );
        let policy: ClaimPolicy = task_kit::policy();
        let payload = serde_json::to_vec(&m).unwrap();
        for key in &keys {
            let compact = key.sign_compact(&payload);
            let parsed = edge_runner::jws::parse(compact.as_bytes(), &Default::default()).unwrap();
            let verified = verifier.verify(parsed).unwrap();
            prop_assert_eq!(verified.alg(), key.alg().as_str());
            prop_assert_eq!(verified.payload(), &payload[..]);
            let checked = manifest::decode(&verified, &policy, chrono::Utc::now()).unwrap();
            prop_assert_eq!(&checked.task().task_id, m["task_context"]["task_id"].as_str().unwrap());
            prop_assert_eq!(checked.nonce(), m["nonce"].as_str().unwrap());
            prop_assert_eq!(checked.tool().to_string(), m["tool_sha256"].as_str().unwrap());
            let args: Vec<String> = serde_json::from_value(m["args"].clone()).unwrap();
            prop_assert_eq!(checked.args(), &args[..]);
            prop_assert_eq!(checked.limits().timeout_ms, m["limits"]["timeout_ms"].as_u64().unwrap());

            // Any change of one byte of the token is refused (parse or signature).
            let mut bytes = compact.into_bytes();
            let at = flip.0 % bytes.len();
            let new = if flip.1 == bytes[at] { flip.1.wrapping_add(1) } else { flip.1 };
            bytes[at] = new;
            let accepted = edge_runner::jws::parse(&bytes, &Default::default())
                .ok()
                .and_then(|p| verifier.verify(p).ok());
            prop_assert!(accepted.is_none(), "a changed token verified ({} at {at})", key.alg().as_str());
        }
    }
}

fn record_strategy() -> impl Strategy<Value = ExecutionRecord> {
    let task = (
        proptest::option::of(identifier()),
        proptest::option::of(identifier()),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of("[A-Za-z0-9_-]{10,200}\\.[A-Za-z0-9_-]{2,50}\\.[A-Za-z0-9_-]{10,90}"),
    )
        .prop_map(|(task_id, tenant_id, tool, jws)| TaskContext {
            task_id,
            tenant_id,
            tool_sha256: tool.map(|t| edge_runner::digest::sha256_id(&t)),
            manifest_sha256: jws
                .as_ref()
                .map(|j| edge_runner::digest::sha256_id(j.as_bytes())),
            manifest_jws: jws,
            ..TaskContext::default()
        });
    let completed = (
        proptest::collection::vec(any::<u8>(), 0..3000),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<i32>(),
        any::<bool>(),
    )
        .prop_map(|(out, err, code, timed_out)| {
            Disposition::Completed(Outcome {
                termination: Termination::Exited(code),
                timed_out,
                stdout: Captured::complete(out),
                stderr: Captured::complete(err),
                wall_ms: 5,
                cpu_ms: 1,
                peak_memory_bytes: 0,
                posture: crate::events::posture(),
            })
        });
    let denied = (0..Reason::ALL.len(), "[ -~]{0,200}")
        .prop_map(|(i, m)| Disposition::Denied(Denial::from(Refusal::new(Reason::ALL[i], m))));
    (task, prop_oneof![completed, denied])
        .prop_map(|(task, disposition)| ExecutionRecord { task, disposition })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn event_build_then_validate(record in record_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let p = crate::events::pipeline(dir.path(), "");
        let mapped = p.build(&record);
        prop_assert!(matches!(mapped.mapping, Mapping::Plugin { .. }), "{:?}", mapped.mapping);
        let event = mapped.event();
        prop_assert!(event.is_ok(), "{:?}", event);
        prop_assert!(mapped.json.len() <= p.max_event_bytes());
        let v: Value = serde_json::from_slice(&mapped.json).unwrap();
        prop_assert_eq!(v["id"].as_str(), Some(mapped.id.as_str()));
        prop_assert_eq!(v["type"].as_str(), Some(record.kind().default_type()));
        let t = &record.task;
        for (name, value) in [
            ("task_id", &t.task_id),
            ("tenant_id", &t.tenant_id),
            ("tool_sha256", &t.tool_sha256),
            ("manifest_jws", &t.manifest_jws),
        ] {
            if let Some(value) = value {
                prop_assert_eq!(v["data"][name].as_str(), Some(value.as_str()), "{}", name);
            }
        }
    }
}

// --- The replay store's model, across two processes -------------------------------

/// One step of a process's script: `check` is the read-only question `run` asks first,
/// `record` the atomic check-and-record right before a launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Check(u8),
    Record(u8),
}

/// Three tenants x two nonces: small, so the scripts collide often.
const PAIRS: u8 = 6;

fn pair(i: u8) -> (String, String) {
    let tenant = format!("tenant-{}", i % 3);
    let nonce = format!("{:064x}", u64::from(i / 3) + 0x1234_5678_9abc_def0);
    (tenant, nonce)
}

fn encode(script: &[Op]) -> String {
    script
        .iter()
        .map(|op| match op {
            Op::Check(p) => format!("c{p}"),
            Op::Record(p) => format!("r{p}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn decode(text: &str) -> Vec<Op> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let n: u8 = s[1..].parse().unwrap();
            if s.starts_with('c') {
                Op::Check(n)
            } else {
                Op::Record(n)
            }
        })
        .collect()
}

/// The helper each racing process runs: prepares every manifest of its script, prints
/// READY, waits for the start line, runs the script against the store and prints one
/// result per step (`ok` or a reason code).
#[test]
#[ignore = "helper run by replay_model_two_processes in child processes"]
fn replay_model_child() {
    let state = std::env::var("ER_TEST_STATE").unwrap();
    let script = decode(&std::env::var("ER_TEST_SCRIPT").unwrap());
    let kit = Kit::new();
    let manifests: Vec<_> = script
        .iter()
        .map(|op| {
            let (Op::Check(p) | Op::Record(p)) = *op;
            let (tenant, nonce) = pair(p);
            let mut m = task_kit::manifest(
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                &nonce,
            );
            m["task_context"]["tenant_id"] = json!(tenant);
            kit.checked(&m)
        })
        .collect();
    let store = ReplayStore::new(Path::new(&state));
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let mut results = Vec::new();
    for (op, m) in script.iter().zip(&manifests) {
        let r = match op {
            Op::Check(_) => store.check(m),
            Op::Record(_) => store.check_and_record(m, chrono::Utc::now()),
        };
        results.push(match r {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.reason().code().to_owned(),
        });
    }
    println!("RESULTS {}", results.join(","));
}

fn run_two(state: &Path, scripts: [&[Op]; 2]) -> [Vec<String>; 2] {
    let mut children: Vec<_> = scripts
        .iter()
        .map(|s| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "properties::replay_model_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("ER_TEST_STATE", state)
                .env("ER_TEST_SCRIPT", encode(s))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let lines = BufReader::new(child.stdout.take().unwrap()).lines();
            (child, lines)
        })
        .collect();
    let wait = |lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>, marker: &str| {
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(at) = line.find(marker) {
                return line[at + marker.len()..].trim().to_owned();
            }
        }
        panic!("the child ended without {marker}");
    };
    for (_, lines) in &mut children {
        wait(lines, "READY");
    }
    for (child, _) in &mut children {
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    let mut out = [Vec::new(), Vec::new()];
    for (i, (mut child, mut lines)) in children.into_iter().enumerate() {
        let results = wait(&mut lines, "RESULTS ");
        out[i] = results
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        assert!(child.wait().unwrap().success());
    }
    out
}

fn script() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            (0..PAIRS).prop_map(Op::Check),
            (0..PAIRS).prop_map(Op::Record),
        ],
        1..10,
    )
}

proptest! {
    // Each case starts two processes; 12 cases keep the test under a minute in debug.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn replay_model_two_processes(a in script(), b in script()) {
        let dir = tempfile::tempdir().unwrap();
        let [ra, rb] = run_two(dir.path(), [&a, &b]);
        prop_assert_eq!(ra.len(), a.len());
        prop_assert_eq!(rb.len(), b.len());
        for p in 0..PAIRS {
            let records = |s: &[Op], r: &[String]| -> (usize, usize) {
                let mut tried = 0;
                let mut won = 0;
                for (op, res) in s.iter().zip(r) {
                    if *op == Op::Record(p) {
                        tried += 1;
                        if res == "ok" {
                            won += 1;
                        } else {
                            assert_eq!(res, "replayed_nonce", "{s:?} {r:?}");
                        }
                    }
                }
                (tried, won)
            };
            let (ta, wa) = records(&a, &ra);
            let (tb, wb) = records(&b, &rb);
            // The property: a pair runs at most once, and exactly once if anyone tried.
            prop_assert!(wa + wb <= 1, "pair {} ran twice: {:?} {:?} / {:?} {:?}", p, a, ra, b, rb);
            prop_assert_eq!(wa + wb, usize::from(ta + tb > 0), "pair {} never ran", p);
            // Within one process, once it recorded (or saw recorded) a pair, every later
            // question about it says replayed.
            for (s, r) in [(&a, &ra), (&b, &rb)] {
                let mut spent = false;
                for (op, res) in s.iter().zip(r.iter()) {
                    match *op {
                        Op::Check(q) | Op::Record(q) if q == p => {
                            if spent {
                                prop_assert_eq!(res, "replayed_nonce", "{:?} {:?}", s, r);
                            }
                            if matches!(op, Op::Record(_)) || res == "replayed_nonce" {
                                spent = true;
                            }
                        }
                        _ => {}
                    }
                }
            }
            // A check that said "replayed" means some record of the pair succeeded.
            let said_replayed = a.iter().zip(&ra).chain(b.iter().zip(&rb)).any(|(op, res)| {
                *op == Op::Check(p) && res == "replayed_nonce"
            });
            if said_replayed {
                prop_assert_eq!(wa + wb, 1);
            }
        }
    }
}
