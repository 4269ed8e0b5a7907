//! The manifest decoder and claim checks (`manifest::validate_unsigned`, the same checks
//! `manifest::decode` runs on a verified payload). Invariants on an accepted manifest: it
//! passes the manifest JSON schema the runner publishes, as an independent validator
//! reads it, and its time claims hold at the checking time under the default policy.
#![no_main]

use chrono::{DateTime, TimeDelta, Utc};
use edge_runner::manifest::{
    ClaimPolicy, ClaimsConfig, EnvConfig, LimitsConfig, validate_unsigned,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The checking time the seed corpus is written around.
const NOW: &str = "2026-11-26T21:00:00Z";

fuzz_target!(|data: &[u8]| {
    let policy = ClaimPolicy {
        claims: ClaimsConfig::default(),
        limits: LimitsConfig::default(),
        env: EnvConfig::default(),
        // Checked as a signer checks an unsigned manifest: for no particular runner.
        audience: Vec::new(),
    };
    let now: DateTime<Utc> = match NOW.parse() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    if validate_unsigned(data, &policy, now).is_err() {
        return;
    }
    let doc: Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => panic!("accepted a manifest that is not JSON: {e}"),
    };
    edge_runner_fuzz::assert_manifest_schema(&doc);
    let time = |name: &str| -> DateTime<Utc> {
        match doc[name].as_str().map(DateTime::parse_from_rfc3339) {
            Some(Ok(t)) => t.with_timezone(&Utc),
            other => panic!("accepted {name} = {other:?}"),
        }
    };
    let (issued, expires) = (time("issued_at"), time("expires_at"));
    let skew = TimeDelta::seconds(policy.claims.clock_skew_secs as i64);
    assert!(expires > issued, "expires_at not after issued_at");
    assert!(issued <= now + skew, "not yet valid, accepted");
    assert!(now < expires + skew, "expired, accepted");
    assert!(
        expires - issued <= TimeDelta::seconds(policy.claims.max_manifest_age_secs as i64),
        "lifetime over the maximum, accepted"
    );
    if let Some(limits) = doc.get("limits") {
        for (name, max) in [
            ("timeout_ms", policy.limits.max_timeout_ms),
            ("memory_bytes", policy.limits.max_memory_bytes),
            ("output_bytes", policy.limits.max_output_bytes),
        ] {
            if let Some(v) = limits.get(name) {
                assert!(v.as_u64().is_some_and(|n| n >= 1 && n <= max), "{name}");
            }
        }
    }
    // The env denylist is case-insensitive, which a schema pattern expresses only as a
    // character-class alternation: check the rule in its plain form too.
    if let Some(Value::Object(env)) = doc.get("env") {
        for name in env.keys() {
            let upper = name.to_ascii_uppercase();
            let denied = edge_runner::manifest::env::denied_env_names().any(|d| d == upper)
                || edge_runner::manifest::env::denied_env_prefixes().any(|p| upper.starts_with(p));
            assert!(!denied, "denied variable {name} accepted");
        }
    }
});
