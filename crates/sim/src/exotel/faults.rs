//! Injected faults and Exotel's request-rate limits.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::script::secs;

/// The REST endpoints of the simulator, for fault injection and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST Calls/connect`
    CallsConnect,
    /// `GET Calls/{CallSid}`
    CallDetails,
    /// `POST Sms/send`
    SmsSend,
    /// `POST Sms/bulksend`
    SmsBulkSend,
    /// `GET SMS/Messages/{SmsSid}`
    SmsDetails,
    /// `GET /v2_beta/Accounts/{sid}/IncomingPhoneNumbers` (list all ExoPhones)
    ExoPhones,
    /// `GET Numbers/{number}`
    Numbers,
    /// `GET /exotelrecordings/{sid}/{recording_sid}.wav` (a Record applet's
    /// `RecordingUrl`). A status fault answers an HTML error page.
    Recordings,
    /// Matches every endpoint (only as a fault target).
    Any,
}

impl Endpoint {
    /// Voice APIs share the 200 requests/minute limit.
    pub fn is_voice(self) -> bool {
        matches!(self, Endpoint::CallsConnect | Endpoint::CallDetails)
    }

    pub fn is_sms_send(self) -> bool {
        matches!(self, Endpoint::SmsSend | Endpoint::SmsBulkSend)
    }
}

/// A misbehaviour to apply to the next requests of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this HTTP status (500, 503, 504, …) and a `RestException`
    /// body; the request has no effect.
    Status { status: u16 },
    /// A slow answer: the request is handled at once (a call is placed, an
    /// SMS queued), and the answer sent this long (real time) later. A
    /// client that gives up sooner has no way to know what happened.
    Delay {
        #[serde(with = "secs")]
        secs: Duration,
    },
    /// Close the TCP connection without any response; the request has no effect.
    Drop,
    /// Handle the request (a call is placed, an SMS queued), then close the
    /// connection without sending the answer — the client cannot know.
    DropAfterProcessing,
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Fault::Status { status }
    }

    pub fn delay(d: Duration) -> Self {
        Fault::Delay { secs: d }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FaultRule {
    pub endpoint: Endpoint,
    pub fault: Fault,
    pub remaining: u32,
}

/// Takes one use of the first rule that applies to `endpoint`.
pub(crate) fn take_fault(rules: &mut Vec<FaultRule>, endpoint: Option<Endpoint>) -> Option<Fault> {
    let index =
        rules.iter().position(|r| r.remaining > 0 && (r.endpoint == Endpoint::Any || Some(r.endpoint) == endpoint))?;
    let rule = &mut rules[index];
    rule.remaining -= 1;
    let fault = rule.fault;
    if rule.remaining == 0 {
        rules.remove(index);
    }
    Some(fault)
}

/// A sliding one-minute window of accepted requests.
#[derive(Debug, Default)]
pub(crate) struct RateWindow(VecDeque<DateTime<Utc>>);

impl RateWindow {
    /// Records a request at `now` unless `limit` requests were accepted in
    /// the minute before; returns whether it was accepted.
    pub(crate) fn try_acquire(&mut self, now: DateTime<Utc>, limit: u32) -> bool {
        let start = now - chrono::Duration::seconds(60);
        while self.0.front().is_some_and(|t| *t <= start) {
            self.0.pop_front();
        }
        if self.0.len() >= limit as usize {
            return false;
        }
        self.0.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_used_up_in_order() {
        let mut rules = vec![
            FaultRule { endpoint: Endpoint::SmsSend, fault: Fault::Drop, remaining: 1 },
            FaultRule { endpoint: Endpoint::Any, fault: Fault::status(503), remaining: 2 },
        ];
        assert_eq!(take_fault(&mut rules, Some(Endpoint::SmsSend)), Some(Fault::Drop));
        assert_eq!(take_fault(&mut rules, Some(Endpoint::SmsSend)), Some(Fault::status(503)));
        assert_eq!(take_fault(&mut rules, None), Some(Fault::status(503)));
        assert_eq!(take_fault(&mut rules, Some(Endpoint::SmsSend)), None);
    }

    #[test]
    fn the_window_slides() {
        let t = Utc::now();
        let mut w = RateWindow::default();
        assert!(w.try_acquire(t, 2) && w.try_acquire(t, 2));
        assert!(!w.try_acquire(t + chrono::Duration::seconds(59), 2));
        assert!(w.try_acquire(t + chrono::Duration::seconds(60), 2));
    }
}
