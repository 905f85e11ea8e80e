//! The routes Exotel calls: the seed's IVR webhooks, voice and SMS status
//! callbacks, and the applet URLs of our flows.
//!
//! Each request is authenticated by the webhook token (see `auth`), parsed
//! from whichever encoding it arrived in, deduplicated, recorded on the
//! timeline and its follow-up enqueued — in one shared commit — before we
//! answer. The menus, ladders and ordering behind these routes build on this.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mangwale_providers::exotel::applet::{Connect, Gather, Greeting, SwitchCase, TEXT_PLAIN};
use mangwale_providers::exotel::inbound::{
    AppletRequest, CallStatusCallback, ParamError, SmsStatus, SmsStatusCallback,
};
use mangwale_providers::exotel::params::Params;
use mangwale_store::{InboundEvent, InboundOutcome, NewEvent, NewJob};
use serde_json::{Value, json};

use crate::calls::CALL_STATUS_JOB;
use crate::campaigns::call as campaign_call;
use crate::error::{AppError, AppResult};
use crate::exotel_params::{ExotelParams, mask_json, without_secret};
use crate::masking::inbound as masking;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/exotel/ivr/incoming", get(incoming).head(head_incoming).post(incoming))
        .route("/exotel/ivr/missed-call", get(missed_call).head(head_json).post(missed_call))
        .route("/exotel/ivr/dtmf", get(dtmf).head(head_text).post(dtmf))
        .route("/exotel/webhooks/call-status", get(call_status).post(call_status))
        .route("/exotel/webhooks/sms-status", get(sms_status).post(sms_status))
        .route("/exotel/applet/greeting", get(greeting).head(head_text))
        .route("/exotel/applet/gather", get(gather).head(head_json))
        .route("/exotel/applet/connect", get(connect).head(head_json))
        .route("/exotel/applet/passthru", get(passthru).head(head_empty))
}

/// HEAD of an applet URL. Exotel probes Greeting (and SMS) URLs with HEAD
/// and requires "the exact same headers" as the GET (support 48285, 76228),
/// and does not document its parameters: so every applet URL answers HEAD
/// with its GET's status and `Content-Type`, whatever the query, and does
/// nothing else (no event is recorded, no key is acted on).
async fn head_text() -> Response {
    head_answer(Some(TEXT_PLAIN))
}

/// HEAD of the inbound flow's first Passthru: `text/plain` in our flow,
/// where it answers the caller Switch; JSON for the seed's callers.
async fn head_incoming(params: ExotelParams) -> Response {
    if switch_flow(&params) { head_text().await } else { head_json().await }
}

/// Whether the request is our inbound flow's (its URLs name the flow),
/// whose Passthru answers a Switch.
fn switch_flow(params: &ExotelParams) -> bool {
    params.0.get("flow") == Some(crate::inbound::menus::FLOW)
}

async fn head_json() -> Response {
    head_answer(Some("application/json"))
}

async fn head_empty() -> Response {
    head_answer(None)
}

/// 200 with `content_type` and no `Content-Length`: the GET's length
/// depends on the call, and a HEAD that said 0 would misstate it.
fn head_answer(content_type: Option<&'static str>) -> Response {
    let no_length = futures::stream::empty::<Result<bytes::Bytes, std::convert::Infallible>>();
    let mut response = Response::new(axum::body::Body::from_stream(no_length));
    if let Some(content_type) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    }
    response
}

/// A 400 naming the field; logged with the CallSid so the call can be found.
fn malformed(params: &Params, route: &str, e: ParamError) -> AppError {
    let call_sid = params.get_any(&["CallSid", "call_sid", "SmsSid"]).unwrap_or("-");
    tracing::warn!(route, call_sid, field = e.field, error = %e.message, "malformed Exotel request");
    metrics::counter!("mangwale_exotel_malformed_total", "route" => route.to_string()).increment(1);
    AppError::BadRequest { code: "invalid_field", message: e.to_string(), field: Some(e.field.to_string()) }
}

/// Records an event through the group-commit writer. A store failure is a
/// 503, which makes Exotel retry; the retry is deduplicated.
async fn record(state: &AppState, inbound: InboundEvent) -> AppResult<InboundOutcome> {
    let outcome = state.inbound.record(inbound).await.map_err(|e| {
        tracing::error!(error = %e, "recording an Exotel event failed");
        AppError::Unavailable { code: "store_unavailable", message: "the event could not be recorded; retry".into() }
    })?;
    if outcome == InboundOutcome::Duplicate {
        metrics::counter!("mangwale_exotel_duplicates_total").increment(1);
    }
    Ok(outcome)
}

fn applet_event(state: &AppState, kind: &str, request: &AppletRequest, at: chrono::DateTime<chrono::Utc>) -> NewEvent {
    let detail = without_secret(
        mask_json(serde_json::to_value(request).unwrap_or(Value::Null)),
        state.credentials.webhook_token.expose(),
    );
    let mut event = NewEvent::new(kind, at).call(&request.call_sid).channel("ivr").detail(detail);
    if let Some(from) = &request.from {
        event = event.party(format!("caller:{}", from.masked()));
    }
    event
}

/// Records an applet request (deduplicated by its exact parameters: a retry
/// of the same request is a duplicate, a new key press is not).
async fn record_applet(state: &AppState, route: &str, params: &ExotelParams) -> AppResult<(AppletRequest, bool)> {
    record_applet_with(state, route, params, |_| Vec::new()).await
}

/// [`record_applet`] with the follow-up jobs `jobs` makes of the request,
/// committed with it.
async fn record_applet_with(
    state: &AppState,
    route: &str,
    params: &ExotelParams,
    jobs: impl FnOnce(&AppletRequest) -> Vec<NewJob>,
) -> AppResult<(AppletRequest, bool)> {
    let request = AppletRequest::from_params(&params.0).map_err(|e| malformed(&params.0, route, e))?;
    let inbound = InboundEvent {
        dedup_key: format!("exotel:applet:{route}:{}:{}", request.call_sid, params.fingerprint()),
        source: format!("exotel.{route}"),
        event: applet_event(state, &format!("exotel.{route}"), &request, state.clock.now()),
        jobs: jobs(&request),
    };
    let duplicate = record(state, inbound).await? == InboundOutcome::Duplicate;
    if !duplicate {
        link_attempt(state, &request).await?;
    }
    Ok((request, duplicate))
}

/// Gives an attempt whose `Calls/connect` answer was lost its CallSid, from
/// the first applet request of its flow (which carries our `CustomField`).
/// A flow call's status callback has only Exotel's four default fields, no
/// `CustomField`, so this is how that callback finds the attempt.
async fn link_attempt(state: &AppState, request: &AppletRequest) -> AppResult<()> {
    use mangwale_store::CallState;
    let Some(id) = request.custom_field.as_deref().and_then(crate::calls::attempt_id) else { return Ok(()) };
    let unavailable = |e: mangwale_store::StoreError| {
        tracing::error!(error = %e, "linking an applet request to its call attempt failed");
        AppError::Unavailable { code: "store_unavailable", message: "the event could not be recorded; retry".into() }
    };
    let Some(attempt) = state.store.call_by_id(id).await.map_err(unavailable)? else { return Ok(()) };
    if attempt.call_sid.is_none() && matches!(attempt.state, CallState::Requested | CallState::Unknown) {
        let detail = "CallSid learnt from the flow's applet request";
        state
            .store
            .update_call(id, CallState::InProgress, Some(&request.call_sid), Some(detail), state.clock.now())
            .await
            .map_err(unavailable)?;
        tracing::info!(attempt = id, call_sid = %request.call_sid, "call attempt linked by its flow");
    }
    Ok(())
}

fn acknowledged(call_sid: &str, duplicate: bool) -> Json<Value> {
    Json(json!({"ok": true, "callSid": call_sid, "duplicate": duplicate}))
}

/// An incoming call (the Passthru at the start of the inbound flow): who is
/// calling decides the flow's caller Switch, answered as Exotel's Switch
/// Case reads it (`{"select":"<case>"}`, `text/plain`). A caller without
/// `CallFrom` is an unknown caller. The seed's callers (no `flow`) get the
/// JSON acknowledgement.
async fn incoming(State(state): State<AppState>, params: ExotelParams) -> AppResult<Response> {
    let (request, duplicate) = record_applet(&state, "incoming", &params).await?;
    let route = if duplicate {
        // Exotel's retry of the same request: the record made the first time.
        match state.store.inbound_call(&request.call_sid).await? {
            Some(call) => mangwale_core::inbound::route_for_caller(call.kind, call.order_id.is_some()),
            None => crate::inbound::menus::incoming(&state, &request).await?,
        }
    } else {
        crate::inbound::menus::incoming(&state, &request).await?
    };
    if switch_flow(&params) {
        return Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], SwitchCase::new(route.name()).body()).into_response());
    }
    Ok(acknowledged(&request.call_sid, duplicate).into_response())
}

/// A missed call (Passthru of the never-answering missed-call flow), or the
/// seed's JSON body `{From, To, CallType: "missed"}`: recorded with the job
/// that calls the caller back (`inbound::missed`). The seed's body carries
/// no CallSid; the caller's number is then the identity, one per minute.
async fn missed_call(State(state): State<AppState>, params: ExotelParams) -> AppResult<Json<Value>> {
    let mut params = params;
    if params.0.get_any(&["CallSid", "call_sid"]).is_none() {
        let from = params
            .0
            .get_any(&["CallFrom", "From", "from_phone"])
            .and_then(|f| mangwale_core::E164::parse(f).ok())
            .ok_or_else(|| {
                malformed(&params.0, "missed-call", ParamError { field: "From", message: "is required".into() })
            })?;
        let minute = state.clock.now().timestamp() / 60;
        // The number's digest, not the number: the CallSid reaches the
        // timeline and the logs.
        let caller = &mangwale_store::phone_digest(&from)[..16];
        params.0.push("CallSid", format!("missed-{caller}-{minute}"));
    }
    let from = params.0.get_any(&["CallFrom", "From", "from_phone"]).ok_or_else(|| {
        malformed(&params.0, "missed-call", ParamError { field: "From", message: "is required".into() })
    })?;
    let from = mangwale_core::E164::parse(from)
        .map_err(|e| malformed(&params.0, "missed-call", ParamError { field: "From", message: e.to_string() }))?;
    // A call to the opt-out number stops campaign messages, and is never
    // called back.
    if crate::inbound::missed::is_opt_out_call(&state, &params.0) {
        // The ledger first: a retried request (after a failure) writes it
        // then, and the ledger keeps one entry.
        let source = mangwale_core::campaign::SuppressionSource::MissedCall;
        crate::campaigns::compliance::record_opt_out(&state, &from, source, Some("missed call to OPT_OUT_NUMBER"))
            .await?;
        let (request, duplicate) = record_applet(&state, "missed-call", &params).await?;
        return Ok(acknowledged(&request.call_sid, duplicate));
    }
    // The callback is decided by a job committed with the call: it is
    // never lost, and never decided twice for a retried request.
    let at = state.clock.now();
    let (request, duplicate) = record_applet_with(&state, "missed-call", &params, |request| {
        vec![crate::inbound::missed::received_job(&request.call_sid, &from, at)]
    })
    .await?;
    Ok(acknowledged(&request.call_sid, duplicate))
}

/// Keys pressed at a Gather (delivered to the Passthru after it), or the
/// seed's `{CallSid, digits, context, order_id}` body.
///
/// The answer is read by the flow's Switch Case, so it is exactly what
/// Exotel's Switch Case article specifies: 200, `text/plain`,
/// `{"select":"<case>"}`. What else we know (the answer, why nothing
/// happened) goes to the timeline: `ivr.key` on a ladder's call, else
/// `ivr.key_ignored`.
async fn dtmf(State(state): State<AppState>, params: ExotelParams) -> AppResult<Response> {
    let (request, duplicate) = record_applet(&state, "dtmf", &params).await?;
    if request.digits.is_none() {
        tracing::info!(call_sid = %request.call_sid, "DTMF request without digits (no input)");
    }
    // Our flows name the menu in the URL; the seed's body names it `context`.
    let (flow, step) = flow_step(&params);
    if flow == crate::inbound::menus::FLOW {
        let route = crate::inbound::menus::key_pressed(&state, &request, &step, duplicate).await?;
        return Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], SwitchCase::new(route.name()).body()).into_response());
    }
    if flow == campaign_call::FLOW {
        let route = campaign_call::key_pressed(&state, &request, duplicate).await?;
        return Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], SwitchCase::new(route.name()).body()).into_response());
    }
    let outcome = crate::comms::ivr::key_pressed(&state, &request, &flow, &step, duplicate).await?;
    let select = SwitchCase::new(outcome.next.name());
    if let (Some(note), false) = (outcome.note, duplicate) {
        let event = NewEvent::new("ivr.key_ignored", state.clock.now()).call(&request.call_sid).channel("ivr").detail(
            json!({"flow": flow, "step": step, "digits": request.digits, "select": select.select, "note": note}),
        );
        state.store.record_event(event).await.map_err(|e| {
            tracing::error!(error = %e, "recording an ignored key failed");
            AppError::Unavailable {
                code: "store_unavailable",
                message: "the event could not be recorded; retry".into(),
            }
        })?;
    }
    Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], select.body()).into_response())
}

/// The flow and step an applet request is for: `flow`/`step` of our URLs,
/// or the seed's `context` (`vendor_new_order` → its main menu).
fn flow_step(params: &ExotelParams) -> (String, String) {
    let flow = params.0.get_any(&["flow", "context"]).unwrap_or("").to_string();
    let flow = match flow.as_str() {
        "rider_assign" => "rider_assignment".to_string(),
        "address_update" | "rider_address_update" => "address_update".to_string(),
        _ => flow,
    };
    let step = params.0.get("step").unwrap_or("menu").to_string();
    (flow, step)
}

/// A voice status callback: recorded, and reconciled with our call attempt
/// by a follow-up job.
async fn call_status(State(state): State<AppState>, params: ExotelParams) -> AppResult<Json<Value>> {
    let callback = CallStatusCallback::from_params(&params.0).map_err(|e| malformed(&params.0, "call-status", e))?;
    let key = callback.dedup_key();
    let detail = mask_json(serde_json::to_value(&callback).unwrap_or(Value::Null));
    let inbound = InboundEvent {
        dedup_key: key.clone(),
        source: "exotel.call_status".into(),
        event: NewEvent::new("exotel.call_status", state.clock.now())
            .call(&callback.call_sid)
            .channel("call")
            .detail(detail),
        jobs: vec![
            NewJob::follow_up(
                CALL_STATUS_JOB,
                crate::calls::call_status_payload(&callback, state.clock.now()),
                state.clock.now(),
            )
            .max_attempts(20),
        ],
    };
    let duplicate = record(&state, inbound).await? == InboundOutcome::Duplicate;
    Ok(acknowledged(&callback.call_sid, duplicate))
}

/// An SMS delivery report (every SMS we send names this route in
/// `StatusCallback`). The ladder that sent it (`CustomField=l:<escalation
/// id>`) puts it on its order's timeline, so a DLT or DND rejection is seen
/// where the alert was expected; a missed caller's SMS (`m:<callback id>`)
/// goes to the caller's; each report is counted by status.
async fn sms_status(State(state): State<AppState>, params: ExotelParams) -> AppResult<Json<Value>> {
    let report = SmsStatusCallback::from_params(&params.0).map_err(|e| malformed(&params.0, "sms-status", e))?;
    let detail = mask_json(serde_json::to_value(&report).unwrap_or(Value::Null));
    let mut event = NewEvent::new("exotel.sms_status", state.clock.now()).channel("sms").detail(detail);
    let escalation = report.custom_field.as_deref().and_then(|c| c.strip_prefix("l:")).filter(|id| !id.is_empty());
    if let Some(escalation_id) = escalation {
        match state.store.ladder(escalation_id).await {
            Ok(Some(ladder)) => {
                event = event.context(ladder.order_id.as_deref(), Some(&ladder.escalation_id), Some(&ladder.party));
            }
            Ok(None) => tracing::info!(sms_sid = %report.sms_sid, "SMS report for an unknown ladder"),
            Err(e) => {
                tracing::error!(error = %e, "looking up the ladder of an SMS report failed");
                return Err(AppError::Unavailable {
                    code: "store_unavailable",
                    message: "the event could not be recorded; retry".into(),
                });
            }
        }
    }
    // A missed caller's SMS (`m:<callback id>`): on the caller's timeline.
    let callback = report.custom_field.as_deref().and_then(|c| c.strip_prefix("m:")).filter(|id| !id.is_empty());
    if let Some(callback_id) = callback {
        match state.store.callback(callback_id).await {
            Ok(Some(callback)) => event = event.party(crate::inbound::missed::party(&callback.phone)),
            Ok(None) => tracing::info!(sms_sid = %report.sms_sid, "SMS report for an unknown callback"),
            Err(e) => {
                tracing::error!(error = %e, "looking up the callback of an SMS report failed");
                return Err(AppError::Unavailable {
                    code: "store_unavailable",
                    message: "the event could not be recorded; retry".into(),
                });
            }
        }
    }
    // Exotel found the number on the DND registry: no promotional
    // message goes to it again. Written before the report, so a retried
    // report (after a failure) writes it then; the ledger keeps one entry.
    if report.status == SmsStatus::FailedDnd
        && let Some(to) = &report.to
    {
        let note = format!("failed_dnd of SMS {}", report.sms_sid);
        crate::campaigns::compliance::record_opt_out(
            &state,
            to,
            mangwale_core::campaign::SuppressionSource::ExotelDnd,
            Some(&note),
        )
        .await?;
    }
    // A campaign SMS's outcome (found by its SmsSid, or its CustomField
    // `c:<campaign>:<seq>`): before the report is recorded, so a retried
    // report (after a failure) moves it then; the move is a compare-and-set,
    // so a repeated report changes nothing.
    campaign_call::sms_status(&state, &report).await.map_err(|e| {
        tracing::error!(error = %e, "moving a campaign SMS by its report failed");
        AppError::Unavailable { code: "store_unavailable", message: "the event could not be recorded; retry".into() }
    })?;
    let inbound =
        InboundEvent { dedup_key: report.dedup_key(), source: "exotel.sms_status".into(), event, jobs: Vec::new() };
    let duplicate = record(&state, inbound).await? == InboundOutcome::Duplicate;
    if !duplicate {
        metrics::counter!("mangwale_exotel_sms_status_total", "status" => report.status.as_str().to_string())
            .increment(1);
        if matches!(report.status, SmsStatus::Failed | SmsStatus::FailedDnd) {
            tracing::warn!(
                sms_sid = %report.sms_sid,
                status = report.status.as_str(),
                detailed_status = report.detailed_status.as_deref().unwrap_or("-"),
                code = report.detailed_status_code,
                "Exotel could not deliver an SMS"
            );
        }
    }
    Ok(Json(json!({"ok": true, "smsSid": report.sms_sid, "duplicate": duplicate})))
}

/// The welcome greeting (Greeting applet); its HEAD is [`head_text`].
async fn greeting(State(state): State<AppState>, params: ExotelParams) -> AppResult<Response> {
    let (request, _) = record_applet(&state, "greeting", &params).await?;
    let (flow, step) = flow_step(&params);
    let step = params.0.get("step").map(str::to_string).unwrap_or(step);
    if flow == crate::voice::record::FLOW {
        let text = Greeting::Text(crate::voice::record::greeting(&state, &request, &step).await?);
        return Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], text.body()).into_response());
    }
    if flow == crate::inbound::menus::FLOW {
        let text = Greeting::Text(crate::inbound::menus::greeting(&state, &request, &step).await?);
        return Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], text.body()).into_response());
    }
    if flow == campaign_call::FLOW {
        let text = Greeting::Text(campaign_call::greeting(&state, &request, &step).await?);
        return Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], text.body()).into_response());
    }
    let text = if flow == masking::FLOW {
        Greeting::Text(masking::no_session_text(&state))
    } else {
        Greeting::Text(crate::comms::ivr::greeting(&state, &request, &flow, &step).await)
    };
    Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], text.body()).into_response())
}

/// The menu at a Gather of our flows: a ladder call's step in the party's
/// language, the order-digits question of a masked call, the inbound
/// flow's menus; a 400 naming `step` where no menu of ours is.
async fn gather(State(state): State<AppState>, params: ExotelParams) -> AppResult<Json<Gather>> {
    let (request, _) = record_applet(&state, "gather", &params).await?;
    let (flow, step) = flow_step(&params);
    if flow == masking::FLOW {
        return Ok(Json(masking::ask_order()));
    }
    if flow == campaign_call::FLOW
        && let Some(menu) = campaign_call::gather_at(&state, &request, &step).await?
    {
        return Ok(Json(menu));
    }
    if flow == crate::inbound::menus::FLOW
        && let Some(menu) = crate::inbound::menus::gather(&state, &request, &step).await?
    {
        return Ok(Json(menu));
    }
    if let Some(menu) = crate::comms::ivr::gather(&state, &request, &flow, &step).await {
        return Ok(Json(menu));
    }
    // No menu of ours is at this URL (a dashboard applet misconfigured):
    // offering keys that nothing acts on would strand the caller.
    Err(malformed(
        &params.0,
        "gather",
        ParamError { field: "step", message: format!("no menu of our flows at flow={flow:?} step={step:?}") },
    ))
}

/// Whom to connect (Connect applet): admin support at the `admin` steps of
/// our flows; the counterpart of the caller's masking session in the
/// masked-call flow; otherwise nobody, and Exotel moves on to the next
/// applet.
async fn connect(State(state): State<AppState>, params: ExotelParams) -> AppResult<Json<Connect>> {
    let (request, _) = record_applet(&state, "connect", &params).await?;
    let (flow, step) = flow_step(&params);
    if flow == masking::FLOW {
        return Ok(Json(masking::connect(&state, &request, params.0.get("step").unwrap_or("")).await?));
    }
    if flow == campaign_call::FLOW {
        return Ok(Json(campaign_call::connect(&state, &request, &step).await?));
    }
    if (flow == crate::inbound::menus::FLOW || flow == crate::voice::record::FLOW) && step != "admin" {
        return Ok(Json(crate::inbound::menus::connect(&state, &request, &step).await?));
    }
    Ok(Json(crate::comms::ivr::connect(&state, &step)))
}

/// A logging Passthru: 200 keeps the flow on its main branch. In the
/// masked-call flow the Passthrus before its Switch Cases answer
/// `{"select": ...}` (see `masking::inbound`), and the one after the
/// Connect records how the masked call ended.
async fn passthru(State(state): State<AppState>, params: ExotelParams) -> AppResult<Response> {
    let (request, _) = record_applet(&state, "passthru", &params).await?;
    let (flow, step) = flow_step(&params);
    if flow == masking::FLOW {
        let next = match step.as_str() {
            "identify" => Some(masking::identify(&state, &request).await?),
            "order_digits" => Some(masking::order_digits(&state, &request).await?),
            _ => {
                masking::after_connect(&state, &request).await?;
                None
            }
        };
        if let Some(next) = next {
            return Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], next.select().body()).into_response());
        }
    }
    // The record flow's turn: the recording's words through the dialog.
    if flow == crate::voice::record::FLOW && step == "heard" {
        let next = crate::voice::record::heard(&state, &request).await?;
        return Ok(([(header::CONTENT_TYPE, TEXT_PLAIN)], SwitchCase::new(next.name()).body()).into_response());
    }
    // After a masked Connect of the inbound menus: how the conversation
    // ended, with the masked calls.
    if flow == crate::inbound::menus::FLOW && step == "after_masked" {
        masking::after_connect(&state, &request).await?;
    }
    // After the voice bot (the inbound flow's, or a campaign call's after
    // key 1): 302 (the flow's order desk) unless its dialog ended with the
    // caller served.
    if (flow == crate::inbound::menus::FLOW || flow == campaign_call::FLOW)
        && step == "after_bot"
        && crate::voicebot::after_bot_to_desk(&state, &request.call_sid).await?
    {
        return Ok(StatusCode::FOUND.into_response());
    }
    Ok(StatusCode::OK.into_response())
}
