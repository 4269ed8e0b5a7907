//! Runs the verifier suite on one loaded plugin: `info` declares what it implements, then
//! for every declared algorithm the RFC vectors, Wycheproof, the attack classes and the
//! resource behaviour. A vector answered wrongly fails its row, naming the vector.

use super::Row;
use super::vectors::{self, Expect, Suite, Vector};
use crate::plugins::{FaultKind, PluginHost, VerifierPlugin, VerifyFailure};
use std::time::{Duration, Instant};

/// Vectors named in a failed row's detail (the count says how many more).
const NAMED: usize = 3;
/// A single call slower than this fails "bounded time".
const SLOW_CALL: Duration = Duration::from_secs(5);

/// What the plugin answered for one vector.
enum Answer {
    Accepted,
    KeyRefused(String),
    Refused(String),
    Fault(String),
}

fn run_vector(host: &PluginHost, plugin: &VerifierPlugin, v: &Vector) -> (Answer, Duration) {
    let start = Instant::now();
    let answer = match host.validate_key(plugin, &v.alg, &v.key) {
        Err(VerifyFailure::Fault(f)) => Answer::Fault(f.to_string()),
        Err(e) => Answer::KeyRefused(describe(&e)),
        Ok(()) => match host.verify(plugin, &v.alg, &v.key, &v.input, &v.signature) {
            Ok(()) => Answer::Accepted,
            Err(VerifyFailure::Fault(f)) => Answer::Fault(f.to_string()),
            Err(e) => Answer::Refused(describe(&e)),
        },
    };
    (answer, start.elapsed())
}

fn describe(e: &VerifyFailure) -> String {
    match e {
        VerifyFailure::Mismatch => "mismatch".into(),
        VerifyFailure::MalformedSignature(m) => format!("malformed signature: {m}"),
        VerifyFailure::KeyRefused(m) => format!("key refused: {m}"),
        VerifyFailure::Unsupported(a) => format!("unsupported algorithm {a}"),
        VerifyFailure::Fault(f) => f.to_string(),
    }
}

/// Why `answer` is wrong for `v`, if it is.
fn wrong(v: &Vector, answer: &Answer) -> Option<String> {
    match (v.expect, answer) {
        (_, Answer::Fault(f)) => Some(format!("faulted instead of answering: {f}")),
        (Expect::Accept, Answer::Accepted) => None,
        (Expect::Accept, Answer::KeyRefused(m) | Answer::Refused(m)) => {
            Some(format!("refused a valid signature ({m})"))
        }
        (Expect::Reject, Answer::Accepted) => Some("ACCEPTED an invalid signature".into()),
        (Expect::Reject, Answer::KeyRefused(_) | Answer::Refused(_)) => None,
        (Expect::RefuseKey, Answer::KeyRefused(_)) => None,
        (Expect::RefuseKey, Answer::Accepted) => {
            Some("ACCEPTED a signature under an invalid key".into())
        }
        (Expect::RefuseKey, Answer::Refused(_)) => Some(
            "validate-key accepted an invalid key (verify refused it, but the host checks \
             keys when it loads the key set)"
                .into(),
        ),
    }
}

fn run_suite(
    host: &PluginHost,
    plugin: &VerifierPlugin,
    suite: &Suite,
    slowest: &mut Duration,
) -> Row {
    let mut failures = Vec::new();
    for v in &suite.vectors {
        let (answer, took) = run_vector(host, plugin, v);
        *slowest = (*slowest).max(took);
        if let Some(why) = wrong(v, &answer) {
            failures.push(format!("{}: {why}", v.name));
        }
    }
    if failures.is_empty() {
        Row::pass(
            &suite.check,
            format!("{} vectors answered correctly", suite.vectors.len()),
        )
    } else {
        let more = failures.len().saturating_sub(NAMED);
        let mut detail = format!(
            "{} of {} wrong: {}",
            failures.len(),
            suite.vectors.len(),
            failures[..failures.len().min(NAMED)].join("; ")
        );
        if more > 0 {
            detail.push_str(&format!("; and {more} more"));
        }
        Row::fail(&suite.check, detail)
    }
}

/// `info` declares each algorithm once, with the key type and curve it needs, and the
/// suite knows every algorithm it declares.
fn info_rows(plugin: &VerifierPlugin) -> Vec<Row> {
    let mut rows = Vec::new();
    let declared: Vec<String> = plugin
        .algorithms
        .iter()
        .map(|a| match &a.curve {
            Some(c) => format!("{} ({}, {c})", a.name, a.key_type),
            None => format!("{} ({})", a.name, a.key_type),
        })
        .collect();
    rows.push(Row::pass(
        "info: loads, declares algorithms once",
        format!(
            "{} {}: {} (contract {})",
            plugin.name,
            plugin.version,
            declared.join(", "),
            plugin.contract().version()
        ),
    ));
    if !plugin.imports.is_empty() {
        rows.push(Row::pass(
            "imports: deny-all WASI only",
            format!(
                "imports {} (linked to a context that grants nothing)",
                plugin.imports.join(", ")
            ),
        ));
    } else {
        rows.push(Row::pass(
            "imports: deny-all WASI only",
            "imports nothing".into(),
        ));
    }
    for a in &plugin.algorithms {
        let check = format!("{}: info declares the right key type", a.name);
        match vectors::key_type(&a.name) {
            None => rows.push(Row::fail(
                &check,
                format!(
                    "the suite has no vectors for {}; it cannot vouch for it (known: HS256, \
                     ES256, EdDSA, Ed25519)",
                    a.name
                ),
            )),
            Some((kty, crv)) => {
                if a.key_type == kty && a.curve.as_deref() == crv {
                    rows.push(Row::pass(&check, format!("{kty} {}", crv.unwrap_or("-"))));
                } else {
                    rows.push(Row::fail(
                        &check,
                        format!(
                            "declares key type {} curve {}, but {} needs {kty} {}",
                            a.key_type,
                            a.curve.as_deref().unwrap_or("-"),
                            a.name,
                            crv.unwrap_or("-")
                        ),
                    ));
                }
            }
        }
    }
    rows
}

/// Every row for a verifier.
pub(crate) fn check(host: &PluginHost, plugin: &VerifierPlugin, max_input: usize) -> Vec<Row> {
    let mut rows = info_rows(plugin);
    let mut slowest = Duration::ZERO;
    for a in &plugin.algorithms {
        let alg = a.name.as_str();
        let mut suites: Vec<Suite> = Vec::new();
        suites.extend(vectors::rfc(alg));
        suites.extend(vectors::wycheproof(alg));
        suites.extend(vectors::attacks(alg));
        for suite in &suites {
            rows.push(run_suite(host, plugin, suite, &mut slowest));
        }
        if let Some(v) = vectors::largest(alg, max_input) {
            rows.push(resource_row(host, plugin, &v));
        }
    }
    let detail = format!(
        "slowest call {:.1} ms (every call is bounded by {} fuel units and {} MiB)",
        slowest.as_secs_f64() * 1e3,
        host.limits().fuel,
        host.limits().memory_bytes / (1024 * 1024)
    );
    // Fuel bounds every call; a call this slow means the plugin spends its budget on
    // something other than the algorithm.
    rows.push(if slowest > SLOW_CALL {
        Row::fail("bounded time", detail)
    } else {
        Row::pass("bounded time", detail)
    });
    rows
}

/// The largest signing input the configuration admits must be answered (refused: the
/// signature is for another input) within the fuel and memory limits.
fn resource_row(host: &PluginHost, plugin: &VerifierPlugin, v: &Vector) -> Row {
    let check = format!("{}: resources ({} within fuel and memory)", v.alg, v.name);
    let start = Instant::now();
    let answer = host.verify(plugin, &v.alg, &v.key, &v.input, &v.signature);
    let took = start.elapsed().as_secs_f64() * 1e3;
    match answer {
        Err(VerifyFailure::Fault(f)) => {
            let what = match f.kind {
                FaultKind::OutOfFuel { .. } => "ran out of fuel",
                FaultKind::MemoryLimit { .. } => "hit the memory limit",
                _ => "faulted",
            };
            Row::fail(&check, format!("{what}: {f}"))
        }
        Ok(()) => Row::fail(&check, "ACCEPTED a signature over another input".into()),
        Err(_) => Row::pass(&check, format!("refused in {took:.1} ms")),
    }
}
