//! `edge-runner apparmor install` and `print`: put the shipped AppArmor profiles in place
//! and load them, or show them.

use super::{CmdResult, Exit, Failure};
use clap::{Args, Subcommand};
use edge_runner::sandbox::apparmor::{self, AppArmorError};
use std::io::Write as _;
use std::path::PathBuf;

/// Manage the AppArmor profiles the sandbox confines tools (and runsc) with.
#[derive(Debug, Args)]
pub struct AppArmorArgs {
    #[command(subcommand)]
    pub command: AppArmorCommand,
}

#[derive(Debug, Subcommand)]
pub enum AppArmorCommand {
    Install(InstallArgs),
    Print(PrintArgs),
}

/// Write the edge-runner-tool and edge-runner-runsc profiles and load them.
///
/// Writes each profile to DIR and loads it with `apparmor_parser --replace --write-cache`.
/// On a kernel without AppArmor nothing is written and the command says so (exit 4); the
/// sandbox then refuses tasks while [sandbox] apparmor = "required".
///
/// Example: edge-runner apparmor install
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Where profiles are written.
    #[arg(long, value_name = "DIR", default_value = apparmor::PROFILE_DIR)]
    pub dir: PathBuf,
    /// The AppArmor parser.
    #[arg(long, value_name = "PATH", default_value = "apparmor_parser")]
    pub parser: PathBuf,
}

/// Print a shipped profile.
///
/// Example: edge-runner apparmor print tool
#[derive(Debug, Args)]
pub struct PrintArgs {
    /// Which profile.
    #[arg(value_parser = ["tool", "runsc"], default_value = "tool")]
    pub which: String,
}

pub fn run(args: AppArmorArgs) -> CmdResult {
    match args.command {
        AppArmorCommand::Install(a) => match apparmor::install(&a.dir, &a.parser) {
            Ok(paths) => {
                let mut out = std::io::stdout().lock();
                for p in paths {
                    writeln!(out, "installed and loaded {}", p.display()).map_err(io_fail)?;
                }
                Ok(Exit::Ok)
            }
            Err(e @ AppArmorError::Unavailable { .. }) => Err(Failure::Runner(e.into())),
            Err(e) => Err(Failure::Runner(e.into())),
        },
        AppArmorCommand::Print(a) => {
            let text = if a.which == "runsc" {
                apparmor::RUNSC_PROFILE.1
            } else {
                apparmor::TOOL_PROFILE.1
            };
            std::io::stdout()
                .lock()
                .write_all(text.as_bytes())
                .map_err(io_fail)?;
            Ok(Exit::Ok)
        }
    }
}

fn io_fail(e: std::io::Error) -> Failure {
    Failure::Runner(anyhow::Error::new(e).context("failed to write the output"))
}
