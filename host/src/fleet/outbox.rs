//! The outbox: events `serve` could not publish to JetStream (server down, no
//! acknowledgement in time), kept on disk until they are. One file per event under
//! `<state_dir>/events/nats-outbox/`, named so that they sort by creation, holding the
//! subject, the event id (sent again as `Nats-Msg-Id`, so a republish the server already
//! has is deduplicated) and the event itself. A task is acknowledged only once its event
//! is published or here; nothing in the outbox is removed before the server acknowledged
//! it.

use crate::durable;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One event waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The JetStream subject.
    pub subject: String,
    /// The CloudEvents id, sent as `Nats-Msg-Id`.
    pub id: String,
    /// The serialized event.
    pub event: String,
}

/// The outbox directory.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// The outbox under `state_dir`, created 0700 if missing.
    pub fn open(state_dir: &Path) -> Result<Self, crate::fsperm::PermError> {
        let dir = state_dir.join("events").join("nats-outbox");
        crate::fsperm::ensure_private_dir(&dir, "event outbox")?;
        Ok(Self { dir })
    }

    /// Keeps `pending` durably (file and directory fsynced).
    pub fn put(&self, pending: &Pending) -> std::io::Result<PathBuf> {
        let name = format!("{}.json", uuid::Uuid::now_v7().simple());
        let path = self.dir.join(name);
        let bytes = serde_json::to_vec(pending).map_err(std::io::Error::other)?;
        durable::create_new(&path, &bytes, 0o600)?;
        Ok(path)
    }

    /// Every waiting event, oldest first. Files it cannot read are reported and left in
    /// place (never dropped).
    pub fn list(&self) -> Vec<(PathBuf, Pending)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(durable::TMP_PREFIX))
            })
            .collect();
        paths.sort();
        paths
            .into_iter()
            .filter_map(|p| {
                let read = std::fs::read(&p)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Pending>(&b).map_err(|e| e.to_string()));
                match read {
                    Ok(pending) => Some((p, pending)),
                    Err(e) => {
                        tracing::error!(path = %p.display(), error = %e, "unreadable event in the outbox; left in place");
                        None
                    }
                }
            })
            .collect()
    }

    /// How many events wait.
    pub fn depth(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Forgets a published event.
    pub fn remove(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)?;
        durable::sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_back_in_order_and_survive_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path()).unwrap();
        for i in 0..3 {
            o.put(&Pending {
                subject: format!("events.acme.t{i}"),
                id: format!("id-{i}"),
                event: "{}".into(),
            })
            .unwrap();
        }
        let list = o.list();
        assert_eq!(
            list.iter().map(|(_, p)| p.id.as_str()).collect::<Vec<_>>(),
            ["id-0", "id-1", "id-2"]
        );
        assert_eq!(o.depth(), 3);
        o.remove(&list[0].0).unwrap();
        assert_eq!(Outbox::open(dir.path()).unwrap().depth(), 2);
    }
}
