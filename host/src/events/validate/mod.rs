//! The CloudEvents v1.0 rules the SDK does not enforce, checked on every event before it
//! leaves the runner, plus the runner's own rules for plugin-shaped events (id and source
//! are the host's, linkage fields kept, the `mapperfailed` flag is the host's alone).
//!
//! cloudevents-sdk 0.9 builds events with empty ids, bad extension names and 64-bit
//! integers without complaint, and its JSON reader accepts unknown `specversion` values
//! and duplicate members; the official JSON schema misses extension names, `data` with
//! `data_base64` and the string rules. Each check cites the spec section it enforces:
//! <https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md>. This module only
//! judges; it never repairs an event.

use super::mapper::wit::{MappedData, MappedEvent, MappedValue};
use super::record::ExecutionRecord;
use cloudevents::event::{Data, ExtensionValue};
use cloudevents::{AttributesReader as _, Event, EventBuilder as _, EventBuilderV10};
use serde_json::Value;

mod syntax;
use syntax::{check_extension_name, is_media_type};
pub use syntax::{
    is_absolute_uri, is_attribute_string, is_json_media_type, is_rfc3339, is_uri_reference,
};

/// The extension flag only the host may set (on its fallback events).
pub const MAPPER_FAILED_EXTENSION: &str = "mapperfailed";
/// The extension attribute that carries the runner's event signature (`events::signing`);
/// only the host may set it, so a mapper's event that names it is refused.
pub const SIGNATURE_EXTENSION: &str = "runnersig";
/// Nesting allowed in event data.
const MAX_DATA_DEPTH: usize = 64;

/// Core attribute names, which extensions must not reuse ("Extension Context
/// Attributes"), plus the JSON format's `data` and `data_base64` members.
const RESERVED: &[&str] = &[
    "id",
    "source",
    "specversion",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

/// Why an event was refused. `code()` is stable and appears in fallback events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    /// A required string attribute (named) is empty.
    #[error("attribute `{0}` is empty")]
    Empty(&'static str),
    /// An attribute (named) holds a control character or a Unicode noncharacter.
    #[error("attribute `{0}` holds a control character or a Unicode noncharacter")]
    BadString(String),
    /// `id` is not the id the host chose for the event.
    #[error("`id` is not the event id the host chose")]
    IdMismatch,
    /// `source` is not this runner's source.
    #[error("`source` is not this runner's source")]
    SourceMismatch,
    /// An attribute (named) is not a valid URI-reference.
    #[error("`{0}` is not a valid URI-reference")]
    NotUriReference(&'static str),
    /// `dataschema` is not an absolute URI.
    #[error("`dataschema` is not an absolute URI")]
    BadDataschema,
    /// `time` is not an RFC 3339 timestamp.
    #[error("`time` is not an RFC 3339 timestamp")]
    BadTime,
    /// `datacontenttype` is not a media type.
    #[error("`datacontenttype` is not a media type (RFC 2046)")]
    BadContentType,
    /// `data` is JSON but `datacontenttype` is not a JSON media type.
    #[error("`datacontenttype` is not a JSON media type but `data` is JSON")]
    ContentTypeNotJson,
    /// An extension name is not 1 to 20 lowercase letters or digits.
    #[error("extension name \"{0}\" does not match ^[a-z0-9]{{1,20}}$")]
    ExtensionName(String),
    /// An extension name is reserved.
    #[error("extension name \"{0}\" is reserved")]
    ExtensionReserved(String),
    /// An extension appears twice.
    #[error("extension `{0}` appears twice")]
    ExtensionDuplicate(String),
    /// An integer extension is outside the 32-bit signed range.
    #[error("extension `{0}` is an integer outside the 32-bit signed range")]
    ExtensionRange(String),
    /// An extension's value is not a string, integer or boolean.
    #[error("extension `{0}` has a value that is not a string, integer or boolean")]
    ExtensionType(String),
    /// An extension that must be a URI-reference is not one.
    #[error("extension `{0}` is not a valid URI-reference")]
    ExtensionUri(String),
    /// `data` is not valid JSON (the parser's message).
    #[error("`data` is not valid JSON: {0}")]
    DataNotJson(String),
    /// `data` is not a JSON object, so it cannot carry the linkage fields.
    #[error("`data` is not a JSON object, so it cannot carry the linkage fields")]
    DataNotObject,
    /// `data` drops or changes a linkage field (named).
    #[error("`data` drops or changes the linkage field `{0}`")]
    Linkage(&'static str),
    /// Both `data` and `data_base64` are present.
    #[error("`data` and `data_base64` are both present")]
    DataAndBase64,
    /// `specversion` is not `1.0`.
    #[error("`specversion` is not \"1.0\"")]
    SpecVersion,
    /// The serialized event is over the size cap.
    #[error("the event is {size} bytes, over the {cap}-byte cap")]
    TooLarge {
        /// Its size, in bytes.
        size: usize,
        /// The cap, in bytes.
        cap: usize,
    },
    /// The input is not a structured-mode JSON CloudEvent.
    #[error("not a structured-mode JSON CloudEvent: {0}")]
    Malformed(String),
}

impl InvalidEvent {
    /// A stable snake_case code for logs, events and tests.
    pub fn code(&self) -> &'static str {
        match self {
            InvalidEvent::Empty(_) => "attribute_empty",
            InvalidEvent::BadString(_) => "attribute_bad_string",
            InvalidEvent::IdMismatch => "id_mismatch",
            InvalidEvent::SourceMismatch => "source_mismatch",
            InvalidEvent::NotUriReference(_) => "not_uri_reference",
            InvalidEvent::BadDataschema => "bad_dataschema",
            InvalidEvent::BadTime => "bad_time",
            InvalidEvent::BadContentType => "bad_datacontenttype",
            InvalidEvent::ContentTypeNotJson => "datacontenttype_not_json",
            InvalidEvent::ExtensionName(_) => "extension_name",
            InvalidEvent::ExtensionReserved(_) => "extension_reserved",
            InvalidEvent::ExtensionDuplicate(_) => "extension_duplicate",
            InvalidEvent::ExtensionRange(_) => "extension_range",
            InvalidEvent::ExtensionType(_) => "extension_type",
            InvalidEvent::ExtensionUri(_) => "extension_uri",
            InvalidEvent::DataNotJson(_) => "data_not_json",
            InvalidEvent::DataNotObject => "data_not_object",
            InvalidEvent::Linkage(_) => "linkage_missing",
            InvalidEvent::DataAndBase64 => "data_and_data_base64",
            InvalidEvent::SpecVersion => "specversion",
            InvalidEvent::TooLarge { .. } => "event_too_large",
            InvalidEvent::Malformed(_) => "malformed",
        }
    }
}

/// What the host requires of a plugin's event for one record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect<'a> {
    pub id: &'a str,
    pub source: &'a str,
    pub record: &'a ExecutionRecord,
}

/// A plugin's event that passed every check: the SDK event holds the attributes, the
/// extensions and binary data; JSON data stays the plugin's own text (checked strictly,
/// once, without being rebuilt) and is spliced in by [`Checked::to_json`], so it is never
/// parsed into a tree and serialized back.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub event: Event,
    /// `data` as JSON text; the event's `datacontenttype` is set for it.
    json_data: Option<String>,
}

impl Checked {
    /// The structured-mode JSON (`application/cloudevents+json`), one line.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, InvalidEvent> {
        let mut out =
            serde_json::to_vec(&self.event).map_err(|e| InvalidEvent::Malformed(e.to_string()))?;
        let Some(text) = &self.json_data else {
            return Ok(out);
        };
        // The SDK wrote `{...}` with at least `specversion`: reopen it for `data`.
        if out.pop() != Some(b'}') {
            return Err(InvalidEvent::Malformed(
                "the SDK did not serialize a JSON object".into(),
            ));
        }
        out.reserve(text.len() + 9);
        out.extend_from_slice(b",\"data\":");
        // Raw CR and LF can only be insignificant whitespace in checked JSON (strings hold
        // them escaped), so dropping them keeps the event on one line and means the same.
        let bytes = text.as_bytes();
        if bytes.contains(&b'\n') || bytes.contains(&b'\r') {
            out.extend(bytes.iter().filter(|b| !matches!(b, b'\n' | b'\r')));
        } else {
            out.extend_from_slice(bytes);
        }
        out.push(b'}');
        Ok(out)
    }
}

/// Checks a plugin's answer, refusing anything that breaks the rules.
pub(crate) fn build(mapped: MappedEvent, expect: &Expect<'_>) -> Result<Checked, InvalidEvent> {
    if mapped.id != expect.id {
        return Err(InvalidEvent::IdMismatch);
    }
    if mapped.source != expect.source {
        return Err(InvalidEvent::SourceMismatch);
    }
    let known = expect.record.linkage();
    let (json_data, binary) = match mapped.data {
        Some(MappedData::Json(text)) => {
            let names = known.map(|(name, _)| name);
            let checked = crate::json::check_strict(&text, MAX_DATA_DEPTH, &names)
                .map_err(|e| InvalidEvent::DataNotJson(e.to_string()))?;
            check_linkage(Some(&checked), &known)?;
            (Some(text), None)
        }
        Some(MappedData::Binary(bytes)) => {
            check_linkage(None, &known)?;
            (None, Some(bytes))
        }
        None => {
            check_linkage(None, &known)?;
            (None, None)
        }
    };
    let mut b = EventBuilderV10::new()
        .id(mapped.id)
        .source(mapped.source)
        .ty(mapped.ty);
    if let Some(s) = mapped.subject {
        b = b.subject(s);
    }
    if let Some(t) = mapped.time {
        if !syntax::is_rfc3339(&t) {
            return Err(InvalidEvent::BadTime);
        }
        b = b.time(t);
    }
    let mut seen = std::collections::HashSet::new();
    for (name, value) in mapped.extensions {
        if name == MAPPER_FAILED_EXTENSION || name == SIGNATURE_EXTENSION {
            return Err(InvalidEvent::ExtensionReserved(name));
        }
        check_extension_name(&name)?;
        if !seen.insert(name.clone()) {
            return Err(InvalidEvent::ExtensionDuplicate(name));
        }
        let value = match value {
            MappedValue::String(s) => ExtensionValue::String(s),
            MappedValue::Integer(i) => ExtensionValue::Integer(i),
            MappedValue::Boolean(v) => ExtensionValue::Boolean(v),
            MappedValue::Uri(u) => {
                if !is_uri_reference(&u) {
                    return Err(InvalidEvent::ExtensionUri(name));
                }
                ExtensionValue::String(u)
            }
        };
        b = b.extension(&name, value);
    }
    let content_type = match (&mapped.datacontenttype, &json_data) {
        (Some(ct), _) => Some(ct.clone()),
        (None, Some(_)) => Some("application/json".to_owned()),
        (None, None) => None,
    };
    if let Some(ds) = &mapped.dataschema
        && !is_absolute_uri(ds)
    {
        return Err(InvalidEvent::BadDataschema);
    }
    let mut event = b
        .build()
        .map_err(|e| InvalidEvent::Malformed(e.to_string()))?;
    if json_data.is_some() || binary.is_some() {
        let ct = content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
        match binary {
            Some(bytes) => {
                event.set_data(ct, Data::Binary(bytes));
            }
            None => {
                cloudevents::AttributesWriter::set_datacontenttype(&mut event, Some(ct));
            }
        }
        if let Some(ds) = &mapped.dataschema {
            let url = url::Url::parse(ds).map_err(|_| InvalidEvent::BadDataschema)?;
            cloudevents::AttributesWriter::set_dataschema(&mut event, Some(url));
        }
    } else if let Some(ct) = mapped.datacontenttype {
        cloudevents::AttributesWriter::set_datacontenttype(&mut event, Some(ct));
    }
    check_with(&event, json_data.is_some())?;
    Ok(Checked { event, json_data })
}

/// The record's known linkage fields must be top-level string members of `data`, with
/// the record's values. `data` is `None` when it is not JSON (absent or binary).
fn check_linkage(
    data: Option<&crate::json::Checked>,
    known: &[(&'static str, Option<&str>); 4],
) -> Result<(), InvalidEvent> {
    if known.iter().all(|(_, v)| v.is_none()) {
        return Ok(());
    }
    let Some(data) = data.filter(|d| d.is_object) else {
        return Err(InvalidEvent::DataNotObject);
    };
    for ((name, value), found) in known.iter().zip(&data.strings) {
        if let Some(v) = value
            && found.as_deref() != Some(*v)
        {
            return Err(InvalidEvent::Linkage(name));
        }
    }
    Ok(())
}

/// The spec's attribute rules, on an SDK event.
pub fn check(event: &Event) -> Result<(), InvalidEvent> {
    check_with(event, false)
}

/// [`check`], for an event whose JSON `data` is kept outside it (`json_data`).
fn check_with(event: &Event, json_data: bool) -> Result<(), InvalidEvent> {
    // "REQUIRED ... MUST be a non-empty string" (section 3.1.1).
    string_attr("id", Some(event.id()), true)?;
    string_attr("type", Some(event.ty()), true)?;
    string_attr("source", Some(event.source()), true)?;
    if !is_uri_reference(event.source()) {
        return Err(InvalidEvent::NotUriReference("source"));
    }
    string_attr("subject", event.subject(), true)?;
    if let Some(ct) = event.datacontenttype()
        && !is_media_type(ct)
    {
        return Err(InvalidEvent::BadContentType);
    }
    if let Some(ds) = event.dataschema()
        && !is_absolute_uri(ds.as_str())
    {
        return Err(InvalidEvent::BadDataschema);
    }
    if (json_data || matches!(event.data(), Some(Data::Json(_))))
        && !event.datacontenttype().is_none_or(is_json_media_type)
    {
        return Err(InvalidEvent::ContentTypeNotJson);
    }
    for (name, value) in event.iter_extensions() {
        check_extension_name(name)?;
        match value {
            ExtensionValue::String(s) => {
                if !is_attribute_string(s) && !s.is_empty() {
                    return Err(InvalidEvent::BadString(name.to_owned()));
                }
            }
            // "Integer - A whole number in the range -2,147,483,648 to +2,147,483,647".
            ExtensionValue::Integer(i) => {
                if i32::try_from(*i).is_err() {
                    return Err(InvalidEvent::ExtensionRange(name.to_owned()));
                }
            }
            ExtensionValue::Boolean(_) => {}
        }
    }
    Ok(())
}

/// Checks a structured-mode JSON event as a receiver would see it (for `events validate`
/// and the tests): strict JSON, `specversion`, `data` xor `data_base64`, extension names
/// and value types, then every rule of [`check`], then the size cap when given.
pub fn check_json(bytes: &[u8], cap: Option<usize>) -> Result<Event, InvalidEvent> {
    if let Some(cap) = cap
        && bytes.len() > cap
    {
        return Err(InvalidEvent::TooLarge {
            size: bytes.len(),
            cap,
        });
    }
    let value = crate::json::parse_strict(bytes, MAX_DATA_DEPTH + 2)
        .map_err(|e| InvalidEvent::Malformed(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(InvalidEvent::Malformed("not a JSON object".into()));
    };
    if map.get("specversion").and_then(Value::as_str) != Some("1.0") {
        return Err(InvalidEvent::SpecVersion);
    }
    if map.contains_key("data") && map.contains_key("data_base64") {
        return Err(InvalidEvent::DataAndBase64);
    }
    for (name, v) in map {
        if RESERVED.contains(&name.as_str()) {
            continue;
        }
        check_extension_name(name)?;
        match v {
            Value::String(_) | Value::Bool(_) => {}
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                if n.as_i64().and_then(|i| i32::try_from(i).ok()).is_none() {
                    return Err(InvalidEvent::ExtensionRange(name.clone()));
                }
            }
            _ => return Err(InvalidEvent::ExtensionType(name.clone())),
        }
    }
    for attr in ["time"] {
        if let Some(t) = map.get(attr) {
            let ok = t.as_str().is_some_and(syntax::is_rfc3339);
            if !ok {
                return Err(InvalidEvent::BadTime);
            }
        }
    }
    let event: Event =
        serde_json::from_value(value).map_err(|e| InvalidEvent::Malformed(e.to_string()))?;
    check(&event)?;
    Ok(event)
}

fn string_attr(
    name: &'static str,
    value: Option<&str>,
    required_non_empty: bool,
) -> Result<(), InvalidEvent> {
    match value {
        None => Ok(()),
        Some("") if required_non_empty => Err(InvalidEvent::Empty(name)),
        Some(v) if !is_attribute_string(v) => Err(InvalidEvent::BadString(name.to_owned())),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra: &str) -> String {
        format!(r#"{{"specversion":"1.0","id":"1","source":"urn:x","type":"t"{extra}}}"#)
    }

    #[test]
    fn json_events_are_checked_beyond_the_schema() {
        assert!(check_json(minimal("").as_bytes(), None).is_ok());
        let code = |extra: &str| {
            check_json(minimal(extra).as_bytes(), None)
                .unwrap_err()
                .code()
        };
        assert_eq!(
            code(r#","data":{},"data_base64":"AA==""#),
            "data_and_data_base64"
        );
        assert_eq!(code(r#","Bad":"x""#), "extension_name");
        assert_eq!(code(r#","big":4294967296"#), "extension_range");
        assert_eq!(code(r#","f":1.5"#), "extension_type");
        assert_eq!(code(r#","subject":"""#), "attribute_empty");
        assert_eq!(code(r#","subject":"a\u0001""#), "attribute_bad_string");
        assert_eq!(code(r#","time":"noon""#), "bad_time");
        assert_eq!(code(r#","id":"2""#), "malformed"); // duplicate member
        let v03 = r#"{"specversion":"0.3","id":"1","source":"urn:x","type":"t"}"#;
        assert_eq!(
            check_json(v03.as_bytes(), None).unwrap_err().code(),
            "specversion"
        );
        let empty_id = r#"{"specversion":"1.0","id":"","source":"urn:x","type":"t"}"#;
        assert_eq!(
            check_json(empty_id.as_bytes(), None).unwrap_err().code(),
            "attribute_empty"
        );
        // fuzz/fuzz_targets/event_json, crash-0053e9e3 (issue 15): a source with a bracket
        // outside an IP literal was accepted though the official schema refuses it.
        let fuzzed = r#"{"specversion": "1.0", "id": "0190b4a2-6c1e-7c3a-9a59-1d2f3e4a5b6c", "source": "urn:edge-run]er:edwe-7", "type": "dev.ehge-runner.task.completed.v1", "time": "2026-11-26T21:00:00.000Z", "subject": "t-42", "hema": "rel/x"}"#;
        assert_eq!(
            check_json(fuzzed.as_bytes(), None).unwrap_err().code(),
            "not_uri_reference"
        );
        let big = minimal("");
        assert_eq!(
            check_json(big.as_bytes(), Some(big.len() - 1))
                .unwrap_err()
                .code(),
            "event_too_large"
        );
    }
}
