//! `cobrar-gpu`: thin entry point — parse the command line, run the command, map errors to an exit code.

use clap::Parser;

fn main() {
    // Mesa's device-select Vulkan layer prints `XDG_RUNTIME_DIR is invalid or not set` on machines
    // without a desktop session; it selects nothing we need. Silence it unless the user set it.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: single-threaded here: no other thread reads the environment yet.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    // An empty `COBRAR_DATA_DIR=` means "no data directory", as for any unset variable; clap would
    // otherwise read it as `--data-dir ''` and refuse the empty value.
    if std::env::var_os("COBRAR_DATA_DIR").is_some_and(|v| v.is_empty()) {
        // SAFETY: as above, no other thread exists yet.
        unsafe { std::env::remove_var("COBRAR_DATA_DIR") };
    }
    let cli = cobrar_gpu::cli::Cli::parse();
    if let Err(err) = cobrar_gpu::cli::run(cli) {
        if err.downcast_ref::<cobrar_gpu::cli::ClosedPipe>().is_some() {
            return; // `… | head`: the reader has what it wanted
        }
        // A wrong result found by a check (selftest, or a command that ran it first): status 1.
        if let Some(failed) = err.downcast_ref::<cobrar_gpu::selftest::SelftestFailed>() {
            eprintln!("error: selftest failed\n{failed}");
            std::process::exit(1);
        }
        // One line: the error and its causes joined by ": " (anyhow's alternate form). Never a panic.
        eprintln!("error: {err:#}");
        std::process::exit(2);
    }
}
