//! The plugin boundary, return side: any event a mapper plugin can return (every field
//! arbitrary) for a record the pipeline can build, judged by the host
//! (`events::validate::build`, then serialized as the sinks get it). Invariants on an
//! accepted event: the serialized JSON passes the host's own receiver-side check, the
//! official CloudEvents schema and the spec rules beyond it; `id` and `source` are the
//! host's; the host-only `mapperfailed` flag is absent; every linkage field the record
//! knows is in `data` with the record's value.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use edge_runner::fuzzing::{PluginData, PluginEvent, PluginValue, check_plugin_event};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
enum Data {
    Json(String),
    /// JSON built from the record's linkage fields plus arbitrary members, so that the
    /// fuzzer reaches the checks behind the linkage rule.
    Linked(Vec<(String, String)>),
    Binary(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Ext {
    String(String),
    Integer(i64),
    Boolean(bool),
    Uri(String),
}

#[derive(Arbitrary, Debug)]
struct Answer {
    keep_id: bool,
    id: String,
    keep_source: bool,
    source: String,
    ty: String,
    subject: Option<String>,
    time: Option<String>,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    data: Option<Data>,
    extensions: Vec<(String, Ext)>,
}

const ID: &str = "0190b4a2-6c1e-7c3a-9a59-1d2f3e4a5b6c";
const SOURCE: &str = "urn:edge-runner:fuzz";

fuzz_target!(|bytes: &[u8]| {
    let mut u = Unstructured::new(bytes);
    let Ok(record) = edge_runner_fuzz::record(&mut u) else {
        return;
    };
    let Ok(a) = Answer::arbitrary(&mut u) else {
        return;
    };
    let linkage = edge_runner_fuzz::linkage(&record);
    let data = a.data.map(|d| match d {
        Data::Json(t) => PluginData::Json(t),
        Data::Binary(b) => PluginData::Binary(b),
        Data::Linked(extra) => {
            let mut m = serde_json::Map::new();
            for (k, v) in extra {
                m.insert(k, Value::String(v));
            }
            for (k, v) in &linkage {
                m.insert((*k).to_owned(), Value::String(v.clone()));
            }
            PluginData::Json(Value::Object(m).to_string())
        }
    });
    let event = PluginEvent {
        id: if a.keep_id { ID.to_owned() } else { a.id },
        source: if a.keep_source {
            SOURCE.to_owned()
        } else {
            a.source
        },
        ty: a.ty,
        subject: a.subject,
        time: a.time,
        datacontenttype: a.datacontenttype,
        dataschema: a.dataschema,
        data,
        extensions: a
            .extensions
            .into_iter()
            .map(|(n, v)| {
                let v = match v {
                    Ext::String(s) => PluginValue::String(s),
                    Ext::Integer(i) => PluginValue::Integer(i),
                    Ext::Boolean(b) => PluginValue::Boolean(b),
                    Ext::Uri(s) => PluginValue::Uri(s),
                };
                (n, v)
            })
            .collect(),
    };
    let Ok(json) = check_plugin_event(event, ID, SOURCE, &record) else {
        return;
    };
    if let Err(e) = edge_runner::events::validate::check_json(&json, None) {
        panic!(
            "the host emitted an event its own check refuses ({e}): {}",
            String::from_utf8_lossy(&json)
        );
    }
    assert!(!json.contains(&b'\n'), "not one line");
    let v = edge_runner_fuzz::json(&json);
    edge_runner_fuzz::assert_cloudevent(&v);
    assert_eq!(v["id"], ID);
    assert_eq!(v["source"], SOURCE);
    assert!(
        v.get("mapperfailed").is_none(),
        "a plugin set the host's flag"
    );
    for (name, value) in &linkage {
        assert_eq!(
            v["data"].get(*name).and_then(Value::as_str),
            Some(value.as_str()),
            "linkage field {name} lost: {v}"
        );
    }
});
