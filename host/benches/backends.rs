//! Issue 11: every embedded verifier backend against the crate it wraps, called natively,
//! in the same run: ES256 through es256-p256 and es256-libcrux, and natively with p256 and
//! libcrux-ecdsa; HS256 through its plugin and natively; EdDSA through the eddsa plugin and
//! natively with ed25519-dalek. Plugin calls include a fresh instance each time, as the
//! runner makes them (pooling allocator, as in `serve`).
//!
//! Run: `cargo bench -p edge-runner --bench backends`

// A benchmark is a test harness: failing loudly is the point.
#![allow(clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use edge_runner::plugins::{CompileCache, PluginHost, PluginLimits, VerifierChoice, Verifiers};
use edge_runner::sign::{SignAlg, SigningKey};
use hmac::{Hmac, KeyInit as _, Mac as _};
use std::collections::BTreeMap;
use std::hint::black_box;

fn members(jwk: &serde_json::Value) -> Vec<(String, String)> {
    jwk.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect()
}

fn verifiers(es256: &str) -> Verifiers {
    let host = PluginHost::long_lived(PluginLimits::default(), CompileCache::disabled())
        .unwrap_or_else(|e| panic!("{e}"));
    let choices = BTreeMap::from([(
        "ES256".to_owned(),
        VerifierChoice::Builtin(es256.to_owned()),
    )]);
    Verifiers::load(host, &choices).unwrap_or_else(|e| panic!("{e}"))
}

/// Times `alg` through the plugin `v` serves it with.
fn plugin_call(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    v: &Verifiers,
    alg: &str,
    key: &[(String, String)],
    input: &[u8],
    sig: &[u8],
) {
    let plugin = v.get(alg).unwrap_or_else(|| panic!("{alg}"));
    v.verify(plugin, alg, key, input, sig)
        .unwrap_or_else(|e| panic!("{label}: {e:?}"));
    g.bench_function(label, |b| {
        b.iter(|| {
            v.verify(plugin, alg, key, black_box(input), black_box(sig))
                .unwrap_or_else(|e| panic!("{e:?}"))
        })
    });
}

fn bench(c: &mut Criterion) {
    let input: &[u8] = b"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJtYW5pZmVzdF92ZXJzaW9uIjoiMSJ9";
    let p256_backend = verifiers("es256-p256");
    let libcrux_backend = verifiers("es256-libcrux");

    // ES256.
    let mut scalar = [3u8; 32];
    scalar[0] = 0x10;
    let es = SigningKey::es256("k2", &scalar).unwrap_or_else(|| panic!("scalar"));
    let es_sig = es.sign_bytes(input);
    let es_key = members(&es.public_jwk());
    let native_p256 = *p256::ecdsa::SigningKey::from_slice(&scalar)
        .unwrap_or_else(|e| panic!("{e}"))
        .verifying_key();
    let native_p256_sig =
        p256::ecdsa::Signature::from_slice(&es_sig).unwrap_or_else(|e| panic!("{e}"));
    let point = native_p256.to_sec1_point(false);
    let mut xy = [0u8; 64];
    xy.copy_from_slice(&point.as_bytes()[1..]);
    let libcrux_key = libcrux_ecdsa::p256::PublicKey(xy);
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&es_sig[..32]);
    s.copy_from_slice(&es_sig[32..]);
    let libcrux_sig = libcrux_ecdsa::p256::Signature::from_raw(r, s);
    let mut g = c.benchmark_group("ES256");
    plugin_call(
        &mut g,
        "plugin es256-p256",
        &p256_backend,
        "ES256",
        &es_key,
        input,
        &es_sig,
    );
    plugin_call(
        &mut g,
        "plugin es256-libcrux",
        &libcrux_backend,
        "ES256",
        &es_key,
        input,
        &es_sig,
    );
    g.bench_function("native p256", |b| {
        use p256::ecdsa::signature::Verifier as _;
        b.iter(|| {
            native_p256
                .verify(black_box(input), black_box(&native_p256_sig))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.bench_function("native libcrux-ecdsa", |b| {
        b.iter(|| {
            libcrux_ecdsa::p256::verify(
                libcrux_ecdsa::DigestAlgorithm::Sha256,
                black_box(input),
                black_box(&libcrux_sig),
                &libcrux_key,
            )
            .unwrap_or_else(|e| panic!("{e:?}"))
        })
    });
    g.finish();

    // HS256.
    let hs = SigningKey::hs256("k1", &[7u8; 32]);
    let hs_sig = hs.sign_bytes(input);
    let hs_key = members(&hs.public_jwk());
    let mut g = c.benchmark_group("HS256");
    plugin_call(
        &mut g,
        "plugin hs256",
        &p256_backend,
        "HS256",
        &hs_key,
        input,
        &hs_sig,
    );
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

    // EdDSA.
    let ed = SigningKey::generate(SignAlg::EdDsa, "k3").unwrap_or_else(|e| panic!("{e}"));
    let ed_sig = ed.sign_bytes(input);
    let ed_key = members(&ed.public_jwk());
    let x = ed.public_jwk()["x"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    let x: [u8; 32] = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(x)
            .ok()
            .and_then(|v| v.try_into().ok())
            .unwrap_or_else(|| panic!("x"))
    };
    let native_ed = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap_or_else(|e| panic!("{e}"));
    let native_ed_sig = ed25519_dalek::Signature::from_bytes(
        &ed_sig
            .clone()
            .try_into()
            .unwrap_or_else(|_| panic!("64 bytes")),
    );
    let mut g = c.benchmark_group("EdDSA");
    plugin_call(
        &mut g,
        "plugin eddsa",
        &p256_backend,
        "EdDSA",
        &ed_key,
        input,
        &ed_sig,
    );
    g.bench_function("native ed25519-dalek (verify_strict)", |b| {
        b.iter(|| {
            native_ed
                .verify_strict(black_box(input), black_box(&native_ed_sig))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
