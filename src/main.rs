//! The `forge` binary: parse the command line, run it, map the outcome to an exit status.
use std::process::ExitCode;

fn main() -> ExitCode {
    forge::cli::main()
}
