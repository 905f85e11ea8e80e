//! Fuzzes every parser of bytes that arrive from the network (Exotel
//! queries, forms, multipart and JSON bodies, status callbacks, Voicebot
//! events, Jupiter and WhatsApp webhooks, and the answers of Exotel,
//! Jupiter, WhatsApp and FCM) and prints, per parser, the inputs run, the
//! panics caught and the time taken. Exits non-zero on any panic, printing
//! each failing input as a `b"..."` literal for a regression test.
//!
//!     cargo run --release -p mangwale-server --example fuzz -- --inputs 1000000
//!
//! Options: `--inputs N` per parser (default 100000), `--seed S` (a run is
//! reproducible from its seed), `--jobs J` parsers fuzzed in parallel
//! (default 1), `--only NAME` (repeatable), `--list`. See docs/fuzzing.md.

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use mangwale_server::fuzz;

#[derive(Parser)]
struct Args {
    /// Inputs per parser.
    #[arg(long, default_value_t = 100_000)]
    inputs: u64,
    /// Seed of the generators.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Parsers fuzzed at the same time.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Fuzz only these parsers.
    #[arg(long)]
    only: Vec<String>,
    /// List the parsers and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let targets: Vec<_> =
        fuzz::targets().into_iter().filter(|t| args.only.is_empty() || args.only.iter().any(|o| o == t.name)).collect();
    if args.list || targets.is_empty() {
        for t in fuzz::targets() {
            println!("{:<22} {}", t.name, t.about);
        }
        return if targets.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
    }
    println!(
        "fuzzing {} parsers, {} inputs each, seed {}, {} at a time",
        targets.len(),
        args.inputs,
        args.seed,
        args.jobs
    );
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                while let Some(target) = targets.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let report = fuzz::run(target, args.inputs, args.seed);
                    eprintln!(
                        "  {:<22} {} inputs, {} panics, {:.1}s",
                        report.name,
                        report.inputs,
                        report.panics,
                        report.elapsed.as_secs_f64()
                    );
                    reports.lock().unwrap_or_else(|e| e.into_inner()).push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    let order = |name: &str| targets.iter().position(|t| t.name == name);
    reports.sort_by_key(|r| order(r.name));
    print!("{}", fuzz::table(&reports));
    if reports.iter().any(|r| r.panics > 0) {
        eprint!("{}", fuzz::failures(&reports));
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
