//! Signature verification through the WebAssembly plugins (a fresh instance per call,
//! instantiation included) against the same crates called natively, in the same run.
//!
//! Run: `cargo bench -p edge-runner --bench verify`

// A benchmark is a test harness: failing loudly is the point.
#![allow(clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use edge_runner::plugins::{CompileCache, PluginHost, PluginLimits, Verifiers};
use edge_runner::sign::SigningKey;
use hmac::{Hmac, KeyInit as _, Mac as _};
use p256::ecdsa::signature::Verifier as _;
use std::collections::BTreeMap;
use std::hint::black_box;

fn members(jwk: &serde_json::Value) -> Vec<(String, String)> {
    jwk.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect()
}

fn bench(c: &mut Criterion) {
    let host = PluginHost::long_lived(PluginLimits::default(), CompileCache::disabled())
        .unwrap_or_else(|e| panic!("{e}"));
    let verifiers = Verifiers::load(host, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let input = b"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJtYW5pZmVzdF92ZXJzaW9uIjoiMSJ9";

    let hs = SigningKey::hs256("k1", &[7u8; 32]);
    let hs_sig = hs.sign_bytes(input);
    let hs_members = members(&hs.public_jwk());
    let hs_plugin = verifiers.get("HS256").unwrap_or_else(|| panic!("HS256"));

    let mut scalar = [3u8; 32];
    scalar[0] = 0x10;
    let es = SigningKey::es256("k2", &scalar).unwrap_or_else(|| panic!("scalar"));
    let es_sig = es.sign_bytes(input);
    let es_members = members(&es.public_jwk());
    let es_plugin = verifiers.get("ES256").unwrap_or_else(|| panic!("ES256"));
    let es_native_key = p256::ecdsa::SigningKey::from_slice(&scalar)
        .unwrap_or_else(|e| panic!("{e}"))
        .verifying_key()
        .to_owned();
    let es_native_sig =
        p256::ecdsa::Signature::from_slice(&es_sig).unwrap_or_else(|e| panic!("{e}"));

    let mut g = c.benchmark_group("HS256");
    g.bench_function("plugin (fresh instance)", |b| {
        b.iter(|| {
            verifiers
                .verify(
                    hs_plugin,
                    "HS256",
                    &hs_members,
                    black_box(input),
                    black_box(&hs_sig),
                )
                .unwrap_or_else(|e| panic!("{e:?}"))
        })
    });
    g.bench_function("native hmac", |b| {
        b.iter(|| {
            let mut mac =
                <Hmac<sha2::Sha256>>::new_from_slice(&[7u8; 32]).unwrap_or_else(|e| panic!("{e}"));
            mac.update(black_box(input));
            mac.verify_slice(black_box(&hs_sig))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("ES256");
    g.bench_function("plugin (fresh instance)", |b| {
        b.iter(|| {
            verifiers
                .verify(
                    es_plugin,
                    "ES256",
                    &es_members,
                    black_box(input),
                    black_box(&es_sig),
                )
                .unwrap_or_else(|e| panic!("{e:?}"))
        })
    });
    g.bench_function("native p256", |b| {
        b.iter(|| {
            es_native_key
                .verify(black_box(input), black_box(&es_native_sig))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
