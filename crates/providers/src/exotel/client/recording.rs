//! Fetching a call recording (`RecordingUrl` of a Passthru after a
//! Record/Voicemail applet or a recorded Connect) with the account's
//! credentials.
//!
//! # Whom the credentials go to
//!
//! A recording URL arrives in a request (Exotel's Passthru, or an internal
//! caller's `recording_url`), so it is checked before anything is sent:
//!
//! - `http(s)` only, no `user:pass@` in the URL;
//! - **Basic credentials** (API key, API token) go only to Exotel's own
//!   hosts over HTTPS (`exotel.com`, `exotel.in` and their subdomains, where
//!   Exotel serves recordings behind the account's credentials), and to the
//!   origin of the client's `base_url` (the API cluster in production, the
//!   simulator in sandbox mode and tests);
//! - Exotel's S3 recording bucket (`*.amazonaws.com/exotelrecordings/…`,
//!   the form of `RecordingUrl` in status callbacks) is fetched **without**
//!   credentials: those objects are addressed by the URL itself, and a
//!   host that serves every S3 customer must never see the token;
//! - any other host is refused without a request (an internal caller's
//!   typo, or a URL that would make us fetch from our own network).

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use url::Url;

use super::{ExotelClient, ExotelError, Outcome, RequestRecord, Started, TransientReason, describe};

/// How a recording URL may be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingAccess {
    /// Exotel's host or the configured API origin: with Basic credentials.
    Credentials,
    /// Exotel's S3 bucket: without.
    Anonymous,
}

/// A recording URL that passed the host rule of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingUrl {
    url: Url,
    access: RecordingAccess,
}

impl RecordingUrl {
    pub fn access(&self) -> RecordingAccess {
        self.access
    }

    /// The host, for logs and the timeline (the path and query can carry a
    /// signature and are not shown).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}

/// A fetched recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub bytes: Bytes,
    /// As the server said; informative only (buckets often say
    /// `application/octet-stream`).
    pub content_type: Option<String>,
    pub access: RecordingAccess,
}

/// Content types that are not audio, whatever a server calls them: an error
/// page or an API answer in place of the recording.
fn not_audio(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.starts_with("image/")
        || essence.starts_with("video/")
        || matches!(essence.as_str(), "application/json" | "application/xml" | "application/xhtml+xml")
}

fn exotel_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    ["exotel.com", "exotel.in"].iter().any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

impl ExotelClient {
    /// Checks `raw` against the host rule (module documentation).
    pub fn recording_url(&self, raw: &str) -> Result<RecordingUrl, ExotelError> {
        let invalid = |message: String| ExotelError::invalid("recording_url", message);
        let url = Url::parse(raw.trim()).map_err(|e| invalid(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("must be http(s), not {}", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials".into()));
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let access = if same_origin(&url, &self.inner.base) || (url.scheme() == "https" && exotel_host(&host)) {
            RecordingAccess::Credentials
        } else if url.scheme() == "https"
            && host.to_ascii_lowercase().ends_with(".amazonaws.com")
            && url.path().starts_with("/exotelrecordings/")
        {
            RecordingAccess::Anonymous
        } else {
            return Err(invalid(format!(
                "{host} is not one of Exotel's recording hosts (https://*.exotel.com, https://*.exotel.in, Exotel's S3 bucket, or the configured API host)"
            )));
        };
        Ok(RecordingUrl { url, access })
    }

    /// `GET` a recording: one attempt within `recording_timeout`, at most
    /// `recording_max_bytes`, refused when the answer is not audio (HTML,
    /// JSON, text). Failures: [`ExotelError::Invalid`] for a URL the host
    /// rule refuses, `Transient` for timeouts, connection failures and
    /// 408/429/5xx, `Permanent` for other statuses (404: not there, or not
    /// yet), oversized or non-audio answers. Recorded like every request
    /// (endpoint `recordings.fetch`, without the URL).
    pub async fn fetch_recording(&self, url: &RecordingUrl) -> Result<Recording, ExotelError> {
        let started = Started::now();
        let result = self.fetch_recording_once(url).await;
        self.record_recording(&result, started);
        match &result {
            Ok(recording) => tracing::debug!(
                host = url.host(),
                bytes = recording.bytes.len(),
                elapsed_ms = started.instant.elapsed().as_millis() as u64,
                "exotel recording fetched"
            ),
            Err(error) => tracing::warn!(host = url.host(), error = %error, "exotel recording not fetched"),
        }
        result
    }

    async fn fetch_recording_once(&self, url: &RecordingUrl) -> Result<Recording, ExotelError> {
        let config = &self.inner.config;
        let mut request = self.inner.http.get(url.url.clone()).timeout(config.recording_timeout);
        if url.access == RecordingAccess::Credentials {
            request = request.basic_auth(&config.api_key, Some(&config.api_token));
        }
        let network = |message: String| ExotelError::Transient {
            status: None,
            code: None,
            message,
            retry_after: None,
            reason: TransientReason::Network,
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Err(network(format!("timed out after {} ms", config.recording_timeout.as_millis())));
            }
            Err(e) => return Err(network(format!("connection failed: {}", describe(e)))),
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let message = match status {
                404 => "no recording at that URL (not there, or not yet)".to_string(),
                401 | 403 => "the recording host refused the account's credentials".to_string(),
                300..=399 => "the recording host redirected (not followed)".to_string(),
                _ => format!("the recording host answered HTTP {status}"),
            };
            return Err(match status {
                408 | 429 | 500..=599 => ExotelError::Transient {
                    status: Some(status),
                    code: None,
                    message,
                    retry_after: None,
                    reason: TransientReason::Status,
                },
                _ => ExotelError::Permanent { status, code: None, message },
            });
        }
        let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        if let Some(kind) = content_type.as_deref().filter(|c| not_audio(c)) {
            return Err(ExotelError::Permanent {
                status,
                code: None,
                message: format!("the recording URL answered {kind}, not audio"),
            });
        }
        let bytes = crate::body::read_capped(response, config.recording_max_bytes).await.map_err(|e| match e {
            crate::body::BodyError::TooLarge { limit } => ExotelError::Permanent {
                status,
                code: None,
                message: format!("the recording is larger than {limit} bytes"),
            },
            crate::body::BodyError::Read(e) if e.is_timeout() => {
                network(format!("timed out after {} ms", config.recording_timeout.as_millis()))
            }
            crate::body::BodyError::Read(e) => network(format!("reading the recording failed: {}", describe(e))),
        })?;
        Ok(Recording { bytes, content_type, access: url.access })
    }

    fn record_recording(&self, result: &Result<Recording, ExotelError>, started: Started) {
        let (outcome, status, message) = match result {
            Ok(recording) => (Outcome::Ok, Some(200), Some(format!("{} bytes", recording.bytes.len()))),
            Err(error) => (error.outcome(), error.status(), Some(error.to_string())),
        };
        self.inner.recorder.record(RequestRecord {
            endpoint: "recordings.fetch",
            method: "GET",
            attempt: 1,
            status,
            outcome,
            error_code: None,
            message,
            sid: None,
            custom_field: None,
            from_masked: None,
            to_masked: None,
            will_retry: false,
            started_at: started.at,
            finished_at: chrono::Utc::now(),
            duration: started.instant.elapsed(),
        });
    }
}

/// The defaults of [`super::ExotelClientConfig`]: a turn's recording is
/// seconds long (16 kbit/s MP3: ~2 KB a second; 8 kHz WAV: 16 KB a second),
/// and Exotel waits about 5 s for the Passthru that fetches it.
pub const DEFAULT_RECORDING_MAX_BYTES: usize = 4 * 1024 * 1024;
pub const DEFAULT_RECORDING_TIMEOUT: Duration = Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exotel::client::{ExotelClientConfig, NoopRecorder};

    fn client(base: &str) -> ExotelClient {
        ExotelClient::new(ExotelClientConfig::new(base, "acme1", "key", "token"), std::sync::Arc::new(NoopRecorder))
            .unwrap()
    }

    #[test]
    fn credentials_go_to_exotel_and_the_configured_host_only() {
        let live = client("https://api.in.exotel.com");
        let access = |c: &ExotelClient, url: &str| c.recording_url(url).map(|u| u.access());
        assert_eq!(access(&live, "https://recordings.exotel.com/acme1/x.mp3"), Ok(RecordingAccess::Credentials));
        assert_eq!(access(&live, "https://api.in.exotel.com/v1/x.mp3"), Ok(RecordingAccess::Credentials));
        assert_eq!(access(&live, "https://my.exotel.in/x.wav"), Ok(RecordingAccess::Credentials));
        assert_eq!(
            access(&live, "https://s3-ap-southeast-1.amazonaws.com/exotelrecordings/acme1/c.mp3"),
            Ok(RecordingAccess::Anonymous)
        );
        for refused in [
            "http://recordings.exotel.com/x.mp3",
            "https://exotel.com.evil.example/x.mp3",
            "https://evilexotel.com/x.mp3",
            "https://s3.amazonaws.com/other-bucket/x.mp3",
            "http://169.254.169.254/latest/meta-data",
            "https://key:token@recordings.exotel.com/x.mp3",
            "ftp://recordings.exotel.com/x.mp3",
            "not a url",
        ] {
            assert!(live.recording_url(refused).unwrap_err().is_invalid(), "{refused}");
        }
        let sim = client("http://127.0.0.1:4100");
        assert_eq!(access(&sim, "http://127.0.0.1:4100/_sim/recordings/r.wav"), Ok(RecordingAccess::Credentials));
        assert!(sim.recording_url("http://127.0.0.1:4101/_sim/recordings/r.wav").is_err());
    }

    #[test]
    fn error_pages_are_not_audio() {
        assert!(not_audio("text/html; charset=utf-8"));
        assert!(not_audio("application/json"));
        assert!(!not_audio("audio/mpeg"));
        assert!(!not_audio("audio/wav"));
        assert!(!not_audio("application/octet-stream"));
        assert!(!not_audio("binary/octet-stream"));
    }
}
