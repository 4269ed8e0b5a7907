//! Registry references: `REGISTRY/REPOSITORY` and `REGISTRY/REPOSITORY@sha256:<tool
//! digest>`, parsed strictly (lowercase repository path components, a host or host:port
//! registry, pull by digest only), and the tag `push` gives a tool's manifest. No I/O.

use super::RegistryError;
use crate::digest::Digest;
use crate::text::printable;

/// `REGISTRY/REPOSITORY`: `host` or `host:port`, then a repository path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub(crate) registry: String,
    pub(crate) name: String,
}

impl Repository {
    /// Parses `REGISTRY/REPOSITORY` (lowercase path components; no tag or digest).
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let bad = |problem: &str| RegistryError::Reference {
            text: printable(text),
            problem: problem.to_owned(),
        };
        let Some((registry, name)) = text.split_once('/') else {
            return Err(bad(
                "it must be REGISTRY/REPOSITORY, like registry.example:5000/tools/scan",
            ));
        };
        check_registry_name(registry).map_err(|p| bad(&p))?;
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if name.len() > 255 || !name.split('/').all(component_ok) {
            return Err(bad(
                "the repository must be lowercase path components of [a-z0-9._-], each \
                 starting and ending with a letter or digit",
            ));
        }
        Ok(Self {
            registry: registry.to_owned(),
            name: name.to_owned(),
        })
    }

    pub(super) fn url(&self, rest: &str) -> String {
        format!("https://{}/v2/{}/{rest}", self.registry, self.name)
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// `REGISTRY/REPOSITORY@sha256:<tool digest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub(crate) repository: Repository,
    /// The tool's digest (the manifest's one layer).
    pub digest: Digest,
}

impl Reference {
    /// Parses `REGISTRY/REPOSITORY@sha256:<hex>`.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let Some((repo, digest)) = text.rsplit_once('@') else {
            return Err(RegistryError::Reference {
                text: printable(text),
                problem: "it must be REGISTRY/REPOSITORY@sha256:<64 hex digits> (pull by \
                          digest only: a tag can be moved)"
                    .into(),
            });
        };
        let digest = Digest::parse(digest).map_err(|e| RegistryError::Reference {
            text: printable(text),
            problem: e.to_string(),
        })?;
        Ok(Self {
            repository: Repository::parse(repo)?,
            digest,
        })
    }

    /// The tag `push` gives the tool's manifest.
    pub fn tag(&self) -> String {
        tag_for(&self.digest)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.repository, self.digest)
    }
}

pub(crate) fn tag_for(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// `host` or `host:port` (a DNS name or an IP address; no scheme, path or user).
pub fn check_registry_name(text: &str) -> Result<(), String> {
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (text, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a registry host or host:port",
            printable(text)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_strict() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost:5000/tools/scan@{d}")).unwrap();
        assert_eq!(r.repository.registry, "localhost:5000");
        assert_eq!(r.repository.name, "tools/scan");
        assert_eq!(r.to_string(), format!("localhost:5000/tools/scan@{d}"));
        assert_eq!(r.tag(), format!("sha256-{}", "a".repeat(64)));
        for bad in [
            "localhost:5000/tools/scan:latest".to_owned(),
            format!("tools@{d}"),
            format!("https://r/x@{d}"),
            format!("r:0/x@{d}"),
            format!("r/X@{d}"),
            format!("r/x/@{d}"),
            format!("r/x@sha256:{}", "A".repeat(64)),
            format!("user@r/x@{d}"),
        ] {
            assert!(Reference::parse(&bad).is_err(), "accepted {bad}");
        }
    }
}
