//! The authorization statement: a compact JWS (header `typ: edge-runner-authorization+jws`)
//! signed by the control plane, whose payload lists the digests that may run. Decoding is
//! strict (duplicate members, unknown fields, bounds) and the checks that depend on the
//! reader (audience, expiry) are separate, so `apply` can read an installed statement's
//! sequence number even after its key was rotated out. No I/O, no cryptography here: the
//! signature was verified by [`crate::verify::SignatureVerifier`] before a
//! [`Statement`] is made from a [`VerifiedJws`].

use super::PolicyError;
use crate::digest::Digest;
use crate::text::printable;
use crate::verify::VerifiedJws;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The JWS `typ` of an authorization statement (RFC 8725 section 3.11); a task's
/// `edge-runner-task+jws` is refused here, and this one is refused as a task.
pub const AUTHORIZATION_TYP: &str = "edge-runner-authorization+jws";
/// The only statement version this runner reads.
pub const STATEMENT_VERSION: &str = "1";
/// Most tools in one statement.
pub const MAX_TOOLS: usize = 4096;
/// Most tenants per tool, and audience names per statement.
pub const MAX_NAMES: usize = 64;
/// Largest sequence number (JSON numbers stay exact up to 2^53).
pub const MAX_SEQUENCE: u64 = 1 << 53;

/// One authorized tool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuthorizedTool {
    /// A name for people (also the armory name of a pulled tool).
    pub name: String,
    /// The tenants whose tasks may run it; `None`: every tenant.
    pub tenants: Option<Vec<String>>,
    /// Where pull-on-demand fetches it: `REGISTRY/REPOSITORY` (no tag or digest).
    pub source: Option<String>,
}

/// A decoded statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement's sequence number; an installed statement is only replaced by a higher one.
    pub sequence: u64,
    pub(crate) issued_at: DateTime<Utc>,
    /// When the statement stops authorizing anything.
    pub expires_at: DateTime<Utc>,
    /// The runners and pools it is for (`aud`).
    pub audience: Vec<String>,
    /// The tools it authorizes, by digest.
    pub tools: BTreeMap<Digest, AuthorizedTool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    statement_version: String,
    aud: Aud,
    sequence: u64,
    issued_at: String,
    expires_at: String,
    tools: Vec<ToolPayload>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolPayload {
    digest: String,
    name: String,
    #[serde(default)]
    tenants: Option<Vec<String>>,
    #[serde(default)]
    source: Option<String>,
}

/// The header `typ` must be [`AUTHORIZATION_TYP`] (optionally `application/`-prefixed,
/// ASCII case ignored). Always required: without it a signed task could be offered here.
pub(crate) fn check_typ(typ: Option<&str>) -> Result<(), PolicyError> {
    let ok = typ.is_some_and(|t| {
        let t = t.strip_prefix("application/").unwrap_or(t);
        t.eq_ignore_ascii_case(AUTHORIZATION_TYP)
    });
    if ok {
        return Ok(());
    }
    Err(PolicyError::Typ {
        found: typ.map_or_else(|| "none".to_owned(), |t| format!("\"{}\"", printable(t))),
    })
}

/// A verified JWS to a statement: typ, then the payload.
pub(crate) fn from_verified(jws: &VerifiedJws) -> Result<Statement, PolicyError> {
    check_typ(jws.typ())?;
    decode_payload(jws.payload())
}

/// The payload alone, strictly.
pub(crate) fn decode_payload(payload: &[u8]) -> Result<Statement, PolicyError> {
    let invalid = |problem: String| PolicyError::Invalid { problem };
    let value = crate::json::parse_strict(payload, 6).map_err(|e| invalid(e.to_string()))?;
    let p: Payload = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    if p.statement_version != STATEMENT_VERSION {
        return Err(invalid(format!(
            "statement_version \"{}\" is not supported (this runner reads \"{STATEMENT_VERSION}\")",
            printable(&p.statement_version)
        )));
    }
    if p.sequence == 0 || p.sequence > MAX_SEQUENCE {
        return Err(invalid(format!(
            "sequence must be 1 to {MAX_SEQUENCE}, got {}",
            p.sequence
        )));
    }
    let issued_at = time("issued_at", &p.issued_at)?;
    let expires_at = time("expires_at", &p.expires_at)?;
    if expires_at <= issued_at {
        return Err(invalid("expires_at must be after issued_at".into()));
    }
    let audience = match p.aud {
        Aud::One(a) => vec![a],
        Aud::Many(v) => v,
    };
    if audience.is_empty() || audience.len() > MAX_NAMES {
        return Err(invalid(format!(
            "aud must name 1 to {MAX_NAMES} runners or pools"
        )));
    }
    for a in &audience {
        name("aud", a)?;
    }
    if p.tools.len() > MAX_TOOLS {
        return Err(invalid(format!(
            "it lists {} tools; at most {MAX_TOOLS}",
            p.tools.len()
        )));
    }
    let mut tools = BTreeMap::new();
    for (i, t) in p.tools.into_iter().enumerate() {
        let digest =
            Digest::parse(&t.digest).map_err(|e| invalid(format!("tools[{i}].digest: {e}")))?;
        crate::armory::check_label("name", &t.name)
            .map_err(|e| invalid(format!("tools[{i}].name: {e}")))?;
        if let Some(tenants) = &t.tenants {
            if tenants.is_empty() || tenants.len() > MAX_NAMES {
                return Err(invalid(format!(
                    "tools[{i}].tenants must list 1 to {MAX_NAMES} tenants (leave it out for \
                     every tenant)"
                )));
            }
            for tenant in tenants {
                name(&format!("tools[{i}].tenants"), tenant)?;
            }
        }
        if let Some(source) = &t.source {
            crate::armory::registry::Repository::parse(source)
                .map_err(|e| invalid(format!("tools[{i}].source: {e}")))?;
        }
        let tool = AuthorizedTool {
            name: t.name,
            tenants: t.tenants,
            source: t.source,
        };
        if tools.insert(digest.clone(), tool).is_some() {
            return Err(invalid(format!("tools lists {digest} twice")));
        }
    }
    Ok(Statement {
        sequence: p.sequence,
        issued_at,
        expires_at,
        audience,
        tools,
    })
}

fn time(field: &str, text: &str) -> Result<DateTime<Utc>, PolicyError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| PolicyError::Invalid {
            problem: format!(
                "{field} \"{}\" is not an RFC 3339 time ({e})",
                printable(text)
            ),
        })
}

fn name(field: &str, value: &str) -> Result<(), PolicyError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'));
    if ok {
        return Ok(());
    }
    Err(PolicyError::Invalid {
        problem: format!(
            "{field} \"{}\" must be 1 to 128 characters of [A-Za-z0-9._:@-]",
            printable(value)
        ),
    })
}

impl Statement {
    /// The checks that depend on who reads it and when: the audience names this runner
    /// (its id or a pool), it is not issued in the future beyond `skew`, and it has not
    /// expired.
    pub fn check_for(
        &self,
        runner: &[String],
        now: DateTime<Utc>,
        skew: TimeDelta,
    ) -> Result<(), PolicyError> {
        if !self.audience.iter().any(|a| runner.iter().any(|r| r == a)) {
            return Err(PolicyError::Audience {
                aud: self.audience.join(", "),
                runner: runner.join(", "),
            });
        }
        if self.issued_at > now + skew {
            return Err(PolicyError::Invalid {
                problem: format!(
                    "issued_at {} is in the future (this host's clock says {}); check the \
                     signer's clock",
                    stamp(self.issued_at),
                    stamp(now)
                ),
            });
        }
        if now >= self.expires_at + skew {
            return Err(PolicyError::Expired {
                sequence: self.sequence,
                expires_at: stamp(self.expires_at),
            });
        }
        Ok(())
    }
}

pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> serde_json::Value {
        json!({
            "statement_version": "1",
            "aud": ["edge-7", "pool-a"],
            "sequence": 3,
            "issued_at": "2026-12-01T00:00:00Z",
            "expires_at": "2026-12-08T00:00:00Z",
            "tools": [{"digest": format!("sha256:{}", "a".repeat(64)), "name": "scan",
                       "tenants": ["acme"], "source": "localhost:5000/tools/scan"}],
        })
    }

    fn decode(v: &serde_json::Value) -> Result<Statement, PolicyError> {
        decode_payload(v.to_string().as_bytes())
    }

    #[test]
    fn a_statement_decodes_and_is_checked_for_its_reader() {
        let s = decode(&body()).unwrap();
        assert_eq!(s.sequence, 3);
        assert_eq!(s.tools.len(), 1);
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        let skew = TimeDelta::seconds(30);
        let me = ["edge-7".to_owned()];
        assert!(s.check_for(&me, at("2026-12-02T00:00:00Z"), skew).is_ok());
        let pool = ["edge-9".to_owned(), "pool-a".to_owned()];
        assert!(s.check_for(&pool, at("2026-12-02T00:00:00Z"), skew).is_ok());
        let other = ["edge-9".to_owned()];
        assert!(matches!(
            s.check_for(&other, at("2026-12-02T00:00:00Z"), skew),
            Err(PolicyError::Audience { .. })
        ));
        assert!(matches!(
            s.check_for(&me, at("2026-12-08T00:00:31Z"), skew),
            Err(PolicyError::Expired { .. })
        ));
        assert!(s.check_for(&me, at("2026-12-08T00:00:29Z"), skew).is_ok());
        assert!(matches!(
            s.check_for(&me, at("2026-11-30T23:59:00Z"), skew),
            Err(PolicyError::Invalid { .. })
        ));
    }

    #[test]
    fn malformed_statements_are_refused() {
        let mut cases = Vec::new();
        let mut v = body();
        v["extra"] = json!(1);
        cases.push(v);
        let mut v = body();
        v["sequence"] = json!(0);
        cases.push(v);
        let mut v = body();
        v["sequence"] = json!(MAX_SEQUENCE + 1);
        cases.push(v);
        let mut v = body();
        v["statement_version"] = json!("2");
        cases.push(v);
        let mut v = body();
        v["expires_at"] = json!("2026-11-01T00:00:00Z");
        cases.push(v);
        let mut v = body();
        v["issued_at"] = json!("yesterday");
        cases.push(v);
        let mut v = body();
        v["aud"] = json!([]);
        cases.push(v);
        let mut v = body();
        v["tools"][0]["digest"] = json!("sha256:abc");
        cases.push(v);
        let mut v = body();
        v["tools"][0]["tenants"] = json!([]);
        cases.push(v);
        let mut v = body();
        v["tools"][0]["source"] = json!("https://r/x");
        cases.push(v);
        let mut v = body();
        v["tools"][0]["unknown"] = json!(true);
        cases.push(v);
        let mut v = body();
        let t = v["tools"][0].clone();
        v["tools"] = json!([t.clone(), t]);
        cases.push(v);
        for c in cases {
            assert!(decode(&c).is_err(), "accepted {c}");
        }
        // Duplicate members are refused by the strict parser.
        let dup = body()
            .to_string()
            .replacen("\"sequence\":3", "\"sequence\":3,\"sequence\":9", 1);
        assert!(decode_payload(dup.as_bytes()).is_err());
    }

    #[test]
    fn only_the_statement_typ_is_accepted() {
        assert!(check_typ(Some("edge-runner-authorization+jws")).is_ok());
        assert!(check_typ(Some("application/Edge-Runner-Authorization+JWS")).is_ok());
        for bad in [None, Some("edge-runner-task+jws"), Some("JWT"), Some("")] {
            assert!(check_typ(bad).is_err(), "{bad:?}");
        }
    }
}
