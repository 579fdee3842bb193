//! The `larder` command: parse arguments, run one command, print the error once, exit with
//! the code its kind maps to (`cli/exit.rs`, README "Exit codes").

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::output::init_logging(args.log_level());
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("larder: error: {}", cli::exit::message(&e));
            ExitCode::from(cli::exit::code_for(&e))
        }
    }
}
