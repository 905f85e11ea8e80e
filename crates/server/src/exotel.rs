//! The service's Exotel: the production client, pointed at Exotel in live
//! mode and at the built-in simulator (started in-process) in sandbox mode,
//! with every request recorded in the store.

use std::sync::Arc;

use mangwale_core::E164;
use mangwale_providers::exotel::client::{
    ExotelClient, ExotelClientConfig, ExotelError, ExotelRecorder, RateLimit, RequestRecord, RetryPolicy,
};
use mangwale_sim::exotel::{ExotelSim, FlowConfig, FlowDefinitions, INCOMING_FLOW, MASKED_CALL_FLOW, SimConfig};
use mangwale_store::{ExotelRequestLog, Store};
use tokio::sync::mpsc;

use crate::config::{Config, Mode};

/// Exotel as the service sees it.
#[derive(Clone)]
pub struct Exotel {
    pub client: ExotelClient,
    /// The in-process simulator in sandbox mode; kept here so it lives as
    /// long as the service.
    pub sim: Option<Arc<ExotelSim>>,
    default_caller_id: E164,
    did_new_order: Option<E164>,
    did_reminder: Option<E164>,
    did_address: Option<E164>,
    app_ids: std::collections::BTreeMap<String, String>,
}

/// Why a call goes out: picks the caller id the callee sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerPurpose {
    /// New orders and rider assignments: "New Order - Mangwale".
    NewOrder,
    /// "Order Reminder - Mangwale".
    Reminder,
    /// "Address Update - Mangwale".
    Address,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum ExotelSetupError {
    #[error("the Exotel client: {0}")]
    Client(#[from] ExotelError),
    #[error("the sandbox Exotel simulator: {0}")]
    Sim(String),
}

impl Exotel {
    /// Live: the client for the configured account. Sandbox: starts the
    /// simulator (with `sim_config`, or the default on the system clock) and
    /// points the client at it.
    /// In sandbox mode the simulator also runs our flows
    /// (`flows/exotel-flows.toml`) against this service's applet URLs at
    /// PUBLIC_BASE_URL, presenting `webhook_token` as Exotel would.
    pub async fn start(
        config: &Config,
        store: Arc<dyn Store>,
        webhook_token: &crate::config::Secret,
        sim_config: Option<SimConfig>,
        retry: Option<RetryPolicy>,
    ) -> Result<Exotel, ExotelSetupError> {
        let recorder: Arc<dyn ExotelRecorder> = Arc::new(StoreRecorder::spawn(store));
        let (client_config, sim, default_caller_id) = match (&config.exotel, config.mode) {
            (Some(creds), Mode::Live) => {
                let base = config.exotel_api_base();
                let caller_id = config
                    .exotel_caller_id
                    .clone()
                    .ok_or_else(|| ExotelSetupError::Sim("EXOTEL_CALLER_ID is required in live mode".to_string()))?;
                (
                    ExotelClientConfig::new(base, &creds.sid, creds.api_key.expose(), creds.api_token.expose()),
                    None,
                    caller_id,
                )
            }
            _ => {
                let mut sim_config = sim_config.unwrap_or_default();
                if sim_config.flows.is_none() {
                    // Scripted callers speak with espeak-ng, so that a
                    // recogniser hears real speech.
                    let mut flows = FlowConfig::new(
                        config.public_base_url.as_str().trim_end_matches('/'),
                        Some(webhook_token.expose().to_string()),
                        FlowDefinitions::repository().map_err(|e| ExotelSetupError::Sim(e.to_string()))?,
                    )
                    .with_caller_voice(mangwale_sim::speech::Voice::espeak());
                    // The numbers as docs/exotel-setup.md connects them: the
                    // caller id to the incoming flow, each masking number to
                    // the masked call (besides the simulator's own ExoPhones).
                    if let Some(caller_id) = &config.exotel_caller_id {
                        flows = flows.with_exophone(caller_id, INCOMING_FLOW);
                    }
                    for number in &config.masking_numbers {
                        flows = flows.with_exophone(number, MASKED_CALL_FLOW);
                    }
                    // The opt-out number never answers: the missed-call flow.
                    if let Some(number) = &config.opt_out_number {
                        flows = flows.with_exophone(number, mangwale_sim::exotel::MISSED_CALL_FLOW);
                    }
                    sim_config.flows = Some(flows);
                }
                // SMS people send to our ExoPhones (STOP replies) come to
                // the route Exotel's incoming-SMS URL would name.
                if sim_config.incoming_sms_url.is_none() {
                    let url = config
                        .public_base_url
                        .join(&format!("exotel/webhooks/sms-incoming?token={}", webhook_token.expose()))
                        .map_err(|e| ExotelSetupError::Sim(format!("the incoming SMS URL: {e}")))?;
                    sim_config.incoming_sms_url = Some(url.to_string());
                }
                // The masking pool is ExoPhones of the account too: masked
                // bridges show them, and callers dial them.
                for number in [
                    &config.exotel_caller_id,
                    &config.did_new_order,
                    &config.did_reminder,
                    &config.did_address,
                    &config.opt_out_number,
                ]
                .into_iter()
                .flatten()
                .chain(&config.masking_numbers)
                {
                    if !sim_config.exophones.contains(number) {
                        sim_config.exophones.push(number.clone());
                    }
                }
                let sim = ExotelSim::start(sim_config).await.map_err(|e| ExotelSetupError::Sim(e.to_string()))?;
                let caller_id = config
                    .exotel_caller_id
                    .clone()
                    .or_else(|| sim.config().exophones.first().cloned())
                    .ok_or_else(|| ExotelSetupError::Sim("the simulator has no ExoPhone".to_string()))?;
                let client_config =
                    ExotelClientConfig::new(sim.base_url(), sim.account_sid(), sim.api_key(), sim.api_token());
                (client_config, Some(Arc::new(sim)), caller_id)
            }
        };
        // Every SMS names our delivery-report route, so that DLT and DND
        // rejections reach the timeline and the metrics.
        let sms_status_callback = config
            .public_base_url
            .join(&format!("exotel/webhooks/sms-status?token={}", webhook_token.expose()))
            .map_err(|e| ExotelSetupError::Sim(format!("the SMS status callback URL: {e}")))?;
        let client_config = ExotelClientConfig {
            voice_rate: RateLimit::per_minute(config.exotel_voice_per_minute),
            sms_rate: RateLimit::per_minute(config.exotel_sms_per_minute),
            flow_base_url: flow_base_url(config),
            sms_status_callback: Some(sms_status_callback),
            retry: retry.unwrap_or(client_config.retry),
            ..client_config
        };
        let client = ExotelClient::new(client_config, recorder)?;
        Ok(Exotel {
            client,
            sim,
            default_caller_id,
            did_new_order: config.did_new_order.clone(),
            did_reminder: config.did_reminder.clone(),
            did_address: config.did_address.clone(),
            app_ids: config.exotel_app_ids.clone(),
        })
    }

    /// The ExoPhone a call for `purpose` shows, so the callee knows what it is
    /// about before answering.
    pub fn caller_id(&self, purpose: CallerPurpose) -> E164 {
        let dedicated = match purpose {
            CallerPurpose::NewOrder => self.did_new_order.as_ref(),
            CallerPurpose::Reminder => self.did_reminder.as_ref(),
            CallerPurpose::Address => self.did_address.as_ref(),
            CallerPurpose::Other => None,
        };
        dedicated.unwrap_or(&self.default_caller_id).clone()
    }

    /// The Exotel app id of one of our flows. In sandbox mode the simulator
    /// knows each flow by its own id.
    pub fn app_id(&self, flow: &str) -> Option<String> {
        match (self.app_ids.get(flow), &self.sim) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(_)) => Some(flow.to_string()),
            (None, None) => None,
        }
    }
}

/// The host of our flows' URLs (`Calls/connect` `Url`): `EXOTEL_FLOW_HOST`
/// when set, else the account's cluster (`my.in.exotel.com` with
/// `EXOTEL_REGION=in`, `my.exotel.com` without).
pub fn flow_base_url(config: &Config) -> String {
    ExotelClientConfig::flow_host_for(config.exotel_region.as_deref(), config.exotel_flow_host.as_deref())
}

/// Writes every request record to the store from a background task, so the
/// client never waits on the database. A record that cannot be queued is
/// counted, not silently lost.
pub struct StoreRecorder {
    sender: mpsc::Sender<ExotelRequestLog>,
}

impl StoreRecorder {
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (sender, mut receiver) = mpsc::channel::<ExotelRequestLog>(4096);
        tokio::spawn(async move {
            while let Some(entry) = receiver.recv().await {
                if let Err(e) = store.log_exotel_request(&entry).await {
                    tracing::warn!(error = %e, endpoint = %entry.endpoint, "logging an Exotel request failed");
                    metrics::counter!("mangwale_exotel_request_log_failures_total").increment(1);
                }
            }
        });
        StoreRecorder { sender }
    }
}

impl ExotelRecorder for StoreRecorder {
    fn record(&self, r: RequestRecord) {
        metrics::counter!(
            "mangwale_exotel_requests_total",
            "endpoint" => r.endpoint,
            "outcome" => r.outcome.as_str(),
        )
        .increment(1);
        metrics::histogram!("mangwale_exotel_request_duration_seconds", "endpoint" => r.endpoint)
            .record(r.duration.as_secs_f64());
        let entry = ExotelRequestLog {
            endpoint: r.endpoint.to_string(),
            method: r.method.to_string(),
            attempt: r.attempt,
            http_status: r.status,
            outcome: r.outcome.as_str().to_string(),
            code: r.error_code.as_deref().and_then(|c| c.parse().ok()),
            message: r.message,
            sid: r.sid,
            custom_field: r.custom_field,
            duration_ms: r.duration.as_millis() as u64,
            at: r.started_at,
        };
        if self.sender.try_send(entry).is_err() {
            metrics::counter!("mangwale_exotel_request_log_dropped_total").increment(1);
        }
    }
}
