//! `mangwale-exotel`: see `mangwale_server::cli`.

/// mimalloc: the webhook path allocates many small, short-lived buffers on
/// several threads at once, where glibc's allocator spent a sixth of the
/// server's CPU time (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mangwale_server::cli::main()
}
