//! The development set played through the dialog, as `voice eval` does
//! (`mangwale_voice::eval`: a fresh catalog-only call per case, the
//! orders it places or else its cart), clean and with simulated ASR noise
//! (0.1, seed 1). The floors are the figures measured when they were set,
//! so that a change that loses cases fails here; issue 11's targets are
//! 95 % exact carts clean and 85 % with noise.
//!
//! `cargo test -p mangwale-voice --test main devset::through_dialog -- --nocapture`
//! prints both reports; DEVSET_VERBOSE=1 lists the failing cases.

use mangwale_voice::AsrNoise;
use mangwale_voice::eval::{self, Catalogs, EvalReport};

use super::{case_files, data_dir};

/// (exact carts, item recall) floors, clean: measured 515 of 518 (99.42 %)
/// and 99.88 %.
const CLEAN_FLOOR: (f64, f64) = (0.994, 0.998);
/// (exact carts, item recall) floors with noise 0.1, seed 1: measured 477
/// of 518 (92.08 %) and 97.98 %.
const NOISY_FLOOR: (f64, f64) = (0.92, 0.979);

async fn report(noise: Option<AsrNoise>) -> EvalReport {
    let cases = eval::read_cases(&case_files()).expect("the development set reads");
    let catalogs = Catalogs::open(&data_dir().join("catalogs")).expect("the demo catalogs");
    let report = eval::evaluate(&cases, &catalogs, noise).await.expect("every case has its catalog");
    let verbose = std::env::var_os("DEVSET_VERBOSE").is_some();
    println!("{}", report.to_text(verbose));
    report
}

fn check(report: &EvalReport, (exact_floor, recall_floor): (f64, f64)) {
    let all = &report.overall;
    let exact = all.exact_cart_rate.expect("cases");
    let recall = all.item_recall.expect("expected lines");
    assert!(exact >= exact_floor, "exact carts {:.1} % < {:.1} %", exact * 100.0, exact_floor * 100.0);
    assert!(recall >= recall_floor, "item recall {:.1} % < {:.1} %", recall * 100.0, recall_floor * 100.0);
}

#[tokio::test]
async fn the_dialog_gets_the_development_set_right_clean_and_with_asr_noise() {
    let clean = report(None).await;
    assert!(clean.overall.cases >= 400);
    assert_eq!(clean.by_language.len(), 4, "every case has its lang");
    check(&clean, CLEAN_FLOOR);
    let noisy = report(Some(AsrNoise::new(0.1, 1))).await;
    check(&noisy, NOISY_FLOOR);
}
