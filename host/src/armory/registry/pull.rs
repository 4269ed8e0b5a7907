//! `pull`: a tool artifact from a registry into the armory. The manifest is read bounded
//! (and, when its digest is pinned, hashed against it), must be a single-layer tool
//! artifact whose layer is the digest asked for and no larger than the armory's limit;
//! the layer is then streamed into the armory's staging file while it is hashed, read at
//! most one byte past its announced size, and stored only if size and digest match
//! (`Armory::add`'s temp file, fsync, rename). Nothing half-written remains on any
//! failure. This module must not authorize anything: a pulled tool runs only if it is
//! authorized like any other.

use super::{
    Client, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_BYTES, Reference, RegistryError, TOOL_MEDIA_TYPE,
    status_error,
};
use crate::armory::Armory;
use crate::armory::add::StageError;
use crate::digest::Digest;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::io::Read as _;

/// What `pull` did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The tool's digest.
    pub digest: Digest,
    pub(crate) size: u64,
    /// The manifest's digest (what its bytes hash to).
    pub manifest: Digest,
    /// False when the armory already held the tool (nothing was fetched).
    pub new: bool,
}

/// The one layer a tool manifest describes.
struct Layer {
    digest: Digest,
    size: u64,
    title: Option<String>,
}

impl Client {
    /// Pulls `reference` into `armory`, named `name` (default: the layer's title
    /// annotation, else the repository). `manifest` pins the manifest's digest; without
    /// it the manifest is found by the tag `push` gives it.
    pub fn pull(
        &self,
        armory: &Armory,
        reference: &Reference,
        manifest: Option<&Digest>,
        name: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Pulled, RegistryError> {
        let (manifest_digest, layer) =
            self.manifest(reference, manifest, armory.max_tool_bytes())?;
        if armory.holds(&reference.digest)? {
            return Ok(Pulled {
                digest: reference.digest.clone(),
                size: layer.size,
                manifest: manifest_digest,
                new: false,
            });
        }
        let url = reference
            .repository
            .url(&format!("blobs/{}", reference.digest));
        let (url, response) = self.send("GET", &url, &[], super::Body::Empty)?;
        if response.status().as_u16() != 200 {
            return Err(status_error(&url, response));
        }
        let mismatch = |problem: String| RegistryError::DigestMismatch {
            reference: reference.to_string(),
            what: "the layer",
            problem,
        };
        // Refused before a byte is read when the registry announces a larger body.
        if let Some(len) = response.body().content_length()
            && len != layer.size
        {
            if len > armory.max_tool_bytes() {
                return Err(RegistryError::TooLarge {
                    what: format!("the layer of {reference}"),
                    size: len,
                    limit: armory.max_tool_bytes(),
                });
            }
            return Err(mismatch(format!(
                "the registry announces {len} bytes, the manifest {}",
                layer.size
            )));
        }
        let mut body = response.into_body();
        let mut reader = body
            .with_config()
            .limit(layer.size.saturating_add(1))
            .reader();
        let name = name
            .map(str::to_owned)
            .or(layer.title)
            .unwrap_or_else(|| reference.repository.name.clone());
        let name = crate::text::printable(&name);
        let added = armory
            .add_expecting(
                &mut reader,
                Some((&reference.digest, layer.size)),
                &name,
                by,
                now,
            )
            .map_err(|e| match e {
                StageError::Armory(a) => RegistryError::Armory(a),
                StageError::Unexpected { problem } => mismatch(problem),
                StageError::Read(e) => {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof
                        || e.to_string().contains("closed")
                        || e.to_string().contains("EOF")
                    {
                        mismatch(format!("the transfer ended early (truncated): {e}"))
                    } else {
                        RegistryError::Transport {
                            url: url.clone(),
                            detail: format!("the transfer broke off: {e}"),
                        }
                    }
                }
            })?;
        Ok(Pulled {
            digest: added.digest,
            size: added.size,
            manifest: manifest_digest,
            new: added.new,
        })
    }

    /// Reads and checks the manifest; returns its digest and its one layer.
    fn manifest(
        &self,
        reference: &Reference,
        pinned: Option<&Digest>,
        max_tool_bytes: u64,
    ) -> Result<(Digest, Layer), RegistryError> {
        let target = pinned.map_or_else(|| reference.tag(), Digest::to_string);
        let url = reference.repository.url(&format!("manifests/{target}"));
        let (url, response) = self.send(
            "GET",
            &url,
            &[("accept", MANIFEST_MEDIA_TYPE)],
            super::Body::Empty,
        )?;
        if response.status().as_u16() != 200 {
            return Err(status_error(&url, response));
        }
        let not_a_tool = |problem: String| RegistryError::NotATool {
            reference: reference.to_string(),
            problem,
        };
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_with_config()
            .limit(MAX_MANIFEST_BYTES + 1)
            .reader()
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                if bytes.len() as u64 > MAX_MANIFEST_BYTES || e.to_string().contains("limit") {
                    not_a_tool(format!(
                        "the manifest is larger than {MAX_MANIFEST_BYTES} bytes"
                    ))
                } else {
                    RegistryError::Transport {
                        url: url.clone(),
                        detail: format!("failed to read the manifest: {e}"),
                    }
                }
            })?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(not_a_tool(format!(
                "the manifest is larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        let digest = crate::digest::Digest::parse(&crate::digest::sha256_id(&bytes))
            .map_err(|e| not_a_tool(e.to_string()))?;
        if let Some(p) = pinned
            && *p != digest
        {
            return Err(RegistryError::DigestMismatch {
                reference: reference.to_string(),
                what: "the manifest",
                problem: format!("its bytes hash to {digest}, not {p}"),
            });
        }
        let layer = tool_layer(&bytes).map_err(not_a_tool)?;
        if layer.digest != reference.digest {
            return Err(RegistryError::DigestMismatch {
                reference: reference.to_string(),
                what: "the manifest's layer",
                problem: format!("it is {}, not {}", layer.digest, reference.digest),
            });
        }
        if layer.size > max_tool_bytes {
            return Err(RegistryError::TooLarge {
                what: format!("the layer of {reference}"),
                size: layer.size,
                limit: max_tool_bytes,
            });
        }
        Ok((digest, layer))
    }
}

/// The one layer of a tool manifest, after the structural checks.
fn tool_layer(bytes: &[u8]) -> Result<Layer, String> {
    let v = crate::json::parse_strict(bytes, 8).map_err(|e| e.to_string())?;
    let str_field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    if v.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err("schemaVersion is not 2".into());
    }
    if let Some(m) = str_field(&v, "mediaType")
        && m != MANIFEST_MEDIA_TYPE
    {
        return Err(format!(
            "mediaType is {}, not {MANIFEST_MEDIA_TYPE}",
            crate::text::printable(&m)
        ));
    }
    if let Some(a) = str_field(&v, "artifactType")
        && a != TOOL_MEDIA_TYPE
    {
        return Err(format!(
            "artifactType is {}, not {TOOL_MEDIA_TYPE}",
            crate::text::printable(&a)
        ));
    }
    let layers = v
        .get("layers")
        .and_then(Value::as_array)
        .ok_or("it has no layers array")?;
    let [layer] = layers.as_slice() else {
        return Err(format!("it has {} layers, not exactly one", layers.len()));
    };
    let media = str_field(layer, "mediaType").unwrap_or_default();
    if media != TOOL_MEDIA_TYPE {
        return Err(format!(
            "its layer's mediaType is \"{}\", not {TOOL_MEDIA_TYPE}",
            crate::text::printable(&media)
        ));
    }
    let digest = str_field(layer, "digest")
        .ok_or("its layer has no digest")
        .and_then(|d| Digest::parse(&d).map_err(|_| "its layer's digest is not sha256"))?;
    let size = layer
        .get("size")
        .and_then(Value::as_u64)
        .ok_or("its layer has no size")?;
    let title = layer
        .get("annotations")
        .and_then(|a| a.get("org.opencontainers.image.title"))
        .and_then(Value::as_str)
        .filter(|t| crate::armory::check_label("name", t).is_ok())
        .map(str::to_owned);
    Ok(Layer {
        digest,
        size,
        title,
    })
}
