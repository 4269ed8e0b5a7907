//! `push`: publishes a tool file as a single-layer OCI artifact (for operators who build
//! tools): the layer (the file's bytes, hashed first), the empty config, then the
//! manifest, tagged `sha256-<hex of the tool digest>`. Blobs are uploaded monolithically
//! (distribution API: POST an upload, PUT with `?digest=`), skipped when the registry
//! already has them. This module reads the file; it never writes the armory.

use super::{
    Client, EMPTY_CONFIG, EMPTY_CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, Reference, RegistryError,
    Repository, TOOL_MEDIA_TYPE, status_error,
};
use crate::digest::Digest;
use std::io::{Seek as _, SeekFrom};
use std::path::Path;

/// What `push` did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `REGISTRY/REPOSITORY@<tool digest>`: what `armory pull` and statements name.
    pub reference: Reference,
    /// The tool's size, in bytes.
    pub size: u64,
    /// The manifest's digest (what the registry stores it under).
    pub manifest: Digest,
    /// The tag the manifest was pushed under (`sha256-<hex of the tool digest>`).
    pub tag: String,
}

impl Client {
    /// Pushes the tool at `path` to `repository`; `max` bounds its size.
    pub fn push(
        &self,
        path: &Path,
        repository: &Repository,
        name: &str,
        max: u64,
    ) -> Result<Pushed, RegistryError> {
        let read = |source| RegistryError::ReadFile {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read)?;
        let size = file.metadata().map_err(read)?.len();
        if size > max {
            return Err(RegistryError::TooLarge {
                what: path.display().to_string(),
                size,
                limit: max,
            });
        }
        let mut head = vec![0u8; crate::armory::MAX_SHEBANG_LEN];
        let n = std::io::Read::read(&mut file, &mut head).map_err(read)?;
        crate::armory::check_executable(&head[..n], &path.display().to_string())?;
        file.seek(SeekFrom::Start(0)).map_err(read)?;
        let digest = {
            use sha2::Digest as _;
            let mut hasher = sha2::Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = std::io::Read::read(&mut file, &mut buf).map_err(read)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            Digest::from_hasher(hasher)
        };
        file.seek(SeekFrom::Start(0)).map_err(read)?;
        self.upload(repository, &digest, super::Body::File(&file))?;
        let config = Digest::parse(&crate::digest::sha256_id(EMPTY_CONFIG)).map_err(|e| {
            RegistryError::Transport {
                url: repository.to_string(),
                detail: e.to_string(),
            }
        })?;
        self.upload(repository, &config, super::Body::Bytes(EMPTY_CONFIG))?;

        let title = crate::text::printable(name);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": TOOL_MEDIA_TYPE,
            "config": {
                "mediaType": EMPTY_CONFIG_MEDIA_TYPE,
                "digest": config.as_str(),
                "size": EMPTY_CONFIG.len(),
            },
            "layers": [{
                "mediaType": TOOL_MEDIA_TYPE,
                "digest": digest.as_str(),
                "size": size,
                "annotations": {"org.opencontainers.image.title": title},
            }],
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|e| RegistryError::Transport {
            url: repository.to_string(),
            detail: e.to_string(),
        })?;
        let manifest_digest = Digest::parse(&crate::digest::sha256_id(&bytes)).map_err(|e| {
            RegistryError::Transport {
                url: repository.to_string(),
                detail: e.to_string(),
            }
        })?;
        let tag = super::tag_for(&digest);
        let url = repository.url(&format!("manifests/{tag}"));
        let (url, response) = self.send(
            "PUT",
            &url,
            &[("content-type", MANIFEST_MEDIA_TYPE)],
            super::Body::Bytes(&bytes),
        )?;
        if response.status().as_u16() != 201 {
            return Err(status_error(&url, response));
        }
        Ok(Pushed {
            reference: Reference {
                repository: repository.clone(),
                digest,
            },
            size,
            manifest: manifest_digest,
            tag,
        })
    }

    /// Uploads one blob unless the registry has it.
    fn upload(
        &self,
        repository: &Repository,
        digest: &Digest,
        body: super::Body<'_>,
    ) -> Result<(), RegistryError> {
        let url = repository.url(&format!("blobs/{digest}"));
        let (_, response) = self.send("HEAD", &url, &[], super::Body::Empty)?;
        if response.status().as_u16() == 200 {
            return Ok(());
        }
        let url = repository.url("blobs/uploads/");
        let (url, response) = self.send("POST", &url, &[], super::Body::Empty)?;
        if response.status().as_u16() != 202 {
            return Err(status_error(&url, response));
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut target = url::Url::parse(&url)
            .and_then(|base| base.join(&location))
            .map_err(|e| RegistryError::Transport {
                url: url.clone(),
                detail: format!("the upload location \"{location}\" is unreadable: {e}"),
            })?;
        if !super::same_origin(&url, &target) {
            return Err(RegistryError::Redirect {
                url,
                location: crate::text::printable(&location),
            });
        }
        target
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        let (url, response) = self.send(
            "PUT",
            target.as_str(),
            &[("content-type", "application/octet-stream")],
            body,
        )?;
        if response.status().as_u16() != 201 {
            return Err(status_error(&url, response));
        }
        Ok(())
    }
}
