//! `GET /exotel/auth/check`: proves the Exotel credentials work by asking
//! Exotel (the simulator in sandbox mode) for the account's ExoPhones, and
//! says whether our caller ids are among them.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use mangwale_providers::exotel::client::ExotelError;
use serde_json::{Value, json};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/exotel/auth/check", get(check))
}

/// `{ok: true, accountSid, mode, exophones, callerIds}`; a refusal by Exotel
/// is a 502 that says why, an unreachable Exotel a 503.
///
/// Exotel documents no `GET /v1/Accounts/{sid}` resource; the documented
/// "List all ExoPhones" API (`GET /v2_beta/Accounts/{sid}/IncomingPhoneNumbers`)
/// answers only with working credentials for that account.
async fn check(State(state): State<AppState>) -> AppResult<Json<Value>> {
    match state.exotel.client.exophones().await {
        Ok(list) => {
            let config = &state.config;
            let ours = [
                ("EXOTEL_CALLER_ID", &config.exotel_caller_id),
                ("EXOTEL_DID_NEW_ORDER", &config.did_new_order),
                ("EXOTEL_DID_REMINDER", &config.did_reminder),
                ("EXOTEL_DID_ADDRESS", &config.did_address),
            ];
            let caller_ids: serde_json::Map<String, Value> = ours
                .iter()
                .filter_map(|(name, number)| number.as_ref().map(|n| (name, n)))
                .map(|(name, number)| {
                    // A later page may hold it: only a complete list can say no.
                    let found = list.numbers.iter().any(|e| e.phone_number.as_ref() == Some(number));
                    let known = if found {
                        json!(true)
                    } else if list.more {
                        Value::Null
                    } else {
                        json!(false)
                    };
                    (name.to_string(), known)
                })
                .collect();
            Ok(Json(json!({
                "ok": true,
                "accountSid": state.exotel.client.account_sid(),
                "mode": config.mode.as_str(),
                "exophones": list.numbers.len(),
                "callerIds": caller_ids,
            })))
        }
        Err(ExotelError::Permanent { status, message, .. }) => Err(AppError::BadGateway {
            code: "exotel_refused",
            message: format!("Exotel answered {status}: {message}"),
        }),
        Err(e) => Err(AppError::Unavailable {
            code: "exotel_unavailable",
            message: format!("Exotel could not be reached: {}", e.message()),
        }),
    }
}
