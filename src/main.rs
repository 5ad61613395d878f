//! The `sda` binary: see `sda --help`.

fn main() {
    if let Err(e) = sda::cli::run(std::env::args_os()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
