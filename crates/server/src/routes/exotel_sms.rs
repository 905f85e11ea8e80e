//! `/exotel/webhooks/sms-incoming`: SMS people send to our ExoPhone (a
//! reply to a campaign SMS), as Exotel forwards them to the URL configured
//! for incoming SMS. A STOP (`is_stop_word`) is an opt-out.
//!
//! Exotel's incoming-SMS request (support.exotel.com article 45270, "Send a
//! SMS reply in response to an incoming SMS"): an HTTP GET with `SmsSid`,
//! `From`, `To`, `Date` and `Body` in the query, preceded by a HEAD that
//! must answer the same headers; a `text/plain` body is sent back to the
//! sender as a reply SMS. The newer two-way SMS guide
//! (developer.exotel.com/docs/sms-support/two-way-sms) lets the method be
//! POST: both are accepted. We answer an empty body: a reply would be an SMS
//! of its own, which needs a DLT template.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mangwale_core::E164;
use mangwale_core::campaign::{SuppressionSource, is_stop_word};
use mangwale_store::{InboundEvent, InboundOutcome, NewEvent};
use serde_json::json;

use crate::campaigns::compliance;
use crate::error::{AppError, AppResult};
use crate::exotel_params::ExotelParams;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/exotel/webhooks/sms-incoming", get(incoming).head(head).post(incoming))
}

const TEXT_PLAIN: &str = "text/plain";

/// The HEAD Exotel sends first: the GET's headers, nothing recorded.
async fn head() -> Response {
    ([(header::CONTENT_TYPE, TEXT_PLAIN)], "").into_response()
}

/// Records the SMS (once per `SmsSid`) and, when it asks to stop, the
/// opt-out of its sender (source `sms_stop`).
async fn incoming(State(state): State<AppState>, params: ExotelParams) -> AppResult<Response> {
    let p = &params.0;
    let sms_sid = p.get_any(&["SmsSid", "Sid"]).filter(|s| !s.is_empty()).ok_or_else(|| missing("SmsSid"))?;
    let from = p.get_any(&["From", "from"]).ok_or_else(|| missing("From"))?;
    let from = E164::parse(from).map_err(|e| AppError::invalid("From", e.0))?;
    let to = p.get_any(&["To", "to"]).and_then(|t| E164::parse(t).ok());
    let body = p.get_any(&["Body", "body"]).unwrap_or("");
    let stop = is_stop_word(body);
    let now = state.clock.now();
    // The text is a person's own words: kept short, numbers in it masked.
    let shown: String = mangwale_core::mask_phone_numbers(body).chars().take(160).collect();
    let event = NewEvent::new("exotel.sms_incoming", now)
        .party(format!("customer:{}", from.masked()))
        .channel("sms")
        .detail(json!({
            "smsSid": sms_sid,
            "from": from.masked(),
            "to": to.as_ref().map(E164::masked),
            "date": p.get("Date"),
            "body": shown,
            "stop": stop,
        }));
    let inbound = InboundEvent {
        dedup_key: format!("exotel:sms_in:{sms_sid}"),
        source: "exotel.sms_incoming".into(),
        event,
        jobs: Vec::new(),
    };
    // The ledger first: a retried request (after a failure) writes it then,
    // and the ledger keeps one entry.
    if stop {
        compliance::record_opt_out(&state, &from, SuppressionSource::SmsStop, Some("SMS reply")).await?;
    }
    let outcome = state.inbound.record(inbound).await.map_err(|e| {
        tracing::error!(error = %e, "recording an incoming SMS failed");
        AppError::Unavailable { code: "store_unavailable", message: "the SMS could not be recorded; retry".into() }
    })?;
    metrics::counter!("mangwale_exotel_sms_incoming_total", "stop" => if stop { "true" } else { "false" }).increment(1);
    if outcome == InboundOutcome::Duplicate {
        tracing::info!(sms_sid, "incoming SMS delivered again");
    }
    Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], "").into_response())
}

fn missing(field: &'static str) -> AppError {
    metrics::counter!("mangwale_exotel_malformed_total", "route" => "sms-incoming").increment(1);
    AppError::BadRequest { code: "invalid_field", message: format!("{field} is required"), field: Some(field.into()) }
}
