//! Jupiter's webhook events and what each one sets in motion (the seed's
//! webhook table). Pure: the route records the event and enqueues these
//! actions as jobs in one transaction.
//!
//! Actions that need nothing from Jupiter (stopping ladders, closing masking
//! sessions) are enqueued at once. Actions that act on the order (starting a
//! ladder, notifying someone, asking Jupiter to reassign) wait behind a
//! lookup of the order ([`RESOLVE_JOB`]): if Jupiter is down they happen once
//! it is back, and an order Jupiter does not know starts nothing, with the
//! reason on the timeline.

use serde_json::{Value, json};

/// Looks the order up in Jupiter, then enqueues the event's order actions.
pub const RESOLVE_JOB: &str = "jupiter.event";
/// Starts an escalation ladder (handler: the orchestrator).
pub const LADDER_START_JOB: &str = "ladder.start";
/// Stops escalation ladders (handler: the orchestrator).
pub const LADDER_STOP_JOB: &str = "ladder.stop";
/// Tells the assigned rider the order is ready (handler: the orchestrator).
pub const NOTIFY_RIDER_READY_JOB: &str = "notify.rider_ready";
/// Tells the customer where the order is (handler: the orchestrator).
pub const NOTIFY_CUSTOMER_JOB: &str = "notify.customer_status";
/// Opens a masking session of the order between the payload's `pair`
/// (handler: masking).
pub const MASKING_OPEN_JOB: &str = "masking.open";
/// Closes every masking session of the order (handler: masking).
pub const MASKING_CLOSE_JOB: &str = "masking.close";
/// Gives the rider who accepted the pickup location (handler:
/// `comms::pickup`).
pub use crate::comms::pickup::PICKUP_JOB;

/// The two parties of an order a masking session connects.
pub use mangwale_core::masking::PartyPair;

/// The payload of a `masking.open` job: `{"orderId", "pair", "source", "context"}`.
pub fn masking_open_payload(order_id: &str, pair: PartyPair, source: &str, context: &Value) -> Value {
    json!({"orderId": order_id, "pair": pair.as_str(), "source": source, "context": context})
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    OrderNew,
    OrderAccepted,
    OrderRejected,
    OrderReady,
    RiderAssigned,
    RiderAccepted,
    RiderRejected,
    AddressChanged,
    OrderPickedUp,
    OrderDelivered,
}

/// Which ladder an action starts or stops.
pub use mangwale_core::ladder::LadderKind as Ladder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    StartLadder(Ladder),
    StopLadders(&'static [Ladder]),
    /// Every ladder of the order.
    StopAllLadders,
    NotifyRiderReady,
    NotifyCustomer(&'static str),
    /// The rider who accepted gets the pickup location.
    NotifyRiderPickup,
    OpenMasking(PartyPair),
    CloseMasking,
    /// notifyJupiter with this event type (reassign_vendor, reassign_rider).
    TellJupiter(&'static str),
}

impl Action {
    /// Whether the action acts on the order, and so waits for Jupiter to
    /// confirm the order exists.
    pub fn needs_order(self) -> bool {
        !matches!(self, Action::StopLadders(_) | Action::StopAllLadders | Action::CloseMasking)
    }

    /// A short name for the API answer and the timeline.
    pub fn name(self) -> String {
        match self {
            Action::StartLadder(l) => format!("start:{}", l.name()),
            Action::StopLadders(ls) => {
                format!("stop:{}", ls.iter().map(|l| l.name()).collect::<Vec<_>>().join("+"))
            }
            Action::StopAllLadders => "stop:all".into(),
            Action::NotifyRiderReady => "notify:rider_ready".into(),
            Action::NotifyCustomer(status) => format!("notify:customer_{status}"),
            Action::NotifyRiderPickup => "notify:rider_pickup".into(),
            Action::OpenMasking(pair) => format!("masking:open:{}", pair.as_str()),
            Action::CloseMasking => "masking:close".into(),
            Action::TellJupiter(event) => format!("jupiter:{event}"),
        }
    }

    /// The job that carries the action out: its kind and payload. `outbox`
    /// actions are built by the caller (they go through the Jupiter outbox).
    pub fn job(self, event: WebhookEvent, order_id: &str, body: &Value) -> (&'static str, Value) {
        let source = format!("jupiter:{}", event.path());
        match self {
            Action::StartLadder(ladder) => (
                LADDER_START_JOB,
                json!({"ladder": ladder.name(), "orderId": order_id, "escalationId": ladder.escalation_id(order_id, 0),
                       "source": source, "context": body}),
            ),
            Action::StopLadders(ladders) => (
                LADDER_STOP_JOB,
                json!({"orderId": order_id,
                       "escalationIds": ladders.iter().map(|l| l.escalation_id(order_id, 0)).collect::<Vec<_>>(),
                       "ladders": ladders.iter().map(|l| l.name()).collect::<Vec<_>>(),
                       "actor": source, "outcome": event.outcome()}),
            ),
            Action::StopAllLadders => (
                LADDER_STOP_JOB,
                json!({"orderId": order_id, "all": true, "actor": source, "outcome": event.outcome()}),
            ),
            Action::NotifyRiderReady => (NOTIFY_RIDER_READY_JOB, json!({"orderId": order_id, "source": source})),
            Action::NotifyCustomer(status) => {
                (NOTIFY_CUSTOMER_JOB, json!({"orderId": order_id, "status": status, "source": source}))
            }
            Action::NotifyRiderPickup => (PICKUP_JOB, crate::comms::pickup::payload_for_event(order_id, &source, body)),
            Action::OpenMasking(pair) => (MASKING_OPEN_JOB, masking_open_payload(order_id, pair, &source, body)),
            Action::CloseMasking => (MASKING_CLOSE_JOB, json!({"orderId": order_id, "source": source})),
            Action::TellJupiter(kind) => (
                super::outbox::OUTBOX_JOB,
                super::outbox::event(kind, order_id, json!({"reason": body.get("reason"), "source": source}))
                    .payload(order_id),
            ),
        }
    }
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 10] = [
        WebhookEvent::OrderNew,
        WebhookEvent::OrderAccepted,
        WebhookEvent::OrderRejected,
        WebhookEvent::OrderReady,
        WebhookEvent::RiderAssigned,
        WebhookEvent::RiderAccepted,
        WebhookEvent::RiderRejected,
        WebhookEvent::AddressChanged,
        WebhookEvent::OrderPickedUp,
        WebhookEvent::OrderDelivered,
    ];

    /// The path under `/webhooks/jupiter/`.
    pub fn path(self) -> &'static str {
        match self {
            WebhookEvent::OrderNew => "order/new",
            WebhookEvent::OrderAccepted => "order/accepted",
            WebhookEvent::OrderRejected => "order/rejected",
            WebhookEvent::OrderReady => "order/ready",
            WebhookEvent::RiderAssigned => "rider/assigned",
            WebhookEvent::RiderAccepted => "rider/accepted",
            WebhookEvent::RiderRejected => "rider/rejected",
            WebhookEvent::AddressChanged => "address/changed",
            WebhookEvent::OrderPickedUp => "order/picked-up",
            WebhookEvent::OrderDelivered => "order/delivered",
        }
    }

    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The timeline kind: `jupiter.order_new`, `jupiter.rider_assigned`, ...
    pub fn timeline_kind(self) -> String {
        format!("jupiter.{}", self.path().replace(['/', '-'], "_"))
    }

    /// How a ladder stopped by this event ended.
    fn outcome(self) -> &'static str {
        match self {
            WebhookEvent::OrderAccepted | WebhookEvent::RiderAccepted => "accepted",
            WebhookEvent::OrderRejected | WebhookEvent::RiderRejected => "rejected",
            WebhookEvent::OrderDelivered => "delivered",
            _ => "stopped",
        }
    }

    /// What the event sets in motion (the seed's webhook table).
    pub fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            WebhookEvent::OrderNew => &[StartLadder(Ladder::VendorNewOrder)],
            WebhookEvent::OrderAccepted => &[StopLadders(&[Ladder::VendorNewOrder])],
            WebhookEvent::OrderRejected => &[StopLadders(&[Ladder::VendorNewOrder]), TellJupiter("reassign_vendor")],
            WebhookEvent::OrderReady => &[StopLadders(&[Ladder::VendorReminder]), NotifyRiderReady],
            WebhookEvent::RiderAssigned => &[StartLadder(Ladder::RiderAssign), OpenMasking(PartyPair::CustomerRider)],
            // As on an accept by IVR key or WhatsApp button (`comms::answers`).
            WebhookEvent::RiderAccepted => &[
                StopLadders(&[Ladder::RiderAssign]),
                NotifyRiderPickup,
                OpenMasking(PartyPair::RiderVendor),
                OpenMasking(PartyPair::CustomerRider),
            ],
            WebhookEvent::RiderRejected => &[StopLadders(&[Ladder::RiderAssign]), TellJupiter("reassign_rider")],
            WebhookEvent::AddressChanged => &[StartLadder(Ladder::RiderAddressUpdate)],
            WebhookEvent::OrderPickedUp => &[NotifyCustomer("picked_up")],
            WebhookEvent::OrderDelivered => &[StopAllLadders, CloseMasking],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_round_trips() {
        for event in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::from_path(event.path()), Some(event));
        }
        assert_eq!(WebhookEvent::from_path("order/unknown"), None);
        assert_eq!(WebhookEvent::OrderPickedUp.timeline_kind(), "jupiter.order_picked_up");
    }

    #[test]
    fn the_seed_table() {
        let names = |e: WebhookEvent| e.actions().iter().map(|a| a.name()).collect::<Vec<_>>();
        assert_eq!(names(WebhookEvent::OrderNew), ["start:vendor_new_order"]);
        assert_eq!(names(WebhookEvent::OrderRejected), ["stop:vendor_new_order", "jupiter:reassign_vendor"]);
        assert_eq!(names(WebhookEvent::RiderAssigned), ["start:rider_assign", "masking:open:customer_rider"]);
        assert_eq!(
            names(WebhookEvent::RiderAccepted),
            ["stop:rider_assign", "notify:rider_pickup", "masking:open:rider_vendor", "masking:open:customer_rider"]
        );
        assert_eq!(names(WebhookEvent::AddressChanged), ["start:rider_address_update"]);
        assert_eq!(names(WebhookEvent::OrderDelivered), ["stop:all", "masking:close"]);
        // Stops never wait for Jupiter; starts always do.
        assert!(!Action::StopAllLadders.needs_order());
        assert!(Action::StartLadder(Ladder::VendorNewOrder).needs_order());
    }

    #[test]
    fn jobs_carry_the_incumbent_escalation_ids() {
        let (kind, payload) = Action::StartLadder(Ladder::VendorNewOrder).job(
            WebhookEvent::OrderNew,
            "12345",
            &json!({"order_id": 12345}),
        );
        assert_eq!(kind, LADDER_START_JOB);
        assert_eq!(payload["escalationId"], "vendor_order_12345");
        let (_, stop) = Action::StopLadders(&[Ladder::RiderAssign]).job(WebhookEvent::RiderAccepted, "9", &json!({}));
        assert_eq!(stop["escalationIds"], json!(["rider_assign_9"]));
        assert_eq!(stop["outcome"], "accepted");
    }
}
