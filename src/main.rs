//! The `sda` binary: see `sda --help`.

fn main() {
    // a closed pipe (`sda oracle | head`) ends the process quietly, as for any Unix tool,
    // instead of a failed write to standard output
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if let Err(e) = sda::cli::run(std::env::args_os()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
