//! The verifier vectors of `plugin check`, all inside the binary: RFC 7515 appendix A and
//! RFC 8037 appendix A, Project Wycheproof's P-256 P1363, HMAC-SHA256 and Ed25519 sets
//! (compacted copies under `host/conformance/`, Apache-2.0), and attack classes derived
//! from the RFC vectors. This module only builds vectors; `verifier` runs them.

use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};

/// What a conforming plugin must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// `validate-key` and `verify` both succeed.
    Accept,
    /// `verify` fails (any error); the key may be valid.
    Reject,
    /// `validate-key` refuses the key (and so does `verify`).
    RefuseKey,
}

/// One vector for one algorithm.
#[derive(Debug, Clone)]
pub(crate) struct Vector {
    /// A name a plugin author can look up: `wycheproof tcId 42 (comment)`, `s = 0`, ...
    pub name: String,
    pub alg: String,
    pub key: Vec<(String, String)>,
    pub input: Vec<u8>,
    pub signature: Vec<u8>,
    pub expect: Expect,
}

/// A named group of vectors, one row of the report.
#[derive(Debug)]
pub(crate) struct Suite {
    pub check: String,
    pub vectors: Vec<Vector>,
}

/// The key type and curve an algorithm needs, as `info` must declare them.
pub(crate) fn key_type(alg: &str) -> Option<(&'static str, Option<&'static str>)> {
    match alg {
        "HS256" => Some(("oct", None)),
        "ES256" => Some(("EC", Some("P-256"))),
        "EdDSA" | "Ed25519" => Some(("OKP", Some("Ed25519"))),
        _ => None,
    }
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_default()
}

fn enc(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| text.get(2 * i..2 * i + 2))
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

fn members(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// RFC 7515 appendix A.1 (HS256).
const A1_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const A1_INPUT: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const A1_SIG: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// RFC 7515 appendix A.3 (ES256).
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const A3_INPUT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const A3_SIG: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/// RFC 8037 appendix A.1 (key) and A.4 (signature).
const A4_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const A4_INPUT: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
const A4_SIG: &str =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

/// The order n of P-256, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// The order L of the Ed25519 group, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// An oversized signature (four times the default task cap): refused, quickly.
const OVERSIZED: usize = 1024 * 1024;

struct Base {
    alg: &'static str,
    key: Vec<(String, String)>,
    input: Vec<u8>,
    signature: Vec<u8>,
    rfc: &'static str,
}

fn base(alg: &str) -> Option<Base> {
    Some(match alg {
        "HS256" => Base {
            alg: "HS256",
            key: members(&[("kty", "oct"), ("k", A1_K)]),
            input: A1_INPUT.as_bytes().to_vec(),
            signature: b64(A1_SIG),
            rfc: "RFC 7515 A.1",
        },
        "ES256" => Base {
            alg: "ES256",
            key: members(&[("kty", "EC"), ("crv", "P-256"), ("x", A3_X), ("y", A3_Y)]),
            input: A3_INPUT.as_bytes().to_vec(),
            signature: b64(A3_SIG),
            rfc: "RFC 7515 A.3",
        },
        "EdDSA" | "Ed25519" => Base {
            alg: if alg == "EdDSA" { "EdDSA" } else { "Ed25519" },
            key: members(&[("kty", "OKP"), ("crv", "Ed25519"), ("x", A4_X)]),
            input: A4_INPUT.as_bytes().to_vec(),
            signature: b64(A4_SIG),
            rfc: "RFC 8037 A.4",
        },
        _ => return None,
    })
}

impl Base {
    fn vector(&self, name: &str, expect: Expect) -> Vector {
        Vector {
            name: name.to_owned(),
            alg: self.alg.to_owned(),
            key: self.key.clone(),
            input: self.input.clone(),
            signature: self.signature.clone(),
            expect,
        }
    }

    fn with_signature(&self, name: &str, signature: Vec<u8>) -> Vector {
        Vector {
            signature,
            ..self.vector(name, Expect::Reject)
        }
    }

    fn with_key(&self, name: &str, key: &[(&str, &str)]) -> Vector {
        Vector {
            key: members(key),
            ..self.vector(name, Expect::RefuseKey)
        }
    }
}

fn es256_sig(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
    let mut sig = r.to_vec();
    sig.extend_from_slice(s);
    sig
}

/// A minimal DER `SEQUENCE { INTEGER r, INTEGER s }` of a raw ECDSA signature.
fn der(raw: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let mut v = v.to_vec();
        if v.first().is_some_and(|b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let body: Vec<u8> = [int(&raw[..32]), int(&raw[32..])].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

/// The RFC vector of `alg`, and the same with one bit flipped and with another input.
pub(crate) fn rfc(alg: &str) -> Option<Suite> {
    let b = base(alg)?;
    let mut flipped = b.signature.clone();
    if let Some(x) = flipped.get_mut(5) {
        *x ^= 1;
    }
    Some(Suite {
        check: format!("{alg}: {} vector", b.rfc),
        vectors: vec![
            b.vector(b.rfc, Expect::Accept),
            b.with_signature(
                &format!("{} with one signature bit flipped", b.rfc),
                flipped,
            ),
            Vector {
                input: b"eyJhbGciOiJub25lIn0.e30".to_vec(),
                ..b.vector(
                    &format!("{} signature over another input", b.rfc),
                    Expect::Reject,
                )
            },
        ],
    })
}

/// The attack classes for `alg`, each a row.
pub(crate) fn attacks(alg: &str) -> Vec<Suite> {
    let Some(b) = base(alg) else {
        return Vec::new();
    };
    let mut suites = Vec::new();
    // Inputs every algorithm must refuse.
    let mut common = vec![
        b.with_signature("empty signature", Vec::new()),
        b.with_signature("signature of 1 MiB", vec![0xa5; OVERSIZED]),
        Vector {
            input: Vec::new(),
            ..b.vector("empty signing input", Expect::Reject)
        },
        Vector {
            alg: "XX999".into(),
            ..b.vector("an algorithm the plugin does not declare", Expect::Reject)
        },
        Vector {
            alg: "none".into(),
            ..b.vector("alg \"none\"", Expect::Reject)
        },
    ];
    let mut truncated = b.signature.clone();
    truncated.pop();
    common.push(b.with_signature("signature one byte short", truncated));
    let mut long = b.signature.clone();
    long.push(0);
    common.push(b.with_signature("signature with a trailing byte", long));
    suites.push(Suite {
        check: format!("{alg}: malformed and empty inputs"),
        vectors: common,
    });
    let key_suite = |check: &str, vectors: Vec<Vector>| Suite {
        check: format!("{alg}: {check}"),
        vectors,
    };
    match b.alg {
        "HS256" => {
            // A key shorter than the hash output (RFC 7518 section 3.2), with a MAC that
            // is right for it: the key itself must be refused.
            let short = [0x4b_u8; 16];
            let tag = hmac::Hmac::<sha2::Sha256>::new_from_slice(&short)
                .map(|mut m| {
                    m.update(&b.input);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default();
            let short_k = enc(&short);
            suites.push(key_suite(
                "wrong key type and short keys",
                vec![
                    Vector {
                        signature: tag,
                        ..b.with_key("HMAC key of 128 bits", &[("kty", "oct"), ("k", &short_k)])
                    },
                    b.with_key("empty HMAC key", &[("kty", "oct"), ("k", "")]),
                    b.with_key("key without \"k\"", &[("kty", "oct")]),
                    b.with_key(
                        "EC key for HS256",
                        &[("kty", "EC"), ("crv", "P-256"), ("x", A3_X), ("y", A3_Y)],
                    ),
                    b.with_key("\"k\" not base64url", &[("kty", "oct"), ("k", "a+b/c==")]),
                ],
            ));
            suites.push(key_suite(
                "truncated MACs",
                vec![
                    b.with_signature("MAC truncated to 128 bits", b.signature[..16].to_vec()),
                    b.with_signature("MAC of all zeros", vec![0; 32]),
                ],
            ));
        }
        "ES256" => {
            let raw = &b.signature;
            let mut r = [0u8; 32];
            let mut s = [0u8; 32];
            r.copy_from_slice(&raw[..32]);
            s.copy_from_slice(&raw[32..64]);
            let zero = [0u8; 32];
            let mut one = [0u8; 32];
            one[31] = 1;
            suites.push(key_suite(
                "r or s = 0 or n",
                vec![
                    b.with_signature("r = 0", es256_sig(&zero, &s)),
                    b.with_signature("s = 0", es256_sig(&r, &zero)),
                    b.with_signature("r = s = 0", es256_sig(&zero, &zero)),
                    b.with_signature("r = n", es256_sig(&P256_N, &s)),
                    b.with_signature("s = n", es256_sig(&r, &P256_N)),
                    b.with_signature("r = 1, s = 1", es256_sig(&one, &one)),
                    b.with_signature("all bits set", vec![0xff; 64]),
                    b.with_signature("DER-encoded signature", der(raw)),
                ],
            ));
            let mut y = b64(A3_Y);
            if let Some(last) = y.last_mut() {
                *last ^= 1;
            }
            let off_curve = enc(&y);
            let zero32 = enc(&[0u8; 32]);
            let short = enc(&[1u8; 31]);
            suites.push(key_suite(
                "wrong key type or curve, invalid points",
                vec![
                    b.with_key("oct key for ES256", &[("kty", "oct"), ("k", A1_K)]),
                    b.with_key(
                        "curve P-384 for ES256",
                        &[("kty", "EC"), ("crv", "P-384"), ("x", A3_X), ("y", A3_Y)],
                    ),
                    b.with_key(
                        "OKP key for ES256",
                        &[("kty", "OKP"), ("crv", "Ed25519"), ("x", A4_X)],
                    ),
                    b.with_key(
                        "point not on the curve",
                        &[
                            ("kty", "EC"),
                            ("crv", "P-256"),
                            ("x", A3_X),
                            ("y", &off_curve),
                        ],
                    ),
                    b.with_key(
                        "point (0, 0)",
                        &[
                            ("kty", "EC"),
                            ("crv", "P-256"),
                            ("x", &zero32),
                            ("y", &zero32),
                        ],
                    ),
                    b.with_key(
                        "31-byte coordinate",
                        &[("kty", "EC"), ("crv", "P-256"), ("x", &short), ("y", A3_Y)],
                    ),
                    b.with_key(
                        "key without \"y\"",
                        &[("kty", "EC"), ("crv", "P-256"), ("x", A3_X)],
                    ),
                ],
            ));
        }
        _ => {
            // Ed25519: S + L (malleated), a small-order key, wrong types and curves.
            let mut malleated = b.signature.clone();
            let mut carry = 0u16;
            for (i, l) in ED25519_L.iter().enumerate() {
                if let Some(byte) = malleated.get_mut(32 + i) {
                    let v = u16::from(*byte) + u16::from(*l) + carry;
                    *byte = (v & 0xff) as u8;
                    carry = v >> 8;
                }
            }
            let mut identity = [0u8; 32];
            identity[0] = 1;
            let identity = enc(&identity);
            let mut r_identity = b.signature.clone();
            r_identity[..32].copy_from_slice(&{
                let mut p = [0u8; 32];
                p[0] = 1;
                p
            });
            suites.push(key_suite(
                "malleated and small-order signatures",
                vec![
                    b.with_signature("S + L (S not reduced)", malleated),
                    b.with_signature("R = identity", r_identity),
                    b.with_signature("all bits set", vec![0xff; 64]),
                ],
            ));
            suites.push(key_suite(
                "wrong key type or curve, invalid keys",
                vec![
                    b.with_key(
                        "EC key for EdDSA",
                        &[("kty", "EC"), ("crv", "P-256"), ("x", A3_X), ("y", A3_Y)],
                    ),
                    b.with_key(
                        "curve X25519",
                        &[("kty", "OKP"), ("crv", "X25519"), ("x", A4_X)],
                    ),
                    b.with_key(
                        "curve Ed448",
                        &[("kty", "OKP"), ("crv", "Ed448"), ("x", A4_X)],
                    ),
                    b.with_key(
                        "small-order public key (identity)",
                        &[("kty", "OKP"), ("crv", "Ed25519"), ("x", &identity)],
                    ),
                    b.with_key(
                        "31-byte public key",
                        &[("kty", "OKP"), ("crv", "Ed25519"), ("x", &enc(&[9u8; 31]))],
                    ),
                    b.with_key("key without \"x\"", &[("kty", "OKP"), ("crv", "Ed25519")]),
                ],
            ));
        }
    }
    suites
}

/// The largest-input vector of `alg`: a valid key, the RFC signature, and a signing input
/// of `size` bytes (the largest task the configuration admits).
pub(crate) fn largest(alg: &str, size: usize) -> Option<Vector> {
    let b = base(alg)?;
    Some(Vector {
        input: vec![b'a'; size],
        ..b.vector(&format!("{size}-byte signing input"), Expect::Reject)
    })
}

#[derive(serde::Deserialize)]
struct WycheproofFile {
    source: String,
    vectors: Vec<WycheproofVector>,
}

#[derive(serde::Deserialize)]
struct WycheproofVector {
    id: u32,
    comment: String,
    /// A JWK (object) for signatures, the hex key for HMAC.
    key: serde_json::Value,
    msg: String,
    sig: String,
    accept: bool,
}

const WYCHEPROOF_ES256: &str = include_str!("../../conformance/wycheproof-es256.json");
const WYCHEPROOF_HS256: &str = include_str!("../../conformance/wycheproof-hs256.json");
const WYCHEPROOF_ED25519: &str = include_str!("../../conformance/wycheproof-ed25519.json");

/// The Wycheproof set for `alg`, as JWS vectors: the message is the signing input, the
/// signature is raw (P1363 `r || s` for ECDSA, the full tag for HMAC).
pub(crate) fn wycheproof(alg: &str) -> Option<Suite> {
    let text = match alg {
        "ES256" => WYCHEPROOF_ES256,
        "HS256" => WYCHEPROOF_HS256,
        "EdDSA" | "Ed25519" => WYCHEPROOF_ED25519,
        _ => return None,
    };
    let file: WycheproofFile = serde_json::from_str(text).ok()?;
    let vectors = file
        .vectors
        .into_iter()
        .map(|v| {
            let key = match &v.key {
                serde_json::Value::String(k) => members(&[("kty", "oct"), ("k", &enc(&hex(k)))]),
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter_map(|(n, v)| v.as_str().map(|s| (n.clone(), s.to_owned())))
                    .collect(),
                _ => Vec::new(),
            };
            let comment = if v.comment.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.comment)
            };
            Vector {
                name: format!("wycheproof tcId {}{comment}", v.id),
                alg: alg.to_owned(),
                key,
                input: hex(&v.msg),
                signature: hex(&v.sig),
                expect: if v.accept {
                    Expect::Accept
                } else {
                    Expect::Reject
                },
            }
        })
        .collect::<Vec<_>>();
    Some(Suite {
        check: format!("{alg}: {} ({} vectors)", file.source, vectors.len()),
        vectors,
    })
}
