//! The `env` field: variable names and values. A name must be on the allow list (the
//! default set below, plus what the operator's `[env]` section allows, globally or for
//! one tool digest), and never on the deny list (loader, shell and interpreter
//! injection, names the runner sets itself), which no configuration can lift. Pure
//! functions; no I/O.

use super::fields::{MAX_ENV, MAX_ENV_NAME_LEN, MAX_ENV_VALUE_LEN, as_object, as_str, invalid};
use super::{EnvConfig, ManifestError};
use crate::digest::Digest;
use crate::text::printable;
use serde_json::Value;

/// Names every tool may receive without configuration: locale, time zone, terminal size
/// and output buffering. None of them names code to run or a file to load code from.
pub const DEFAULT_ALLOWED_ENV: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_COLLATE",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_MONETARY",
    "LC_NUMERIC",
    "LC_TIME",
    "TZ",
    "NO_COLOR",
    "COLUMNS",
    "LINES",
    "PYTHONUNBUFFERED",
    "PYTHONIOENCODING",
    "PYTHONDONTWRITEBYTECODE",
];

/// Environment names the tool may not set, with the reason. Exact names, compared
/// case-insensitively. Most come from glibc's `UNSECURE_ENVVARS` (what the loader strips
/// for setuid programs), the rest make an interpreter run code the manifest does not name.
const DENIED_ENV: &[(&str, &str)] = &[
    ("PATH", "the runner sets the tool's PATH"),
    ("HOME", "the runner sets it"),
    ("TMPDIR", "the runner sets it to the sandbox's private /tmp"),
    ("PWD", "the runner sets it"),
    ("SHELL", "the runner sets it"),
    ("IFS", "it changes how shells split words"),
    ("ENV", "it makes sh run a startup file"),
    ("BASH_ENV", "it makes bash run a startup file"),
    ("SHELLOPTS", "it changes bash's behaviour"),
    ("BASHOPTS", "it changes bash's behaviour"),
    ("PS4", "bash expands it, running code"),
    ("PROMPT_COMMAND", "bash runs it"),
    ("CDPATH", "it changes where cd goes"),
    ("GLOBIGNORE", "it changes shell globbing"),
    ("GCONV_PATH", "glibc loads code from it"),
    ("GETCONF_DIR", "glibc reads it (UNSECURE_ENVVARS)"),
    ("GLIBC_TUNABLES", "it tunes the loader (CVE-2023-4911)"),
    ("HOSTALIASES", "glibc reads it (UNSECURE_ENVVARS)"),
    ("LOCALDOMAIN", "glibc reads it (UNSECURE_ENVVARS)"),
    ("LOCPATH", "glibc loads locale data from it"),
    ("MALLOC_TRACE", "glibc writes a file named by it"),
    ("NIS_PATH", "glibc reads it (UNSECURE_ENVVARS)"),
    ("NLSPATH", "glibc loads message catalogs from it"),
    ("RESOLV_HOST_CONF", "glibc reads it (UNSECURE_ENVVARS)"),
    ("RES_OPTIONS", "glibc reads it (UNSECURE_ENVVARS)"),
    ("TZDIR", "glibc loads time zone files from it"),
    ("PYTHONPATH", "python imports code from it"),
    ("PYTHONHOME", "python loads its library from it"),
    ("PYTHONSTARTUP", "python runs it"),
    ("PYTHONINSPECT", "it makes python interactive"),
    ("PYTHONUSERBASE", "python imports code from it"),
    ("PYTHONBREAKPOINT", "python calls it"),
    ("PERL5LIB", "perl loads code from it"),
    ("PERLLIB", "perl loads code from it"),
    ("PERL5OPT", "perl runs it as options"),
    ("PERL5DB", "perl runs it"),
    ("RUBYLIB", "ruby loads code from it"),
    ("RUBYOPT", "ruby runs it as options"),
    ("NODE_OPTIONS", "node runs it as options"),
    ("NODE_PATH", "node loads code from it"),
    ("JAVA_TOOL_OPTIONS", "the JVM runs it as options"),
    ("_JAVA_OPTIONS", "the JVM runs it as options"),
    ("JDK_JAVA_OPTIONS", "the JVM runs it as options"),
    ("CLASSPATH", "the JVM loads code from it"),
];

/// Denied name prefixes, compared case-insensitively.
const DENIED_ENV_PREFIXES: &[(&str, &str)] = &[
    (
        "LD_",
        "the dynamic loader reads LD_* (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, ...)",
    ),
    ("DYLD_", "the dynamic loader reads DYLD_*"),
    ("BASH_FUNC_", "bash imports functions from it"),
    (
        "EDGE_RUNNER_",
        "the EDGE_RUNNER_ prefix is reserved for the runner",
    ),
];

/// A C identifier of bounded length.
pub(crate) fn valid_name(name: &str) -> bool {
    name.len() <= MAX_ENV_NAME_LEN
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `env`: names are C identifiers outside the deny list and on the allow list for `tool`;
/// values are bounded strings.
pub(crate) fn env(
    v: &Value,
    policy: &EnvConfig,
    tool: &Digest,
) -> Result<Vec<(String, String)>, ManifestError> {
    let map = as_object(v, "env")?;
    if map.len() > MAX_ENV {
        return Err(invalid(
            "env",
            format!(
                "has {} variables; at most {MAX_ENV} are accepted",
                map.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let shown = printable(name);
        if !valid_name(name) {
            return Err(invalid(
                &format!("env.{shown}"),
                format!(
                    "is not a valid variable name (letters, digits and _, not starting with a \
                     digit, at most {MAX_ENV_NAME_LEN} characters)"
                ),
            ));
        }
        if let Some(why) = env_denied(name) {
            return Err(ManifestError::EnvForbidden {
                name: name.clone(),
                why,
            });
        }
        if !policy.allows(name, tool) {
            return Err(ManifestError::EnvNotAllowed { name: name.clone() });
        }
        let field = format!("env.{name}");
        let value = as_str(value, &field)?;
        if value.len() > MAX_ENV_VALUE_LEN {
            return Err(invalid(
                &field,
                format!("is longer than {MAX_ENV_VALUE_LEN} bytes"),
            ));
        }
        if value.contains('\0') {
            return Err(invalid(&field, "contains a NUL character"));
        }
        out.push((name.clone(), value.to_owned()));
    }
    Ok(out)
}

/// Why `name` may not be set by a manifest, if it may not.
pub fn env_denied(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    DENIED_ENV
        .iter()
        .find(|(n, _)| *n == upper)
        .map(|(_, why)| *why)
        .or_else(|| {
            DENIED_ENV_PREFIXES
                .iter()
                .find(|(p, _)| upper.starts_with(p))
                .map(|(_, why)| *why)
        })
}

/// The denied names and prefixes (a prefix ends with `_`), for the schema and docs.
pub fn denied_env_names() -> impl Iterator<Item = &'static str> {
    DENIED_ENV.iter().map(|(n, _)| *n)
}

/// The denied name prefixes (each ends with `_`), for the schema and docs.
pub fn denied_env_prefixes() -> impl Iterator<Item = &'static str> {
    DENIED_ENV_PREFIXES.iter().map(|(p, _)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_denylist_is_case_insensitive_and_covers_prefixes() {
        for name in [
            "LD_PRELOAD",
            "ld_preload",
            "LD_AUDIT",
            "PATH",
            "Path",
            "BASH_ENV",
            "GLIBC_TUNABLES",
            "EDGE_RUNNER_X",
            "PYTHONPATH",
        ] {
            assert!(env_denied(name).is_some(), "{name}");
        }
        for name in ["LANG", "LC_ALL", "TZ", "PYTHONUNBUFFERED", "LDX", "MYPATH"] {
            assert!(env_denied(name).is_none(), "{name}");
        }
    }
}
