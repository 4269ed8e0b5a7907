//! The `edge-runner` command line: parse flags, call the library, print the error chain
//! once, map the outcome to a documented exit code. No pipeline logic lives here.

mod cmd;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = <cmd::Cli as clap::Parser>::parse();
    cmd::init_logging(&cli.global);
    let format = cli.global.log_format;
    match cmd::run(cli) {
        Ok(code) => code.into(),
        Err(failure) => {
            failure.report(format);
            failure.exit_code().into()
        }
    }
}
