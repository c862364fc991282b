//! `cobrar-gpu`: thin entry point — parse the command line, run the command, map errors to an exit code.

use clap::Parser;

fn main() {
    let cli = cobrar_gpu::cli::Cli::parse();
    if let Err(err) = cobrar_gpu::cli::run(cli) {
        // One line: the error and its causes joined by ": " (anyhow's alternate form). Never a panic.
        eprintln!("error: {err:#}");
        std::process::exit(2);
    }
}
