//! A campaign call: one recipient's voice message, placed through Exotel
//! into the `campaign_call` flow.

use mangwale_store::{CallAttempt, Campaign, ClaimedMessage};

use crate::calls::{CallTarget, PlaceCall, PlaceCallError, place_call_showing};
use crate::exotel::CallerPurpose;
use crate::state::AppState;

/// The flow a campaign call runs (`flows/exotel-flows.toml`).
pub const CAMPAIGN_FLOW: &str = "campaign_call";

/// How long a campaign call may last, seconds.
const TIME_LIMIT: u32 = 300;
/// How long it rings before it counts as not answered, seconds.
const RING_SECONDS: u32 = 30;

/// One campaign call to place.
#[derive(Debug, Clone, Copy)]
pub struct CampaignCall<'a> {
    pub campaign: &'a Campaign,
    pub message: &'a ClaimedMessage,
    /// The template's voice text, rendered for the recipient.
    pub text: &'a str,
}

/// The call's party on the attempt and the timeline: `campaign:<id>:<seq>`.
pub fn party(call: &CampaignCall<'_>) -> String {
    format!("campaign:{}:{}", call.campaign.id, call.message.seq)
}

/// Places the call (purpose `campaign`), showing the campaign's caller id
/// when it has one.
pub async fn place_campaign_call(state: &AppState, call: CampaignCall<'_>) -> Result<CallAttempt, PlaceCallError> {
    let caller_id = call.campaign.caller_id.clone().unwrap_or_else(|| state.exotel.caller_id(CallerPurpose::Other));
    let place = PlaceCall {
        purpose: "campaign".into(),
        caller: CallerPurpose::Other,
        from: call.message.phone.clone(),
        target: CallTarget::Flow(CAMPAIGN_FLOW.into()),
        order_id: None,
        escalation_id: None,
        party: Some(party(&call)),
        time_limit: Some(TIME_LIMIT),
        ring_timeout: Some(RING_SECONDS),
    };
    place_call_showing(state, place, caller_id).await
}
