//! `voice catalog --store`: a store's catalog in the voice catalog format,
//! read from Jupiter; and the committed catalogs of the demo stores
//! (crates/voice/tests/data/catalogs), which must match the demo data.

use std::path::PathBuf;
use std::process::Command;

use mangwale_providers::jupiter::{JupiterClient, JupiterClientConfig};
use mangwale_server::jupiter::catalog::voice_catalog;
use mangwale_sim::jupiter::{JupiterSim, JupiterSimConfig};
use mangwale_voice::Catalog;

const KEY: &str = "catalog-test-key";

fn catalogs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voice/tests/data/catalogs")
}

fn committed(store_id: u64) -> (PathBuf, String) {
    let path = catalogs_dir().join(format!("{store_id}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

/// With `UPDATE_CATALOGS=1` this rewrites the committed files instead of
/// checking them: `UPDATE_CATALOGS=1 cargo test -p mangwale-server --test inbound voice_catalog`.
#[tokio::test]
async fn the_committed_catalogs_match_the_demo_data() {
    let sim = JupiterSim::start(JupiterSimConfig::new(KEY)).await.unwrap();
    let url = sim.jupiter_url().parse().unwrap();
    let client = JupiterClient::new(JupiterClientConfig::new(url, None, KEY.into()));
    let update = std::env::var_os("UPDATE_CATALOGS").is_some();
    let stores = sim.data().stores;
    for store in &stores {
        let catalog = voice_catalog(&client, store.id).await.unwrap();
        let json = serde_json::to_string_pretty(&catalog).unwrap() + "\n";
        if update {
            std::fs::write(catalogs_dir().join(format!("{}.json", store.id)), json).unwrap();
            continue;
        }
        let (path, text) = committed(store.id);
        let stale = format!("{} is stale: rerun with UPDATE_CATALOGS=1", path.display());
        assert_eq!(Catalog::from_json(&text).unwrap(), catalog, "{stale}");
        assert_eq!(text, json, "{stale}");
    }
    let files = std::fs::read_dir(catalogs_dir()).unwrap().count();
    assert_eq!(files, stores.len(), "one file per demo store, no leftovers");
    sim.shutdown().await;
}

#[test]
fn voice_catalog_prints_a_store_from_the_sandbox_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let run = |store: &str| {
        Command::new(env!("CARGO_BIN_EXE_mangwale-exotel"))
            .args(["voice", "catalog", "--store", store])
            .current_dir(dir.path())
            .env_clear()
            .output()
            .unwrap()
    };
    let out = run("7");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = Catalog::from_json(&String::from_utf8(out.stdout).unwrap()).expect("the catalog format");
    assert_eq!(printed, Catalog::from_json(&committed(7).1).unwrap());
    let misal = printed.item("7001").unwrap();
    assert!(misal.variants.iter().any(|v| v.id == "half") && misal.modifier_groups.iter().any(|g| g.id == "onion"));

    let missing = run("9999");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("store 9999 not found"));
}
