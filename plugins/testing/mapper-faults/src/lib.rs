//! Test fixture, never shipped: an event-mapper plugin that misbehaves in the way the
//! record's task id names, so one component covers every fault class the host must turn
//! into its flagged fallback event:
//!
//! - budget and traps: `trap` (panics), `loop` (spins until the fuel budget ends), `hog`
//!   (allocates until the memory limit), `garbage` (a string that is not UTF-8), `error`
//!   (returns an error string);
//! - invalid events: `empty-type`, `wrong-id`, `wrong-source`, `bad-time`,
//!   `bad-extension-name`, `long-extension-name`, `reserved-extension`,
//!   `int64-extension`, `forged-flag`, `control-subject`, `not-json`, `not-object`,
//!   `binary-data`, `drop-linkage`, `wrong-linkage`, `duplicate-linkage`, `oversize`,
//!   `text-content-type`, `bad-dataschema`.
//!
//! Any other task id gets a small valid event keeping the linkage fields, which proves the
//! fixture's faults, not the fixture itself, cause each fallback.
#![cfg_attr(target_arch = "wasm32", no_std)]
#![allow(clippy::panic)]

extern crate alloc;
// The allocator and panic handler come from the support crate.
use edge_runner_plugin_support as _;

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "event-mapper-plugin",
        generate_all,
    });
    use super::MapperFaults;
    export!(MapperFaults with_types_in self);
}

use alloc::string::{String, ToString as _};
use alloc::vec;
use alloc::vec::Vec;
use bindings::exports::edge_runner::plugin::event_mapper::{
    AttributeValue, CloudEvent, EventData, ExecutionRecord, Extension, Guest, MapperInfo, Task,
};
use edge_runner_plugin_support::json::JsonWriter;

struct MapperFaults;

fn linkage(task: &Task) -> String {
    let mut w = JsonWriter::with_capacity(256);
    w.begin_object();
    w.member_opt_str("task_id", task.task_id.as_deref());
    w.member_opt_str("tenant_id", task.tenant_id.as_deref());
    w.member_opt_str("tool_sha256", task.tool_sha256.as_deref());
    w.member_opt_str("manifest_jws", task.manifest_jws.as_deref());
    w.member_bool("fixture", true);
    w.end_object();
    w.finish()
}

fn extension(name: &str, value: AttributeValue) -> Extension {
    Extension {
        name: name.to_string(),
        value,
    }
}

impl Guest for MapperFaults {
    fn info() -> MapperInfo {
        MapperInfo {
            name: "mapper-faults".to_string(),
            version: "test".to_string(),
            event_types: vec!["dev.edge-runner.test.fixture.v1".to_string()],
        }
    }

    fn to_event(input: ExecutionRecord) -> Result<CloudEvent, String> {
        let mode = input.task.task_id.clone().unwrap_or_default();
        let mut ev = CloudEvent {
            id: input.event_id.clone(),
            source: input.source.clone(),
            type_: "dev.edge-runner.test.fixture.v1".to_string(),
            subject: input.task.task_id.clone(),
            time: Some(input.time.clone()),
            datacontenttype: Some("application/json".to_string()),
            dataschema: None,
            data: Some(EventData::Json(linkage(&input.task))),
            extensions: Vec::new(),
        };
        match mode.as_str() {
            "trap" => panic!("trap requested"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = core::hint::black_box(n.wrapping_add(1));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![0xA5; 1 << 20]);
                    core::hint::black_box(&hoard);
                }
            }
            "garbage" => {
                #[allow(unsafe_code)]
                // SAFETY: deliberately unsound for the fault test; the bytes go straight
                // to the canonical ABI, which validates UTF-8 on the host side.
                let s = unsafe { String::from_utf8_unchecked(vec![0xff, 0xfe, 0xfd]) };
                ev.type_ = s;
            }
            "error" => return Err("the fixture refuses this record".to_string()),
            "empty-type" => ev.type_ = String::new(),
            "wrong-id" => ev.id = "not-the-host-id".to_string(),
            "wrong-source" => ev.source = "urn:somewhere-else".to_string(),
            "bad-time" => ev.time = Some("yesterday at noon".to_string()),
            "bad-extension-name" => ev
                .extensions
                .push(extension("Bad_Name", AttributeValue::Boolean(true))),
            "long-extension-name" => ev.extensions.push(extension(
                "abcdefghijklmnopqrstu",
                AttributeValue::Boolean(true),
            )),
            "reserved-extension" => ev
                .extensions
                .push(extension("data", AttributeValue::String("x".into()))),
            "int64-extension" => ev
                .extensions
                .push(extension("big", AttributeValue::Integer(1 << 40))),
            "forged-flag" => ev
                .extensions
                .push(extension("mapperfailed", AttributeValue::Boolean(false))),
            "control-subject" => ev.subject = Some("line\nbreak".to_string()),
            "not-json" => ev.data = Some(EventData::Json("{not json".to_string())),
            "not-object" => ev.data = Some(EventData::Json("[1,2,3]".to_string())),
            "binary-data" => ev.data = Some(EventData::Binary(linkage(&input.task).into_bytes())),
            "drop-linkage" => {
                let mut w = JsonWriter::with_capacity(64);
                w.begin_object();
                w.member_opt_str("task_id", input.task.task_id.as_deref());
                w.end_object();
                ev.data = Some(EventData::Json(w.finish()));
            }
            "wrong-linkage" => {
                let mut task = input.task.clone();
                task.tenant_id = Some("someone-else".to_string());
                ev.data = Some(EventData::Json(linkage(&task)));
            }
            "duplicate-linkage" => {
                // The first `tenant_id` is forged, the last is the record's: a lenient
                // last-wins parser would accept the event; the host must refuse it.
                let data = linkage(&input.task);
                let forged = data.replacen('{', "{\"tenant_id\":\"someone-else\",", 1);
                ev.data = Some(EventData::Json(forged));
            }
            "oversize" => {
                let mut w = JsonWriter::with_capacity(256 * 1024);
                w.begin_object();
                w.member_opt_str("task_id", input.task.task_id.as_deref());
                w.member_opt_str("tenant_id", input.task.tenant_id.as_deref());
                w.member_opt_str("tool_sha256", input.task.tool_sha256.as_deref());
                w.member_opt_str("manifest_jws", input.task.manifest_jws.as_deref());
                // Independent of the output it was given: shrinking budgets cannot help.
                w.member_str("padding", &"x".repeat(200_000));
                w.end_object();
                ev.data = Some(EventData::Json(w.finish()));
            }
            "text-content-type" => ev.datacontenttype = Some("text/plain".to_string()),
            "bad-dataschema" => ev.dataschema = Some("not a uri".to_string()),
            _ => {}
        }
        Ok(ev)
    }
}
