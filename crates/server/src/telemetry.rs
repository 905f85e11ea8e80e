//! Logs and metrics.
//!
//! Logs go through [`MaskingWriter`], which masks every phone number in a
//! finished log line, so a number that slips into a message or a field never
//! reaches the log in full. Metrics are Prometheus text at `/metrics`.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global log subscriber. Safe to call more than once (tests).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(MaskingMakeWriter);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Makes a [`MaskingWriter`] per log event.
#[derive(Debug, Clone, Copy)]
pub struct MaskingMakeWriter;

impl<'a> MakeWriter<'a> for MaskingMakeWriter {
    type Writer = MaskingWriter<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskingWriter::new(io::stderr())
    }
}

/// Buffers one log event and writes it with phone numbers masked when
/// dropped (the formatter writes each event through its own writer).
pub struct MaskingWriter<W: Write> {
    buffer: Vec<u8>,
    inner: W,
}

impl<W: Write> MaskingWriter<W> {
    pub fn new(inner: W) -> Self {
        MaskingWriter { buffer: Vec::with_capacity(256), inner }
    }

    fn flush_masked(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let masked = mangwale_core::mask_phone_numbers(&text);
        self.inner.write_all(masked.as_bytes())?;
        self.buffer.clear();
        self.inner.flush()
    }
}

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Mask only whole events: a flush in mid-event would split a number.
        Ok(())
    }
}

impl<W: Write> Drop for MaskingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush_masked();
    }
}

/// Renders Prometheus metrics.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// The process-wide recorder, installed on first use.
    pub fn global() -> Metrics {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then this
            // handle renders an empty page rather than crashing the service.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        });
        Metrics { handle: handle.clone() }
    }

    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn describe() {
    metrics::describe_counter!("mangwale_http_requests_total", "HTTP requests by method, matched route and status");
    metrics::describe_histogram!("mangwale_http_request_duration_seconds", "HTTP request latency by matched route");
    metrics::describe_gauge!("mangwale_jobs_pending", "Jobs waiting to run");
    metrics::describe_gauge!("mangwale_jobs_overdue", "Pending jobs more than 1 s past their due time");
    metrics::describe_gauge!("mangwale_jobs_running", "Jobs currently leased by a worker");
    metrics::describe_gauge!("mangwale_jobs_dead", "Jobs that failed permanently or ran out of attempts");
    metrics::describe_gauge!("mangwale_job_queue_lag_seconds", "How late the most overdue pending job is");
    metrics::describe_histogram!("mangwale_job_lateness_seconds", "Delay between a job's due time and its start");
    metrics::describe_histogram!("mangwale_job_duration_seconds", "Time a job handler ran");
    metrics::describe_counter!("mangwale_jobs_finished_total", "Job runs by kind and outcome");
    metrics::describe_counter!(
        "mangwale_ops_job_actions_total",
        "Dead jobs retried or discarded by an operator, by action and kind"
    );
    metrics::describe_counter!("mangwale_ladders_escalated_total", "Ladder steps an operator made due at once");
    metrics::describe_gauge!("mangwale_dependency_up", "1 if the dependency answered the last probe");
    metrics::describe_gauge!("mangwale_dependency_latency_seconds", "Latency of the last dependency probe");
}

/// Middleware recording request count and latency by matched route (never by
/// raw path, which would let callers create unbounded label values).
pub async fn record_http_metrics(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("mangwale_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("mangwale_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_number_split_across_writes_is_still_masked() {
        let sink = Sink::default();
        {
            let mut w = MaskingWriter::new(sink.clone());
            write!(w, "calling +91987").unwrap();
            w.flush().unwrap();
            writeln!(w, "6543210 for order MW-1").unwrap();
        }
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out, "calling +9198xxxxx210 for order MW-1\n");
    }
}
