//! Which backend serves which algorithm: the embedded defaults (`default` in
//! `plugins/shipped.toml`), replaced per algorithm by the configuration's choice, an
//! embedded backend by name or a pinned file. Pure: it loads nothing (`registry` loads
//! what this decides), so every refusal here is testable without a plugin.

use super::super::PinnedFile;
use super::super::embedded::Builtin;
use std::collections::BTreeMap;

/// What the configuration selects for one algorithm (`[plugins.verifiers]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifierChoice {
    /// An embedded backend, by name: `ES256 = "es256-libcrux"`.
    Builtin(String),
    /// A plugin file pinned by sha256: `[plugins.verifiers.ES256] path = ..., sha256 = ...`.
    File(PinnedFile),
}

impl From<PinnedFile> for VerifierChoice {
    fn from(file: PinnedFile) -> Self {
        VerifierChoice::File(file)
    }
}

/// The plugin chosen for one algorithm.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Planned<'a> {
    Builtin(&'a Builtin),
    File(&'a PinnedFile),
}

/// The configuration asks for something the embedded backends cannot give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// `plugins.verifiers.<alg>` names a backend this binary does not embed.
    #[error(
        "plugins.verifiers.{alg} names the backend \"{name}\", which this binary does not \
         embed; embedded backends for {alg}: {available} (every embedded verifier: {all}; \
         see `edge-runner plugins`)"
    )]
    UnknownBackend {
        /// The algorithm configured.
        alg: String,
        /// The backend name given.
        name: String,
        /// The embedded backends for `alg`, comma-separated.
        available: String,
        /// Every embedded verifier, comma-separated.
        all: String,
    },
    /// `plugins.verifiers.<alg>` names an embedded backend for another algorithm.
    #[error(
        "plugins.verifiers.{alg} names the backend \"{name}\", which implements {implements}, \
         not {alg}; embedded backends for {alg}: {available}"
    )]
    WrongAlgorithm {
        /// The algorithm configured.
        alg: String,
        /// The backend name given.
        name: String,
        /// The algorithms that backend implements.
        implements: String,
        /// The embedded backends for `alg`, comma-separated.
        available: String,
    },
    /// Two plugins are configured for one algorithm.
    #[error(
        "two plugins are configured for {alg}: \"{first}\" and \"{second}\"; an algorithm has \
         one verifier, so select one of them with plugins.verifiers.{alg}"
    )]
    Conflict {
        /// The algorithm.
        alg: String,
        /// The first backend's name.
        first: String,
        /// The second backend's name.
        second: String,
    },
}

fn names<'a>(list: impl Iterator<Item = &'a Builtin>) -> String {
    let all: Vec<&str> = list.map(|b| b.name).collect();
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.join(", ")
    }
}

/// Decides the plugin for every algorithm that has one: each configured choice, and the
/// embedded default of every other algorithm.
pub(crate) fn plan<'a>(
    builtins: &'a [Builtin],
    choices: &'a BTreeMap<String, VerifierChoice>,
) -> Result<BTreeMap<String, Planned<'a>>, SelectError> {
    let mut planned: BTreeMap<String, Planned<'a>> = BTreeMap::new();
    for backend in builtins {
        for alg in backend.default_for {
            if choices.contains_key(*alg) {
                continue;
            }
            if let Some(Planned::Builtin(first)) = planned.get(*alg) {
                return Err(SelectError::Conflict {
                    alg: (*alg).to_owned(),
                    first: first.name.to_owned(),
                    second: backend.name.to_owned(),
                });
            }
            planned.insert((*alg).to_owned(), Planned::Builtin(backend));
        }
    }
    for (alg, choice) in choices {
        let for_alg = || {
            names(
                builtins
                    .iter()
                    .filter(|b| b.algorithms.contains(&alg.as_str())),
            )
        };
        let entry = match choice {
            VerifierChoice::File(file) => Planned::File(file),
            VerifierChoice::Builtin(name) => {
                let Some(backend) = builtins.iter().find(|b| b.name == name) else {
                    return Err(SelectError::UnknownBackend {
                        alg: alg.clone(),
                        name: crate::text::printable(name),
                        available: for_alg(),
                        all: names(builtins.iter()),
                    });
                };
                if !backend.algorithms.contains(&alg.as_str()) {
                    return Err(SelectError::WrongAlgorithm {
                        alg: alg.clone(),
                        name: name.clone(),
                        implements: backend.algorithms.join(", "),
                        available: for_alg(),
                    });
                }
                Planned::Builtin(backend)
            }
        };
        planned.insert(alg.clone(), entry);
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn builtin(
        name: &'static str,
        algorithms: &'static [&'static str],
        default_for: &'static [&'static str],
    ) -> Builtin {
        Builtin {
            name,
            package: "p",
            bytes: &[],
            sha256: "sha256:00",
            algorithms,
            default_for,
        }
    }

    const SHIPPED: &[Builtin] = &[
        builtin("es256-a", &["ES256"], &["ES256"]),
        builtin("es256-b", &["ES256"], &[]),
        builtin("hs256", &["HS256"], &["HS256"]),
    ];

    fn chosen(plan: &BTreeMap<String, Planned<'_>>, alg: &str) -> String {
        match plan.get(alg) {
            Some(Planned::Builtin(backend)) => backend.name.to_owned(),
            Some(Planned::File(f)) => f.path.display().to_string(),
            None => "none".to_owned(),
        }
    }

    #[test]
    fn the_defaults_serve_when_nothing_is_configured() {
        let choices = BTreeMap::new();
        let p = plan(SHIPPED, &choices).unwrap();
        assert_eq!(chosen(&p, "ES256"), "es256-a");
        assert_eq!(chosen(&p, "HS256"), "hs256");
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn one_configuration_line_swaps_the_backend() {
        let choices = BTreeMap::from([(
            "ES256".to_owned(),
            VerifierChoice::Builtin("es256-b".into()),
        )]);
        let p = plan(SHIPPED, &choices).unwrap();
        assert_eq!(chosen(&p, "ES256"), "es256-b");
        assert_eq!(chosen(&p, "HS256"), "hs256");
    }

    #[test]
    fn an_unknown_backend_is_refused_listing_the_available_ones() {
        let choices = BTreeMap::from([(
            "ES256".to_owned(),
            VerifierChoice::Builtin("es256-ring".into()),
        )]);
        let e = plan(SHIPPED, &choices).unwrap_err().to_string();
        assert!(
            e.contains("es256-ring") && e.contains("es256-a, es256-b") && e.contains("hs256"),
            "{e}"
        );
    }

    #[test]
    fn a_backend_for_another_algorithm_is_refused() {
        let choices =
            BTreeMap::from([("ES256".to_owned(), VerifierChoice::Builtin("hs256".into()))]);
        let e = plan(SHIPPED, &choices).unwrap_err().to_string();
        assert!(e.contains("implements HS256, not ES256"), "{e}");
    }

    #[test]
    fn two_plugins_for_one_algorithm_are_refused_naming_both() {
        const TWO: &[Builtin] = &[
            builtin("es256-a", &["ES256"], &["ES256"]),
            builtin("es256-b", &["ES256"], &["ES256"]),
        ];
        let choices = BTreeMap::new();
        let e = plan(TWO, &choices).unwrap_err().to_string();
        assert!(e.contains("\"es256-a\" and \"es256-b\""), "{e}");
        // A configured choice settles it.
        let choices = BTreeMap::from([(
            "ES256".to_owned(),
            VerifierChoice::Builtin("es256-b".into()),
        )]);
        assert_eq!(chosen(&plan(TWO, &choices).unwrap(), "ES256"), "es256-b");
    }
}
