//! `mangwale-exotel`: see `mangwale_server::cli`.

fn main() -> std::process::ExitCode {
    mangwale_server::cli::main()
}
