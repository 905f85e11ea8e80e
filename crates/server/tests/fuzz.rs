//! A bounded run of the fuzz harness (`mangwale_server::fuzz`): every
//! parser of network input gets a few thousand generated and mutated
//! inputs, and any panic fails the test with the input that caused it.
//! `MANGWALE_FUZZ_INPUTS` sets the count (default 5,000 per parser) and
//! `MANGWALE_FUZZ_SEED` the seed (default 7); the
//! full run is the `fuzz` example (docs/fuzzing.md).

use mangwale_server::fuzz;

fn inputs() -> u64 {
    std::env::var("MANGWALE_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000)
}

fn seed() -> u64 {
    std::env::var("MANGWALE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(7)
}

/// Fuzzes the parsers whose names start with `prefix`, failing with every
/// input that made one panic.
fn fuzz_parsers(prefix: &str) {
    let reports: Vec<_> =
        fuzz::targets().iter().filter(|t| t.name.starts_with(prefix)).map(|t| fuzz::run(t, inputs(), seed())).collect();
    assert!(!reports.is_empty(), "no parser named {prefix}*");
    println!("{}", fuzz::table(&reports));
    let panics: u64 = reports.iter().map(|r| r.panics).sum();
    assert_eq!(panics, 0, "parsers panicked:\n{}", fuzz::failures(&reports));
}

// One test per family, so that the test harness runs them in parallel.

#[test]
fn exotel_requests_never_panic() {
    for prefix in ["exotel.query", "exotel.form", "exotel.json", "exotel.multipart"] {
        fuzz_parsers(prefix);
    }
}

#[test]
fn exotel_callbacks_and_voicebot_never_panic() {
    for prefix in ["exotel.call_status", "exotel.sms_status", "exotel.time", "exotel.voicebot"] {
        fuzz_parsers(prefix);
    }
}

#[test]
fn provider_answers_never_panic() {
    for prefix in ["exotel.client", "jupiter.client", "whatsapp.client", "push."] {
        fuzz_parsers(prefix);
    }
}

#[test]
fn webhooks_and_values_never_panic() {
    for prefix in ["jupiter.webhook", "whatsapp.webhook", "core.", "api."] {
        fuzz_parsers(prefix);
    }
}

#[test]
fn every_family_is_fuzzed() {
    let families = ["exotel.", "jupiter.", "whatsapp.", "push.", "core.", "api."];
    for target in fuzz::targets() {
        assert!(families.iter().any(|f| target.name.starts_with(f)), "{} is in no test", target.name);
    }
}

#[test]
fn generated_inputs_reach_past_the_first_check() {
    // The generators are worth something only if they produce inputs that
    // parse as well as inputs that do not.
    let targets = fuzz::targets();
    let query = targets.iter().find(|t| t.name == "exotel.query").expect("the query parser");
    let mut g = fuzz::generate::Gen::new(3);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..500 {
        let input = query.generate(&mut g);
        let params = mangwale_providers::exotel::params::Params::from_urlencoded(&input);
        match mangwale_providers::exotel::inbound::AppletRequest::from_params(&params) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(accepted > 50 && refused > 50, "accepted {accepted}, refused {refused}");
}

#[test]
fn a_run_is_reproducible_from_its_seed() {
    let targets = fuzz::targets();
    let target = &targets[0];
    let draw = |seed| {
        let mut g = fuzz::generate::Gen::new(seed);
        (0..20).map(|_| target.generate(&mut g)).collect::<Vec<_>>()
    };
    assert_eq!(draw(11), draw(11));
    assert_ne!(draw(11), draw(12));
}

// Regressions: inputs the harness found, replayed.

#[test]
fn an_analytics_range_ending_on_chronos_first_day_is_a_400_naming_to() {
    // `to=-262143-01-01` panicked: the default `from`, a day earlier, is
    // before the first date chrono can hold. Dates are now bounded.
    let now = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    for query in [&b"to=-262143-01-01"[..], b"to=-262143-01-01T00:00:00Z", b"from=-262143-01-01"] {
        match mangwale_server::routes::comms::analytics_range(query, now) {
            Err(mangwale_server::error::AppError::BadRequest { field: Some(field), .. }) => {
                assert_eq!(field, query.split(|b| *b == b'=').next().map(String::from_utf8_lossy).unwrap())
            }
            other => panic!("{}: {other:?}", query.escape_ascii()),
        }
    }
    let target = fuzz::targets().into_iter().find(|t| t.name == "api.analytics").unwrap();
    target.parse(b"to=-262143-01-01");
    assert!(mangwale_server::routes::comms::analytics_range(b"to=2000-01-02", now).is_ok());
}
