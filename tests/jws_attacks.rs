//! One test per known JWS attack class, through the full signature gate
//! (`jws::parse` + `SignatureVerifier::verify`). Each asserts the stable reason code, so
//! removing the check that stops the attack makes the test fail.

use crate::support::{es_key, hs_key, signature_verifier};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use edge_runner::jws::{self, JwsLimits};
use edge_runner::reason::Reason;
use edge_runner::sign::SigningKey;
use edge_runner::verify::SignatureVerifier;
use serde_json::{Value, json};
use std::time::Instant;

const PAYLOAD: &[u8] = br#"{"manifest_version":"1"}"#;

fn gate() -> SignatureVerifier {
    signature_verifier(&[hs_key("hs").public_jwk(), es_key("es").public_jwk()])
}

fn outcome(v: &SignatureVerifier, compact: &str) -> Result<(), Reason> {
    let parsed = jws::parse(compact.as_bytes(), &JwsLimits::default()).map_err(|r| r.reason)?;
    v.verify(parsed).map(|_| ()).map_err(|r| r.reason)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with an arbitrary header, HMAC-signed with `key` bytes (attacker's choice).
fn hmac_token(header: &Value, key: &[u8]) -> String {
    SigningKey::hs256("attacker", key).sign_with_header(header, PAYLOAD)
}

#[test]
fn legitimate_tokens_verify() {
    let v = gate();
    assert_eq!(outcome(&v, &hs_key("hs").sign_compact(PAYLOAD)), Ok(()));
    assert_eq!(outcome(&v, &es_key("es").sign_compact(PAYLOAD)), Ok(()));
}

#[test]
fn alg_none_in_every_casing_is_refused() {
    let v = gate();
    for alg in ["none", "None", "NONE", "nOnE", "NoNe"] {
        let header = b64(json!({"alg": alg, "kid": "hs"}).to_string().as_bytes());
        // Unsigned (empty signature) and with a bogus signature.
        for sig in ["", "AAAA"] {
            let t = format!("{header}.{}.{sig}", b64(PAYLOAD));
            let r = outcome(&v, &t);
            assert!(
                matches!(r, Err(Reason::AlgForbidden) | Err(Reason::JwsMalformed)),
                "{alg} {sig:?}: {r:?}"
            );
        }
        let t = format!("{header}.{}.AAAA", b64(PAYLOAD));
        assert_eq!(outcome(&v, &t), Err(Reason::AlgForbidden), "{alg}");
    }
}

/// The classic key-confusion attack: the token claims HS256 and names the ES256 key, and
/// is HMAC'd with the public key bytes in some encoding. The key decides the algorithm,
/// so it never reaches an HMAC.
#[test]
fn hs256_keyed_with_the_es256_public_key_is_refused() {
    let v = gate();
    let es = es_key("es");
    let jwk = es.public_jwk();
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    let mut compressed = vec![0x02 | (y[31] & 1)];
    compressed.extend_from_slice(&x);
    let spki_b64 = STANDARD.encode(&sec1);
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{spki_b64}\n-----END PUBLIC KEY-----\n");
    let encodings: Vec<Vec<u8>> = vec![
        sec1.clone(),
        compressed,
        [x.clone(), y.clone()].concat(),
        jwk.to_string().into_bytes(),
        json!({"keys": [jwk]}).to_string().into_bytes(),
        pem.into_bytes(),
        jwk["x"].as_str().unwrap().as_bytes().to_vec(),
    ];
    for key in encodings {
        let t = hmac_token(&json!({"alg": "HS256", "kid": "es"}), &key);
        assert_eq!(outcome(&v, &t), Err(Reason::AlgMismatch));
    }
}

#[test]
fn alg_and_key_type_mismatch_both_ways() {
    let v = gate();
    // ES256 header naming the HMAC key, signed by the real ES256 key.
    let t = es_key("es").sign_with_header(&json!({"alg": "ES256", "kid": "hs"}), PAYLOAD);
    assert_eq!(outcome(&v, &t), Err(Reason::AlgMismatch));
    // HS256 header naming the EC key, HMAC'd with the real HMAC secret.
    let t = hs_key("hs").sign_with_header(&json!({"alg": "HS256", "kid": "es"}), PAYLOAD);
    assert_eq!(outcome(&v, &t), Err(Reason::AlgMismatch));
    // Other algorithm names that some libraries map to HMAC or RSA.
    for alg in [
        "HS384", "HS512", "RS256", "PS256", "ES384", "EdDSA", "hs256", "es256",
    ] {
        let t = hs_key("hs").sign_with_header(&json!({"alg": alg, "kid": "hs"}), PAYLOAD);
        assert_eq!(outcome(&v, &t), Err(Reason::AlgMismatch), "{alg}");
    }
}

#[test]
fn keys_whose_type_does_not_fit_their_alg_refuse_to_load() {
    let mut wrong = hs_key("x").public_jwk();
    wrong["alg"] = json!("ES256");
    let mut wrong2 = es_key("y").public_jwk();
    wrong2["alg"] = json!("HS256");
    for jwk in [wrong, wrong2] {
        let ks = crate::support::keyset(&[jwk]);
        let v = edge_runner::plugins::Verifiers::load(
            crate::support::host(Default::default()),
            &Default::default(),
        )
        .unwrap();
        let err = SignatureVerifier::new(ks, v).unwrap_err().to_string();
        assert!(err.contains("key type") || err.contains("type"), "{err}");
    }
}

#[test]
fn unknown_and_hostile_kids_are_refused_without_echoing_control_characters() {
    let v = gate();
    let long = "k".repeat(2_000);
    for kid in [
        "nope",
        "HS",
        "hs ",
        " hs",
        "",
        "../../../../etc/passwd",
        "/etc/edge-runner/keys.json",
        "file:///etc/shadow",
        "hs\u{0}",
        "hs\nerror[ok]: fake log line",
        "\u{1b}[31mred",
        "ｈｓ",
        long.as_str(),
        "' OR 1=1 --",
    ] {
        let t = hs_key(kid).sign_compact(PAYLOAD);
        let parsed = jws::parse(t.as_bytes(), &JwsLimits::default()).unwrap();
        let refusal = v.verify(parsed).unwrap_err();
        assert_eq!(refusal.reason, Reason::KidUnknown, "{kid:?}");
        assert!(!refusal.message.contains('\n'), "{:?}", refusal.message);
        assert!(!refusal.message.contains('\u{1b}'), "{:?}", refusal.message);
        assert!(refusal.message.len() < 600, "message not bounded");
    }
    // A kid that is not a string at all.
    let t = hs_key("hs").sign_with_header(&json!({"alg": "HS256", "kid": 7}), PAYLOAD);
    assert_eq!(outcome(&v, &t), Err(Reason::HeaderInvalid));
    // No kid.
    let t = hs_key("hs").sign_with_header(&json!({"alg": "HS256"}), PAYLOAD);
    assert_eq!(outcome(&v, &t), Err(Reason::KidMissing));
}

#[test]
fn crit_unknown_empty_and_not_a_list_are_refused() {
    let v = gate();
    let k = hs_key("hs");
    for (header, reason) in [
        (
            json!({"alg":"HS256","kid":"hs","crit":["exp"],"exp":1}),
            Reason::CritUnsupported,
        ),
        (
            json!({"alg":"HS256","kid":"hs","crit":["b64"],"b64":true}),
            Reason::CritUnsupported,
        ),
        (
            json!({"alg":"HS256","kid":"hs","crit":[]}),
            Reason::HeaderInvalid,
        ),
        (
            json!({"alg":"HS256","kid":"hs","crit":"exp"}),
            Reason::HeaderInvalid,
        ),
        (
            json!({"alg":"HS256","kid":"hs","crit":[1]}),
            Reason::HeaderInvalid,
        ),
        (
            json!({"alg":"HS256","kid":"hs","crit":{"exp":1}}),
            Reason::HeaderInvalid,
        ),
    ] {
        assert_eq!(
            outcome(&v, &k.sign_with_header(&header, PAYLOAD)),
            Err(reason),
            "{header}"
        );
    }
}

#[test]
fn b64_false_is_refused() {
    let v = gate();
    let k = hs_key("hs");
    // Signed over the unencoded payload, as RFC 7797 would.
    let header = json!({"alg":"HS256","kid":"hs","b64":false,"crit":["b64"]});
    let h = b64(header.to_string().as_bytes());
    let input = [h.as_bytes(), b".", PAYLOAD].concat();
    let sig = k.sign_bytes(&input);
    let t = format!("{h}.{}.{}", b64(PAYLOAD), b64(&sig));
    assert!(outcome(&v, &t).is_err());
    let header = json!({"alg":"HS256","kid":"hs","b64":false});
    assert_eq!(
        outcome(&v, &k.sign_with_header(&header, PAYLOAD)),
        Err(Reason::B64Unsupported)
    );
}

#[test]
fn duplicate_header_members_are_refused() {
    let v = gate();
    let k = hs_key("hs");
    for raw in [
        r#"{"alg":"HS256","kid":"hs","alg":"none"}"#,
        r#"{"alg":"HS256","kid":"es","kid":"hs"}"#,
        r#"{"alg":"HS256","kid":"hs","\u0061lg":"HS256"}"#,
    ] {
        let h = b64(raw.as_bytes());
        let input = format!("{h}.{}", b64(PAYLOAD));
        let t = format!("{input}.{}", b64(&k.sign_bytes(input.as_bytes())));
        assert_eq!(outcome(&v, &t), Err(Reason::HeaderInvalid), "{raw}");
    }
}

#[test]
fn non_canonical_encodings_are_refused() {
    let v = gate();
    let good = es_key("es").sign_compact(PAYLOAD);
    assert_eq!(outcome(&v, &good), Ok(()));
    let (input, sig) = good.rsplit_once('.').unwrap();
    let sig_bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    // 64 bytes -> 86 characters carrying 516 bits: the last character has 4 unused bits.
    let last = sig.as_bytes()[sig.len() - 1];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.iter().position(|c| *c == last).unwrap();
    let sloppy = alphabet[idx ^ 1] as char; // sets a bit the decoder must ignore
    let mut nc = sig[..sig.len() - 1].to_string();
    nc.push(sloppy);
    let variants = [
        format!("{input}.{sig}=="),
        format!("{input}.{}", STANDARD.encode(&sig_bytes)),
        format!("{input}.{}", sig.replace('-', "+").replace('_', "/")),
        format!("{input}.{nc}"),
        format!("{input}.{} {}", &sig[..40], &sig[40..]),
        format!("{input}.{}\n{}", &sig[..40], &sig[40..]),
        format!(
            "{} .{input_tail}",
            input.split('.').next().unwrap(),
            input_tail = &good[input.find('.').unwrap() + 1..]
        ),
        good.replacen('.', "..", 1),
    ];
    for t in variants {
        if t == good {
            continue;
        }
        let r = outcome(&v, &t);
        assert_eq!(r, Err(Reason::JwsMalformed), "{t}");
    }
    // Surrounding whitespace (a file's trailing newline) is fine.
    assert_eq!(outcome(&v, &format!("\n {good}\r\n")), Ok(()));
}

#[test]
fn wrong_segment_counts_are_refused() {
    let v = gate();
    let good = hs_key("hs").sign_compact(PAYLOAD);
    let parts: Vec<&str> = good.split('.').collect();
    for t in [
        parts[0].to_string(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!("{good}.{}.{}", parts[1], parts[2]),
        String::new(),
        ".".into(),
        "..".into(),
    ] {
        assert_eq!(outcome(&v, &t), Err(Reason::JwsMalformed), "{t}");
    }
}

#[test]
fn oversized_and_deeply_nested_inputs_are_refused_fast() {
    let v = gate();
    let k = hs_key("hs");
    let started = Instant::now();
    // 10 MiB of base64: refused on size before decoding.
    let huge = "A".repeat(10 * 1024 * 1024);
    assert_eq!(
        outcome(&v, &format!("{huge}.{huge}.{huge}")),
        Err(Reason::JwsTooLarge)
    );
    // A header that is small but nested 1000 deep: refused by the depth cap.
    let nested = format!(
        r#"{{"alg":"HS256","kid":"hs","x":{}1{}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let h = b64(nested.as_bytes());
    let input = format!("{h}.{}", b64(PAYLOAD));
    let t = format!("{input}.{}", b64(&k.sign_bytes(input.as_bytes())));
    assert_eq!(outcome(&v, &t), Err(Reason::HeaderInvalid));
    // A header beyond the header cap.
    let big_header = json!({"alg":"HS256","kid":"hs","pad":"x".repeat(8000)});
    assert_eq!(
        outcome(&v, &k.sign_with_header(&big_header, PAYLOAD)),
        Err(Reason::JwsTooLarge)
    );
    // Payload nesting is not interpreted here, but must not crash anything either.
    let deep_payload = "[".repeat(200_000);
    let t = k.sign_compact(deep_payload.as_bytes());
    assert!(outcome(&v, &t).is_ok() || outcome(&v, &t).is_err());
    // Generous bound: this is a crash/hang guard, not a benchmark.
    assert!(started.elapsed().as_secs() < 30);
}

fn der_encode(sig: &[u8]) -> Vec<u8> {
    fn int(bytes: &[u8]) -> Vec<u8> {
        let mut b: Vec<u8> = bytes.iter().copied().skip_while(|x| *x == 0).collect();
        if b.first().is_some_and(|x| x & 0x80 != 0) {
            b.insert(0, 0);
        }
        let mut out = vec![0x02, b.len() as u8];
        out.extend(b);
        out
    }
    let body = [int(&sig[..32]), int(&sig[32..])].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn der_and_wrong_length_signatures_are_refused() {
    let v = gate();
    let k = es_key("es");
    let good = k.sign_compact(PAYLOAD);
    let (input, sig) = good.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let der = der_encode(&raw);
    let t = format!("{input}.{}", b64(&der));
    assert_eq!(outcome(&v, &t), Err(Reason::SignatureMalformed));
    for len in [1, 32, 63, 65, 96, 128] {
        let mut s = raw.clone();
        s.resize(len, 1);
        let t = format!("{input}.{}", b64(&s));
        assert_eq!(
            outcome(&v, &t),
            Err(Reason::SignatureMalformed),
            "len {len}"
        );
    }
    // HS256 with a truncated or extended tag.
    let hs = hs_key("hs").sign_compact(PAYLOAD);
    let (input, tag) = hs.rsplit_once('.').unwrap();
    let tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
    for t in [&tag[..16], &tag[..31], &[tag.as_slice(), &[0]].concat()[..]] {
        let t = format!("{input}.{}", b64(t));
        assert_eq!(outcome(&v, &t), Err(Reason::SignatureMalformed));
    }
}

#[test]
fn r_or_s_equal_to_zero_or_n_are_refused() {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let v = gate();
    let good = es_key("es").sign_compact(PAYLOAD);
    let (input, sig) = good.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let (r, s) = raw.split_at(32);
    for (r, s) in [
        (&[0u8; 32][..], s),
        (r, &[0u8; 32][..]),
        (&N[..], s),
        (r, &N[..]),
        (&[0xff; 32][..], s),
    ] {
        let t = format!("{input}.{}", b64(&[r, s].concat()));
        assert_eq!(outcome(&v, &t), Err(Reason::SignatureMalformed));
    }
}

#[test]
fn short_hmac_keys_and_invalid_ec_points_refuse_to_load() {
    let short = json!({"kty":"oct","kid":"s","alg":"HS256","k": b64(&[7u8; 31])});
    let mut off_curve = es_key("e").public_jwk();
    let mut y = URL_SAFE_NO_PAD
        .decode(off_curve["y"].as_str().unwrap())
        .unwrap();
    y[31] ^= 1;
    off_curve["y"] = json!(b64(&y));
    let mut zero = es_key("z").public_jwk();
    zero["x"] = json!(b64(&[0u8; 32]));
    zero["y"] = json!(b64(&[0u8; 32]));
    let mut wrong_curve = es_key("c").public_jwk();
    wrong_curve["crv"] = json!("P-384");
    let mut short_coord = es_key("l").public_jwk();
    short_coord["x"] = json!(b64(&[1u8; 31]));
    let mut padded = hs_key("p").public_jwk();
    padded["k"] = json!(format!("{}=", padded["k"].as_str().unwrap()));
    for (jwk, needle) in [
        (short, "248 bits"),
        (off_curve, "not a valid P-256"),
        (zero, "not a valid P-256"),
        (wrong_curve, "P-256"),
        (short_coord, "32 bytes"),
        (padded, "base64url"),
    ] {
        let v = edge_runner::plugins::Verifiers::load(
            crate::support::host(Default::default()),
            &Default::default(),
        )
        .unwrap();
        let err = SignatureVerifier::new(crate::support::keyset(std::slice::from_ref(&jwk)), v)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{jwk}: {err}");
        assert!(
            err.contains(jwk["kid"].as_str().unwrap()),
            "names the key: {err}"
        );
    }
}

#[test]
fn embedded_attacker_keys_are_refused() {
    let v = gate();
    let attacker = SigningKey::generate(edge_runner::sign::SignAlg::Es256, "es").unwrap();
    let attacker_jwk = attacker.public_jwk();
    for member in ["jwk", "jku", "x5u", "x5c"] {
        let value = match member {
            "jwk" => attacker_jwk.clone(),
            "x5c" => json!(["MIIBszCCAVmgAwIBAgIU"]),
            _ => json!("https://attacker.example/keys.json"),
        };
        let mut header = json!({"alg": "ES256", "kid": "es"});
        header[member] = value;
        let t = attacker.sign_with_header(&header, PAYLOAD);
        assert_eq!(outcome(&v, &t), Err(Reason::HeaderKeyForbidden), "{member}");
    }
    // Without the embedded key, the attacker's signature simply does not verify.
    let t = attacker.sign_compact(PAYLOAD);
    assert_eq!(outcome(&v, &t), Err(Reason::SignatureInvalid));
}

#[test]
fn a_correct_signature_from_a_rotated_key_verifies() {
    let v = signature_verifier(&[
        hs_key("old").public_jwk(),
        es_key("new").public_jwk(),
        SigningKey::hs256("other", &[9; 48]).public_jwk(),
    ]);
    assert_eq!(outcome(&v, &hs_key("old").sign_compact(PAYLOAD)), Ok(()));
    assert_eq!(outcome(&v, &es_key("new").sign_compact(PAYLOAD)), Ok(()));
    // Signed by "old"'s secret but naming "other": refused.
    let t = hs_key("old").sign_with_header(&json!({"alg":"HS256","kid":"other"}), PAYLOAD);
    assert_eq!(outcome(&v, &t), Err(Reason::SignatureInvalid));
}
