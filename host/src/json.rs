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
    #[error("not valid JSON: {0}")]
    Syntax(String),
    #[error("duplicate member \"{0}\"")]
    DuplicateMember(String),
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
