//! The JSON Schema (draft 2020-12) of manifest version 1, for control planes, built from
//! the same constants the decoder enforces. What a schema cannot say (the env denylist is
//! listed but case-insensitive, the nonce's distinct-character rule, `expires_at` after
//! `issued_at`, the runner's configured limits and times) is in the descriptions. This
//! module only describes; it must not validate.

use super::LimitsConfig;
use super::fields::*;
use serde_json::{Value, json};

/// The schema, with the limit maxima of `limits` (a runner's configuration) stated.
pub fn schema(limits: &LimitsConfig) -> Value {
    let id = |description: &str| {
        json!({
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_LEN,
            "pattern": ID_PATTERN,
            "description": description,
        })
    };
    let limit = |description: &str, default: u64, max: u64| {
        json!({
            "type": "integer",
            "minimum": 1,
            "maximum": max,
            "default": default,
            "description": description,
        })
    };
    let timestamp = |description: &str| {
        json!({
            "type": "string",
            "format": "date-time",
            "maxLength": MAX_TIMESTAMP_LEN,
            "pattern": TIMESTAMP_PATTERN,
            "description": description,
        })
    };
    let denied: Vec<&str> = super::env::denied_env_names().collect();
    let prefixes: Vec<&str> = super::env::denied_env_prefixes().collect();
    let denied_prefixes: Vec<String> = prefixes.iter().map(|p| format!("{p}*")).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:edge-runner:manifest:1",
        "title": "edge-runner execution manifest, version 1",
        "description": "The payload of a signed task (a compact JWS). Unknown fields and \
            duplicate members are refused. Times are RFC 3339; the runner refuses a manifest \
            that is expired or not yet valid beyond its configured clock skew, or whose \
            lifetime (expires_at - issued_at) exceeds its configured maximum.",
        "type": "object",
        "additionalProperties": false,
        "required": ["manifest_version", "aud", "task_context", "tool_sha256", "nonce", "issued_at", "expires_at"],
        "properties": {
            "manifest_version": { "const": super::VERSION },
            "aud": {
                "oneOf": [
                    id("The runner id or pool name the task is for."),
                    { "type": "array", "minItems": 1, "maxItems": super::MAX_AUDIENCE,
                      "items": id("A runner id or pool name.") },
                ],
                "description": "Who may run the task: a runner id or pool name, or a list of \
                    them. A runner refuses a task that does not name it (audience_mismatch) \
                    and, unless claims.require_audience is relaxed, one that names no one \
                    (audience_missing).",
            },
            "task_context": {
                "type": "object",
                "additionalProperties": false,
                "required": ["task_id", "tenant_id"],
                "properties": {
                    "task_id": id("The control plane's id for this task."),
                    "tenant_id": id("The tenant; nonces are unique per tenant."),
                    "operator_id": id("Who asked for the task."),
                    "source": id("The system that issued the task."),
                    "action": id("What the task does, for audit."),
                },
            },
            "target_urn": {
                "type": "string",
                "maxLength": MAX_URN_LEN,
                "pattern": "^[Uu][Rr][Nn]:[A-Za-z0-9][A-Za-z0-9-]{0,30}[A-Za-z0-9]:[A-Za-z0-9._~%!$&'()*+,;=:@/-]+$",
                "description": "What the task acts on, as an RFC 8141 URN without ?/# parts.",
            },
            "tool_sha256": {
                "type": "string",
                "pattern": "^sha256:[0-9a-f]{64}$",
                "description": "The tool, by the SHA-256 of its bytes (lowercase hex). It must be \
                    in the runner's armory and authorized there.",
            },
            "args": {
                "type": "array",
                "maxItems": MAX_ARGS,
                "items": { "type": "string", "maxLength": MAX_ARG_LEN, "pattern": "^[^\\u0000]*$" },
                "default": [],
                "description": format!("Arguments after the tool's name; at most \
                    {MAX_ARGS_TOTAL} bytes in total, no NUL characters."),
            },
            "env": {
                "type": "object",
                "maxProperties": MAX_ENV,
                "propertyNames": {
                    "pattern": ENV_NAME_PATTERN,
                    "not": { "anyOf": [
                        { "pattern": format!("^({})$", case_insensitive(&denied)) },
                        { "pattern": format!("^({})", case_insensitive(&prefixes)) },
                    ]},
                },
                "additionalProperties": { "type": "string", "maxLength": MAX_ENV_VALUE_LEN, "pattern": "^[^\\u0000]*$" },
                "description": format!("Extra environment variables. A name must be on \
                    the runner's allow list ({} by default, plus its [env] section), else \
                    env_not_allowed. Always refused, compared case-insensitively: {}, and \
                    names starting with {}.",
                    super::env::DEFAULT_ALLOWED_ENV.join(", "),
                    denied.join(", "), denied_prefixes.join(", ")),
            },
            "parameters": {
                "description": format!("Any JSON value, handed to the tool on its standard \
                    input exactly as signed (the same bytes, followed by a newline: numbers \
                    such as 12345678901234567890123 or 1E2 are never rewritten); at most \
                    {MAX_PARAMETERS_BYTES} bytes as signed."),
            },
            "nonce": {
                "type": "string",
                "minLength": MIN_NONCE_LEN,
                "maxLength": MAX_NONCE_LEN,
                "pattern": NONCE_PATTERN,
                "description": format!("At least 128 random bits from a CSPRNG as text: \
                    {MIN_HEX_NONCE_LEN}+ hex digits or {MIN_NONCE_LEN}+ base64url characters \
                    (with at least {MIN_NONCE_DISTINCT} distinct characters). Used once per \
                    tenant: a second use is refused as replayed_nonce."),
            },
            "issued_at": timestamp("When the task was signed."),
            "expires_at": timestamp("When the task stops being valid; later than issued_at."),
            "limits": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "timeout_ms": limit("Wall-clock timeout, milliseconds.",
                        limits.default_timeout_ms, limits.max_timeout_ms),
                    "memory_bytes": limit("Memory limit, bytes.",
                        limits.default_memory_bytes, limits.max_memory_bytes),
                    "output_bytes": limit("Captured output limit, bytes.",
                        limits.default_output_bytes, limits.max_output_bytes),
                },
                "description": "Resource limits; defaults and maxima come from the runner's \
                    configuration (the values here are this runner's).",
            },
        },
    })
}

/// An ECMA-262 alternation matching each of `words` in any letter case (JSON Schema
/// patterns have no case-insensitive flag).
fn case_insensitive(words: &[&str]) -> String {
    let alternatives: Vec<String> = words
        .iter()
        .map(|w| {
            w.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    alternatives.join("|")
}
