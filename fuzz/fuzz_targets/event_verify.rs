//! Signed events (`events::signing::verify`, what `events verify` runs), through the real
//! ES256 verifier plugin. The input either edits a line the runner signed (any bytes
//! changed, inserted or cut) or is a whole line of its own. Invariants: an edited line
//! verifies only if it is the signed line (surrounding whitespace aside), so no change to
//! any attribute, any byte of data, the header or the signature goes unnoticed; and any
//! line that verifies carries an event the key really signed, with the id it was signed
//! for.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use edge_runner::events::signing::{EventSigner, split, verify};
use edge_runner::keys::KeySet;
use edge_runner::plugins::{CompileCache, PluginHost, PluginLimits, Verifiers};
use edge_runner::sign::SigningKey;
use edge_runner::verify::SignatureVerifier;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

struct Fixture {
    verifier: SignatureVerifier,
    /// (signed line, the unsigned event inside it, its id)
    lines: Vec<(Vec<u8>, Vec<u8>, String)>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut scalar = [0u8; 32];
        scalar[0] = 0x42;
        scalar[31] = 0x17;
        let Some(key) = SigningKey::es256("runner-fuzz", &scalar) else {
            panic!("fixed scalar refused");
        };
        let jwks = serde_json::json!({ "keys": [key.public_jwk()] }).to_string();
        let keys = match KeySet::parse(jwks.as_bytes(), Path::new("fuzz.jwks")) {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        };
        let host = match PluginHost::new(PluginLimits::default(), CompileCache::disabled()) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        };
        let verifiers = match Verifiers::load(host, &Default::default()) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let verifier = match SignatureVerifier::new(keys, verifiers) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let Ok(signer) = EventSigner::new(key) else {
            panic!("ES256 signs events");
        };
        let events = [
            (
                "0190b4a2-6c1e-7c3a-9a59-1d2f3e4a5b6c",
                r#"{"specversion":"1.0","id":"0190b4a2-6c1e-7c3a-9a59-1d2f3e4a5b6c","source":"urn:edge-runner:edge-7","type":"dev.edge-runner.task.completed.v1","time":"2026-11-26T21:00:00.000Z","subject":"t-42","tenantid":"acme","datacontenttype":"application/json","data":{"task_id":"t-42","tenant_id":"acme","manifest_sha256":"sha256:aa","status":"succeeded","exit_code":0,"stdout":"uid=65534\n"}}"#,
                Some("sha256:aa"),
            ),
            (
                "e-2",
                r#"{"specversion":"1.0","id":"e-2","source":"urn:x","type":"t","data_base64":"AAEC","datacontenttype":"application/octet-stream"}"#,
                None,
            ),
        ];
        let lines = events
            .iter()
            .map(|(id, json, manifest)| {
                let line = signer.sign(json.as_bytes(), id, *manifest);
                (line, json.as_bytes().to_vec(), (*id).to_owned())
            })
            .collect();
        Fixture { verifier, lines }
    })
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Set(u16, u8),
    Insert(u16, u8),
    Remove(u16),
    Truncate(u16),
}

#[derive(Arbitrary, Debug)]
enum Input {
    Edited { line: u8, edits: Vec<Edit> },
    Raw(Vec<u8>),
}

fuzz_target!(|bytes: &[u8]| {
    let f = fixture();
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(bytes)) else {
        return;
    };
    match input {
        Input::Edited { line, edits } => {
            let (original, _, _) = &f.lines[usize::from(line) % f.lines.len()];
            let mut l = original.clone();
            for e in edits {
                let at = |i: u16| usize::from(i) % (l.len() + 1);
                match e {
                    Edit::Set(i, b) => {
                        let i = at(i);
                        if i < l.len() {
                            l[i] = b;
                        }
                    }
                    Edit::Insert(i, b) => {
                        let i = at(i);
                        l.insert(i, b);
                    }
                    Edit::Remove(i) => {
                        let i = at(i);
                        if i < l.len() {
                            l.remove(i);
                        }
                    }
                    Edit::Truncate(i) => {
                        let i = at(i);
                        l.truncate(i);
                    }
                }
            }
            if verify(&l, &f.verifier).is_ok() {
                assert_eq!(
                    l.trim_ascii(),
                    &original[..],
                    "an edited event verified:\n{}",
                    String::from_utf8_lossy(&l)
                );
            }
        }
        Input::Raw(l) => {
            if let Ok(v) = verify(&l, &f.verifier) {
                let Ok((unsigned, _, _)) = split(&l) else {
                    panic!("verified but does not split");
                };
                assert!(
                    f.lines
                        .iter()
                        .any(|(_, u, id)| *u == unsigned && *id == v.id),
                    "a line nobody signed verified: {}",
                    String::from_utf8_lossy(&l)
                );
            }
        }
    }
});
