//! The key set parser (`KeySet::parse`). Invariants on an accepted set: 1 to 256 keys with
//! unique, printable, bounded kids that are the map keys; every key names an algorithm
//! that is not `none`; no key carries a private member; `use` and `key_ops`, when
//! present, allow verification; the members handed to plugins are exactly the key's
//! string members.
#![no_main]

use edge_runner::keys::{KeySet, MAX_KEYS, MAX_KID_LEN};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(set) = KeySet::parse(data, Path::new("fuzz.jwks")) else {
        return;
    };
    let doc: Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => panic!("accepted a key set that is not JSON: {e}"),
    };
    let list = doc["keys"].as_array().cloned().unwrap_or_default();
    assert!(!set.is_empty() && set.len() <= MAX_KEYS);
    assert_eq!(set.len(), list.len(), "a key was dropped or merged");
    for raw in &list {
        let Value::Object(m) = raw else {
            panic!("accepted a key that is not an object: {raw}");
        };
        let kid = m["kid"].as_str().unwrap_or_default();
        let Some(key) = set.get(kid) else {
            panic!("accepted key {kid:?} cannot be looked up");
        };
        assert_eq!(key.kid, kid);
        assert!(!kid.is_empty() && kid.len() <= MAX_KID_LEN);
        assert!(kid.bytes().all(|b| b.is_ascii_graphic()), "kid {kid:?}");
        assert_eq!(m.get("alg").and_then(Value::as_str), Some(key.alg.as_str()));
        assert!(!key.alg.eq_ignore_ascii_case("none"));
        assert_eq!(m.get("kty").and_then(Value::as_str), Some(key.kty.as_str()));
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "r", "t"] {
            assert!(
                !m.contains_key(private),
                "accepted private member {private}"
            );
        }
        if let Some(u) = m.get("use") {
            assert_eq!(u.as_str(), Some("sig"));
        }
        if let Some(ops) = m.get("key_ops") {
            assert!(
                ops.as_array()
                    .is_some_and(|a| a.iter().any(|o| o == "verify")),
                "key_ops without verify"
            );
        }
        let mut want: Vec<(String, String)> = m
            .iter()
            .filter_map(|(n, v)| v.as_str().map(|s| (n.clone(), s.to_owned())))
            .collect();
        let mut got = key.members.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "members handed to the plugin");
    }
});
