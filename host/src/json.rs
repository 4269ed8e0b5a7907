//! Strict JSON reading for untrusted input (JWS headers, manifests, key sets).
//!
//! `serde_json` silently keeps the last of duplicate object members, which lets two
//! parsers disagree about one document (RFC 8259 section 4 leaves it undefined; RFC 7515
//! section 4 requires rejecting or using a parser that does). Here a duplicate member is
//! an error, nesting is capped before it can exhaust the stack, and trailing data is
//! refused. This module only parses; it must not interpret any field.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::fmt;

/// Why a document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON (the parser's message).
    #[error("not valid JSON: {0}")]
    Syntax(String),
    /// An object has the same member twice (named).
    #[error("duplicate member \"{0}\"")]
    DuplicateMember(String),
    /// Nested deeper than the limit (given).
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
}

/// Parses `input` as one JSON value, refusing duplicate members at any depth and nesting
/// beyond `max_depth` arrays/objects.
pub fn parse_strict(input: &[u8], max_depth: usize) -> Result<Value, JsonError> {
    let failure = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(input);
    let seed = StrictSeed {
        depth_left: max_depth,
        max_depth,
        failure: &failure,
    };
    let value = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    // Our own refusals travel through serde as opaque errors; the typed reason waits in
    // `failure`.
    value.map_err(|e| {
        failure
            .take()
            .unwrap_or_else(|| JsonError::Syntax(e.to_string()))
    })
}

/// What [`check_strict`] learned about a document it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The document is a JSON object.
    pub is_object: bool,
    /// For each name asked for, the top-level member's value when it is a string
    /// (`None`: absent, or not a string). Duplicates are refused, so there is one answer.
    pub strings: Vec<Option<String>>,
}

/// Checks `input` under exactly the rules of [`parse_strict`] (one JSON value, duplicate
/// members refused at any depth, nesting capped at `max_depth`, no trailing data) without
/// building it: nothing is allocated for values but the top-level string members named in
/// `wanted`, which are returned decoded. For a caller that keeps the text itself (so it is
/// neither rebuilt nor re-serialized) and needs only those members.
pub fn check_strict(input: &str, max_depth: usize, wanted: &[&str]) -> Result<Checked, JsonError> {
    let failure = Cell::new(None);
    // From `str`: the text is known UTF-8, so strings are not validated again.
    let mut de = serde_json::Deserializer::from_str(input);
    let mut top = Checked {
        is_object: false,
        strings: vec![None; wanted.len()],
    };
    let seed = CheckSeed {
        depth_left: max_depth,
        max_depth,
        failure: &failure,
        top: Some((wanted, &mut top)),
    };
    let result = seed.deserialize(&mut de).and_then(|()| de.end());
    match result {
        Ok(()) => Ok(top),
        Err(e) => Err(failure
            .take()
            .unwrap_or_else(|| JsonError::Syntax(e.to_string()))),
    }
}

/// [`check_strict`]'s visitor: `top` is set only for the document's own value.
struct CheckSeed<'f, 'w, 't> {
    depth_left: usize,
    max_depth: usize,
    failure: &'f Cell<Option<JsonError>>,
    top: Option<(&'w [&'w str], &'t mut Checked)>,
}

impl<'f> CheckSeed<'f, '_, '_> {
    fn fail<E: de::Error>(&self, error: JsonError) -> E {
        let message = error.to_string();
        self.failure.set(Some(error));
        E::custom(message)
    }

    fn nested<E: de::Error>(&self) -> Result<CheckSeed<'f, 'static, 'static>, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(CheckSeed {
                depth_left,
                max_depth: self.max_depth,
                failure: self.failure,
                top: None,
            }),
            None => Err(self.fail(JsonError::TooDeep(self.max_depth))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for CheckSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CheckSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        while seq
            .next_element_seed(CheckSeed { top: None, ..inner })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        let mut top = self.top.take();
        if let Some((_, checked)) = top.as_mut() {
            checked.is_object = true;
        }
        let mut seen = Names::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let wanted = top
                .as_ref()
                .and_then(|(names, _)| names.iter().position(|n| *n == key));
            if let Err(dup) = seen.insert(key) {
                return Err(self.fail(JsonError::DuplicateMember(dup.into_owned())));
            }
            match (wanted, top.as_mut()) {
                (Some(i), Some((_, checked))) => {
                    let value = map.next_value_seed(StringOrCheck {
                        inner: CheckSeed { top: None, ..inner },
                    })?;
                    if let Some(slot) = checked.strings.get_mut(i) {
                        *slot = value;
                    }
                }
                _ => map.next_value_seed(CheckSeed { top: None, ..inner })?,
            }
        }
        Ok(())
    }
}

/// The member names of one object, for the duplicate check: a short list searched in
/// order while the object is small (no hashing, no per-name allocation for unescaped
/// names), a `BTreeSet` once it is not (so a plugin's huge object costs n log n, never n²).
#[derive(Default)]
struct Names<'de> {
    few: Vec<std::borrow::Cow<'de, str>>,
    many: std::collections::BTreeSet<std::borrow::Cow<'de, str>>,
}

impl<'de> Names<'de> {
    const FEW: usize = 32;

    /// Adds `name`, or hands it back when it was already there.
    fn insert(
        &mut self,
        name: std::borrow::Cow<'de, str>,
    ) -> Result<(), std::borrow::Cow<'de, str>> {
        if self.many.is_empty() && self.few.len() < Self::FEW {
            if self.few.contains(&name) {
                return Err(name);
            }
            self.few.push(name);
            return Ok(());
        }
        if self.many.is_empty() {
            self.many.extend(self.few.drain(..));
        }
        if self.many.contains(&name) {
            return Err(name);
        }
        self.many.insert(name);
        Ok(())
    }
}

/// A member name, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }
}

/// A wanted top-level member: its string value, or `None` after checking any other value.
struct StringOrCheck<'f> {
    inner: CheckSeed<'f, 'static, 'static>,
}

impl<'de> DeserializeSeed<'de> for StringOrCheck<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringOrCheck<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(map).map(|()| None)
    }
}

#[derive(Clone, Copy)]
struct StrictSeed<'f> {
    depth_left: usize,
    max_depth: usize,
    failure: &'f Cell<Option<JsonError>>,
}

impl StrictSeed<'_> {
    fn fail<E: de::Error>(&self, error: JsonError) -> E {
        let message = error.to_string();
        self.failure.set(Some(error));
        E::custom(message)
    }

    fn nested<E: de::Error>(&self) -> Result<Self, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(StrictSeed {
                depth_left,
                ..*self
            }),
            None => Err(self.fail(JsonError::TooDeep(self.max_depth))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(self.fail(JsonError::DuplicateMember(key)));
            }
            let value = map.next_value_seed(inner)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert_eq!(
            parse_strict(br#"{"a":1,"a":2}"#, 8),
            Err(JsonError::DuplicateMember("a".into()))
        );
        assert_eq!(
            parse_strict(br#"{"x":{"b":1,"b":1}}"#, 8),
            Err(JsonError::DuplicateMember("b".into()))
        );
        // Escapes that decode to the same name are duplicates too.
        assert_eq!(
            parse_strict(br#"{"alg":1,"\u0061lg":2}"#, 8),
            Err(JsonError::DuplicateMember("alg".into()))
        );
    }

    #[test]
    fn depth_is_capped() {
        let deep = "[".repeat(10) + &"]".repeat(10);
        assert!(parse_strict(deep.as_bytes(), 10).is_ok());
        assert_eq!(parse_strict(deep.as_bytes(), 9), Err(JsonError::TooDeep(9)));
        // Far beyond serde_json's own limit: refused, not a stack overflow.
        let very = "[".repeat(100_000);
        assert!(parse_strict(very.as_bytes(), 32).is_err());
    }

    #[test]
    fn check_strict_refuses_what_parse_strict_refuses() {
        let deep = "[".repeat(10) + &"]".repeat(10);
        let cases: &[&[u8]] = &[
            br#"{"a":1,"a":2}"#,
            br#"{"x":{"b":1,"b":1}}"#,
            br#"{"alg":1,"\u0061lg":2}"#,
            br#"{"k":[{"z":1},{"z":1,"z":2}]}"#,
            br#"{"a":1} x"#,
            br#"{"a":1}{"a":2}"#,
            br#"{"a":"\u00"}"#,
            b"{\"a\":\"raw\nnewline\"}",
            b"[1,2,]",
            br#"{"a":1e400,"b":-0.5,"c":[true,false,null],"d":{}}"#,
            br#"  "just a string"  "#,
            deep.as_bytes(),
        ];
        for case in cases {
            let text = std::str::from_utf8(case).unwrap();
            for depth in [9, 10, 64] {
                let a = parse_strict(case, depth).map(drop);
                let b = check_strict(text, depth, &["a"]).map(drop);
                assert_eq!(a, b, "{}", String::from_utf8_lossy(case));
            }
        }
        let very = "[".repeat(100_000);
        assert!(check_strict(&very, 32, &[]).is_err());
        // Many members: still every duplicate found, past the short list.
        let mut many: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
        let ok = format!("{{{}}}", many.join(","));
        assert!(check_strict(&ok, 4, &[]).is_ok());
        many.push("\"k7\":0".into());
        let dup = format!("{{{}}}", many.join(","));
        assert_eq!(
            check_strict(&dup, 4, &[]),
            Err(JsonError::DuplicateMember("k7".into()))
        );
    }

    #[test]
    fn check_strict_returns_wanted_top_level_strings() {
        let c = check_strict(
            r#"{"task_id":"t\u002d1","n":{"task_id":"inner"},"tenant":5,"x":"y"}"#,
            8,
            &["task_id", "tenant", "missing"],
        )
        .unwrap();
        assert!(c.is_object);
        assert_eq!(c.strings, vec![Some("t-1".to_owned()), None, None]);
        let top = check_strict(r#"["task_id"]"#, 8, &["task_id"]).unwrap();
        assert!(!top.is_object);
        assert_eq!(top.strings, vec![None]);
    }

    #[test]
    fn trailing_data_is_refused() {
        assert!(matches!(
            parse_strict(br#"{"a":1} x"#, 8),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            parse_strict(br#"{"a":1}{"a":2}"#, 8),
            Err(JsonError::Syntax(_))
        ));
    }
}
