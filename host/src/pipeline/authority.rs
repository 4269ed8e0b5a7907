//! The armory stage's question "may this digest run for this tenant?", answered by the
//! mode the configuration selects: `local` (the index's `armory authorize` mark) or
//! `signed` (the installed authorization statement, verified through the same
//! [`SignatureVerifier`] as tasks, with the runner's key set or a dedicated armory key
//! set). In signed mode an authorized digest missing from the armory is pulled from the
//! statement's `source` when pull-on-demand is on and the registry is allowed. This module
//! orders those steps; the checks live in `armory::policy` and `armory::registry`.

use crate::armory::policy::{Gate, Judge};
use crate::armory::registry::{Client, Reference, RegistryError, Repository};
use crate::armory::{Armory, ResolvedTool};
use crate::config::{AuthorizationMode, Config};
use crate::manifest::CheckedManifest;
use crate::reason::Refusal;
use crate::verify::SignatureVerifier;
use chrono::{TimeDelta, Utc};
use std::path::Path;

/// Pull-on-demand: the client and the registries it may contact.
#[derive(Debug)]
pub(crate) struct OnDemand {
    pub(crate) client: Client,
    pub(crate) registries: Vec<String>,
}

/// How the runner decides authorization.
#[derive(Debug)]
pub(crate) struct Authority {
    pub(crate) mode: AuthorizationMode,
    /// A verifier for statements with the dedicated armory key set, when configured.
    pub(crate) statement_verifier: Option<SignatureVerifier>,
    pub(crate) audience: Vec<String>,
    pub(crate) skew: TimeDelta,
    pub(crate) gate: Gate,
    pub(crate) on_demand: Option<OnDemand>,
}

impl Authority {
    pub(crate) fn new(
        config: &Config,
        statement_verifier: Option<SignatureVerifier>,
        on_demand: Option<OnDemand>,
    ) -> Self {
        Self {
            mode: config.armory_settings.mode(),
            statement_verifier,
            audience: config.runner.audience(),
            skew: TimeDelta::seconds(
                i64::try_from(config.claims.clock_skew_secs).unwrap_or(i64::MAX),
            ),
            gate: Gate::default(),
            on_demand,
        }
    }

    /// The judge of statements: the dedicated verifier, else the task verifier.
    pub(crate) fn judge<'a>(&'a self, task_verifier: &'a SignatureVerifier) -> Judge<'a> {
        Judge {
            verifier: self.statement_verifier.as_ref().unwrap_or(task_verifier),
            audience: &self.audience,
            skew: self.skew,
        }
    }

    /// Authorizes and resolves the manifest's tool.
    pub(crate) fn resolve(
        &self,
        armory: &Armory,
        task_verifier: &SignatureVerifier,
        manifest: &CheckedManifest,
        scratch: &Path,
    ) -> Result<ResolvedTool, Refusal> {
        let digest = manifest.tool();
        match self.mode {
            AuthorizationMode::Local => Ok(armory.resolve(digest, scratch)?),
            AuthorizationMode::Signed => {
                let judge = self.judge(task_verifier);
                let tenant = &manifest.task().tenant_id;
                let (_, tool) = self
                    .gate
                    .authorize(armory, &judge, digest, tenant, Utc::now())?;
                if let Some(on_demand) = &self.on_demand
                    && !armory.holds(digest)?
                {
                    let source = tool
                        .source
                        .as_deref()
                        .ok_or_else(|| RegistryError::NoSource {
                            digest: digest.to_string(),
                        })?;
                    let repository = Repository::parse(source)?;
                    if !on_demand.registries.contains(&repository.registry) {
                        return Err(RegistryError::NotAllowed {
                            digest: digest.to_string(),
                            registry: repository.registry,
                            allowed: on_demand.registries.join(", "),
                        }
                        .into());
                    }
                    let reference = Reference {
                        repository,
                        digest: digest.clone(),
                    };
                    let pulled = on_demand.client.pull(
                        armory,
                        &reference,
                        None,
                        Some(&tool.name),
                        "pull-on-demand",
                        Utc::now(),
                    )?;
                    tracing::info!(reference = %reference, size = pulled.size, manifest = %pulled.manifest, "pulled an authorized tool on demand");
                }
                Ok(armory.resolve_signed(digest, scratch)?)
            }
        }
    }
}

/// The registry client the configuration describes.
pub(crate) fn client(config: &Config) -> Result<Client, RegistryError> {
    Client::new(
        &config.armory_settings.registry_tls(),
        std::time::Duration::from_secs(config.armory_settings.pull.timeout_secs),
    )
}
