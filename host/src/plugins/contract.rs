//! Which version of the plugin contract (the WIT package `edge-runner:plugin`) a component
//! was built against, and the adapter that lets this host load plugins built against the
//! previous version.
//!
//! Semver as Cargo reads it: below 1.0 the minor number is the breaking unit. This host
//! implements 0.2 ([`super::WIT_PACKAGE`]) and adapts 0.1 (`wit/compat/0.1.0`): a 0.1
//! verifier has the same interface under another name, and a 0.1 mapper receives the
//! execution record without the posture fields 0.2 added (`seccomp-extra`, `landlock`,
//! `cgroup`). A component that exports the interface under any other version is refused,
//! naming what it targets and what this host supports.
//!
//! The verifier and mapper modules call plugins only through [`VerifierInstance`] and
//! [`MapperInstance`], which speak the current types whatever version the plugin was
//! built against.

use super::bindings::{mapper as m2, v0_1, verifier as v2};
use super::store::PluginState;
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

/// The current contract's version.
pub const CURRENT: &str = "0.2.0";
/// Every contract version this host loads, newest first.
pub const SUPPORTED: [&str; 2] = [CURRENT, "0.1.0"];

const PACKAGE: &str = "edge-runner:plugin";

/// A contract version this host loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// 0.2: the current package.
    Current,
    /// 0.1: the previous package, adapted.
    V0_1,
}

impl Contract {
    /// The package version, as `edge-runner plugins` shows it.
    pub fn version(self) -> &'static str {
        match self {
            Contract::Current => CURRENT,
            Contract::V0_1 => "0.1.0",
        }
    }
}

/// A component that exports a contract interface under a version this host does not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The export as the component names it, for example `edge-runner:plugin/verifier@0.3.0`.
    pub export: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = self.export.split_once('@').map_or("none", |(_, v)| v);
        write!(
            f,
            "it exports `{}`, built against {PACKAGE} version {version}; this host loads \
             {PACKAGE} 0.2.x (current) and 0.1.x (previous, adapted)",
            crate::text::printable(&self.export)
        )
    }
}

/// The contract version under which `component` exports `interface` (`verifier` or
/// `event-mapper`): `Ok(None)` when it does not export that interface of the package at
/// all (it is another kind of plugin, or none).
pub(crate) fn of(
    component: &Component,
    engine: &wasmtime::Engine,
    interface: &str,
) -> Result<Option<Contract>, Unsupported> {
    let prefix = format!("{PACKAGE}/{interface}");
    for (name, _) in component.component_type().exports(engine) {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let version = match rest.strip_prefix('@') {
            Some(v) => v,
            None if rest.is_empty() => "",
            // `edge-runner:plugin/verifierx`: another interface.
            None => continue,
        };
        return match semver_minor(version) {
            Some((0, 2)) => Ok(Some(Contract::Current)),
            Some((0, 1)) => Ok(Some(Contract::V0_1)),
            _ => Err(Unsupported {
                export: name.to_owned(),
            }),
        };
    }
    Ok(None)
}

/// `(major, minor)` of a semver version `major.minor.patch[-pre][+build]`.
fn semver_minor(version: &str) -> Option<(u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let number = |p: Option<&str>| -> Option<u64> {
        let p = p?;
        (!p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0')))
        .then(|| p.parse().ok())?
    };
    let (major, minor, _patch) = (
        number(parts.next())?,
        number(parts.next())?,
        number(parts.next())?,
    );
    parts.next().is_none().then_some((major, minor))
}

/// The generated current types every caller speaks.
pub(crate) use m2::exports::edge_runner::plugin::event_mapper as mapper_wit;
pub(crate) use v2::exports::edge_runner::plugin::verifier as verifier_wit;

/// A verifier, linked and checked for its world, ready to instantiate.
#[derive(Clone)]
pub(crate) enum VerifierPre {
    Current(v2::VerifierPluginPre<PluginState>),
    V0_1(v0_1::verifier::VerifierPluginPre<PluginState>),
}

/// A mapper, linked and checked for its world, ready to instantiate.
#[derive(Clone)]
pub(crate) enum MapperPre {
    Current(m2::EventMapperPluginPre<PluginState>),
    V0_1(v0_1::mapper::EventMapperPluginPre<PluginState>),
}

impl VerifierPre {
    /// Checks that `pre` implements the verifier world of `contract`.
    pub(crate) fn new(
        contract: Contract,
        pre: InstancePre<PluginState>,
    ) -> wasmtime::Result<VerifierPre> {
        Ok(match contract {
            Contract::Current => VerifierPre::Current(v2::VerifierPluginPre::new(pre)?),
            Contract::V0_1 => VerifierPre::V0_1(v0_1::verifier::VerifierPluginPre::new(pre)?),
        })
    }

    pub(crate) fn instantiate(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<VerifierInstance> {
        Ok(match self {
            VerifierPre::Current(p) => VerifierInstance::Current(p.instantiate(store)?),
            VerifierPre::V0_1(p) => VerifierInstance::V0_1(p.instantiate(store)?),
        })
    }

    pub(crate) fn contract(&self) -> Contract {
        match self {
            VerifierPre::Current(_) => Contract::Current,
            VerifierPre::V0_1(_) => Contract::V0_1,
        }
    }
}

impl MapperPre {
    /// Checks that `pre` implements the event-mapper world of `contract`.
    pub(crate) fn new(
        contract: Contract,
        pre: InstancePre<PluginState>,
    ) -> wasmtime::Result<MapperPre> {
        Ok(match contract {
            Contract::Current => MapperPre::Current(m2::EventMapperPluginPre::new(pre)?),
            Contract::V0_1 => MapperPre::V0_1(v0_1::mapper::EventMapperPluginPre::new(pre)?),
        })
    }

    pub(crate) fn instantiate(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<MapperInstance> {
        Ok(match self {
            MapperPre::Current(p) => MapperInstance::Current(p.instantiate(store)?),
            MapperPre::V0_1(p) => MapperInstance::V0_1(p.instantiate(store)?),
        })
    }

    pub(crate) fn contract(&self) -> Contract {
        match self {
            MapperPre::Current(_) => Contract::Current,
            MapperPre::V0_1(_) => Contract::V0_1,
        }
    }
}

/// One verifier instance, called in the current types.
pub(crate) enum VerifierInstance {
    Current(v2::VerifierPlugin),
    V0_1(v0_1::verifier::VerifierPlugin),
}

/// One mapper instance, called in the current types.
pub(crate) enum MapperInstance {
    Current(m2::EventMapperPlugin),
    V0_1(v0_1::mapper::EventMapperPlugin),
}

impl VerifierInstance {
    pub(crate) fn info(
        &self,
        s: &mut Store<PluginState>,
    ) -> wasmtime::Result<verifier_wit::PluginInfo> {
        match self {
            VerifierInstance::Current(b) => b.edge_runner_plugin_verifier().call_info(s),
            VerifierInstance::V0_1(b) => {
                Ok(old::info(b.edge_runner_plugin_verifier().call_info(s)?))
            }
        }
    }

    pub(crate) fn validate_key(
        &self,
        s: &mut Store<PluginState>,
        alg: &str,
        jwk: &verifier_wit::Jwk,
    ) -> wasmtime::Result<Result<(), verifier_wit::KeyError>> {
        match self {
            VerifierInstance::Current(b) => b
                .edge_runner_plugin_verifier()
                .call_validate_key(s, alg, jwk),
            VerifierInstance::V0_1(b) => Ok(b
                .edge_runner_plugin_verifier()
                .call_validate_key(s, alg, &old::jwk(jwk))?
                .map_err(old::key_error)),
        }
    }

    pub(crate) fn verify(
        &self,
        s: &mut Store<PluginState>,
        alg: &str,
        jwk: &verifier_wit::Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> wasmtime::Result<Result<(), verifier_wit::VerifyError>> {
        match self {
            VerifierInstance::Current(b) => {
                b.edge_runner_plugin_verifier()
                    .call_verify(s, alg, jwk, signing_input, signature)
            }
            VerifierInstance::V0_1(b) => Ok(b
                .edge_runner_plugin_verifier()
                .call_verify(s, alg, &old::jwk(jwk), signing_input, signature)?
                .map_err(old::verify_error)),
        }
    }
}

impl MapperInstance {
    pub(crate) fn info(
        &self,
        s: &mut Store<PluginState>,
    ) -> wasmtime::Result<mapper_wit::MapperInfo> {
        match self {
            MapperInstance::Current(b) => b.edge_runner_plugin_event_mapper().call_info(s),
            MapperInstance::V0_1(b) => Ok(old::mapper_info(
                b.edge_runner_plugin_event_mapper().call_info(s)?,
            )),
        }
    }

    pub(crate) fn to_event(
        &self,
        s: &mut Store<PluginState>,
        record: &mapper_wit::ExecutionRecord,
    ) -> wasmtime::Result<Result<mapper_wit::CloudEvent, String>> {
        match self {
            MapperInstance::Current(b) => {
                b.edge_runner_plugin_event_mapper().call_to_event(s, record)
            }
            MapperInstance::V0_1(b) => Ok(b
                .edge_runner_plugin_event_mapper()
                .call_to_event(s, &old::record(record))?
                .map(old::event)),
        }
    }
}

/// Field-for-field conversions between the 0.1 and the current types: what changed
/// between the two versions is exactly what these functions drop.
mod old {
    use super::{mapper_wit as new_m, verifier_wit as new_v};
    use crate::plugins::bindings::v0_1::mapper::exports::edge_runner::plugin::event_mapper as m;
    use crate::plugins::bindings::v0_1::verifier::exports::edge_runner::plugin::verifier as v;

    pub(super) fn info(i: v::PluginInfo) -> new_v::PluginInfo {
        new_v::PluginInfo {
            name: i.name,
            version: i.version,
            algorithms: i
                .algorithms
                .into_iter()
                .map(|a| new_v::Algorithm {
                    name: a.name,
                    key_type: a.key_type,
                    curve: a.curve,
                })
                .collect(),
        }
    }

    pub(super) fn jwk(k: &new_v::Jwk) -> v::Jwk {
        v::Jwk {
            members: k
                .members
                .iter()
                .map(|m| v::JwkMember {
                    name: m.name.clone(),
                    value: m.value.clone(),
                })
                .collect(),
        }
    }

    pub(super) fn key_error(e: v::KeyError) -> new_v::KeyError {
        match e {
            v::KeyError::UnsupportedAlgorithm(a) => new_v::KeyError::UnsupportedAlgorithm(a),
            v::KeyError::WrongKeyType(m) => new_v::KeyError::WrongKeyType(m),
            v::KeyError::Malformed(m) => new_v::KeyError::Malformed(m),
            v::KeyError::WeakOrInvalid(m) => new_v::KeyError::WeakOrInvalid(m),
        }
    }

    pub(super) fn verify_error(e: v::VerifyError) -> new_v::VerifyError {
        match e {
            v::VerifyError::Mismatch => new_v::VerifyError::Mismatch,
            v::VerifyError::MalformedSignature(m) => new_v::VerifyError::MalformedSignature(m),
            v::VerifyError::Key(k) => new_v::VerifyError::Key(key_error(k)),
            v::VerifyError::UnsupportedAlgorithm(a) => new_v::VerifyError::UnsupportedAlgorithm(a),
        }
    }

    pub(super) fn mapper_info(i: m::MapperInfo) -> new_m::MapperInfo {
        new_m::MapperInfo {
            name: i.name,
            version: i.version,
            event_types: i.event_types,
        }
    }

    fn stream(c: &new_m::CapturedOutput) -> m::CapturedOutput {
        m::CapturedOutput {
            bytes: c.bytes.clone(),
            total_bytes: c.total_bytes,
            truncated: c.truncated,
            captured_bytes: c.captured_bytes,
            captured_sha256: c.captured_sha256.clone(),
        }
    }

    /// The record a 0.1 mapper receives: the posture without `seccomp-extra`, `landlock`
    /// and `cgroup` (a 0.1 mapper cannot report them; the event says what it knows).
    pub(super) fn record(r: &new_m::ExecutionRecord) -> m::ExecutionRecord {
        let disposition = match &r.disposition {
            new_m::Disposition::Completed(o) => m::Disposition::Completed(m::Outcome {
                termination: match o.termination {
                    new_m::Termination::Exited(c) => m::Termination::Exited(c),
                    new_m::Termination::Signaled(s) => m::Termination::Signaled(s),
                },
                timed_out: o.timed_out,
                stdout: stream(&o.stdout),
                stderr: stream(&o.stderr),
                wall_ms: o.wall_ms,
                cpu_ms: o.cpu_ms,
                peak_memory_bytes: o.peak_memory_bytes,
                posture: m::SandboxPosture {
                    backend: o.posture.backend.clone(),
                    namespaces: o.posture.namespaces.clone(),
                    capabilities: o.posture.capabilities.clone(),
                    seccomp: o.posture.seccomp.clone(),
                    apparmor: o.posture.apparmor.clone(),
                    network: o.posture.network.clone(),
                    uid: o.posture.uid,
                    gid: o.posture.gid,
                    no_new_privs: o.posture.no_new_privs,
                    read_only_root: o.posture.read_only_root,
                },
            }),
            new_m::Disposition::Denied(d) => m::Disposition::Denied(m::Denial {
                stage: d.stage.clone(),
                reason: d.reason.clone(),
                message: d.message.clone(),
            }),
        };
        let t = &r.task;
        m::ExecutionRecord {
            event_id: r.event_id.clone(),
            time: r.time.clone(),
            source: r.source.clone(),
            task: m::Task {
                task_id: t.task_id.clone(),
                tenant_id: t.tenant_id.clone(),
                operator_id: t.operator_id.clone(),
                target_urn: t.target_urn.clone(),
                tool_sha256: t.tool_sha256.clone(),
                action: t.action.clone(),
                manifest_jws: t.manifest_jws.clone(),
                manifest_sha256: t.manifest_sha256.clone(),
            },
            disposition,
        }
    }

    fn value(v: m::AttributeValue) -> new_m::AttributeValue {
        match v {
            m::AttributeValue::String(s) => new_m::AttributeValue::String(s),
            m::AttributeValue::Integer(i) => new_m::AttributeValue::Integer(i),
            m::AttributeValue::Boolean(b) => new_m::AttributeValue::Boolean(b),
            m::AttributeValue::Uri(u) => new_m::AttributeValue::Uri(u),
        }
    }

    pub(super) fn event(e: m::CloudEvent) -> new_m::CloudEvent {
        new_m::CloudEvent {
            id: e.id,
            source: e.source,
            type_: e.type_,
            subject: e.subject,
            time: e.time,
            datacontenttype: e.datacontenttype,
            dataschema: e.dataschema,
            data: e.data.map(|d| match d {
                m::EventData::Json(j) => new_m::EventData::Json(j),
                m::EventData::Binary(b) => new_m::EventData::Binary(b),
            }),
            extensions: e
                .extensions
                .into_iter()
                .map(|x| new_m::Extension {
                    name: x.name,
                    value: value(x.value),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_minor_reads_only_well_formed_versions() {
        assert_eq!(semver_minor("0.2.0"), Some((0, 2)));
        assert_eq!(semver_minor("0.2.17"), Some((0, 2)));
        assert_eq!(semver_minor("0.1.0-rc.1+build.5"), Some((0, 1)));
        assert_eq!(semver_minor("1.0.0"), Some((1, 0)));
        for bad in [
            "", "0.2", "0.2.0.1", "00.2.0", "0.02.0", "a.b.c", "0..0", "0.2.x",
        ] {
            assert_eq!(semver_minor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_refusal_names_the_export_and_the_supported_versions() {
        let text = Unsupported {
            export: "edge-runner:plugin/verifier@0.3.0".into(),
        }
        .to_string();
        assert!(text.contains("edge-runner:plugin/verifier@0.3.0"), "{text}");
        assert!(text.contains("version 0.3.0"), "{text}");
        assert!(text.contains("0.2.x (current) and 0.1.x"), "{text}");
        let text = Unsupported {
            export: "edge-runner:plugin/verifier".into(),
        }
        .to_string();
        assert!(text.contains("version none"), "{text}");
    }
}
