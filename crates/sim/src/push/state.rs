//! What the push simulator remembers: requests, deliveries, issued tokens,
//! recipients' scripts and the faults waiting to be applied.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};

use super::{Delivery, IssuedToken, PushEndpoint, PushFault, PushRequest, PushScript};
use crate::ids::IdGen;

/// How many requests, deliveries and tokens are kept (oldest dropped
/// first), so a long sandbox run stays small.
const MAX_LOG: usize = 10_000;

pub(crate) struct State {
    received: VecDeque<PushRequest>,
    next_seq: u64,
    deliveries: VecDeque<Delivery>,
    tokens: VecDeque<IssuedToken>,
    scripts: HashMap<String, PushScript>,
    faults: Vec<FaultRule>,
    pub ids: IdGen,
}

struct FaultRule {
    endpoint: PushEndpoint,
    fault: PushFault,
    remaining: u32,
}

fn push_capped<T>(log: &mut VecDeque<T>, item: T) {
    if log.len() >= MAX_LOG {
        log.pop_front();
    }
    log.push_back(item);
}

impl State {
    pub fn new(seed: u64) -> Self {
        State {
            received: VecDeque::new(),
            next_seq: 1,
            deliveries: VecDeque::new(),
            tokens: VecDeque::new(),
            scripts: HashMap::new(),
            faults: Vec::new(),
            ids: IdGen::new(seed),
        }
    }

    /// Logs a request, giving it the next sequence number.
    pub fn record(&mut self, mut request: PushRequest) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        request.seq = seq;
        push_capped(&mut self.received, request);
        seq
    }

    pub fn request_mut(&mut self, seq: u64) -> Option<&mut PushRequest> {
        // Sequence numbers grow by one, so the entry is at a known distance
        // from the back, whatever was dropped from the front.
        let back = usize::try_from(self.next_seq.checked_sub(seq)?).ok()?;
        let index = self.received.len().checked_sub(back)?;
        self.received.get_mut(index).filter(|r| r.seq == seq)
    }

    pub fn received(&self) -> Vec<PushRequest> {
        self.received.iter().cloned().collect()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.iter().cloned().collect()
    }

    pub fn deliver(&mut self, delivery: Delivery) {
        push_capped(&mut self.deliveries, delivery);
    }

    pub fn tokens(&self) -> Vec<IssuedToken> {
        self.tokens.iter().cloned().collect()
    }

    pub fn issue(&mut self, token: IssuedToken) {
        push_capped(&mut self.tokens, token);
    }

    /// The scopes of `token` if it is known, unrevoked and unexpired at `now`.
    pub fn live_token_scopes(&self, token: &str, now: DateTime<Utc>) -> Option<Vec<String>> {
        self.tokens.iter().find(|t| t.token == token && !t.revoked && now < t.expires_at).map(|t| t.scopes.clone())
    }

    pub fn revoke_tokens(&mut self) {
        for token in &mut self.tokens {
            token.revoked = true;
        }
    }

    pub fn clear_log(&mut self) {
        self.received.clear();
        self.deliveries.clear();
        // Tokens stay valid: only revoke_tokens ends them. Keep the live ones.
        self.tokens.retain(|t| !t.revoked);
    }

    pub fn set_script(&mut self, recipient: &str, script: PushScript) {
        if script == PushScript::Delivers {
            self.scripts.remove(recipient);
        } else {
            self.scripts.insert(recipient.to_string(), script);
        }
    }

    pub fn script(&self, recipient: &str) -> PushScript {
        self.scripts.get(recipient).copied().unwrap_or_default()
    }

    pub fn add_fault(&mut self, endpoint: PushEndpoint, fault: PushFault, times: u32) {
        if times > 0 {
            self.faults.push(FaultRule { endpoint, fault, remaining: times });
        }
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Uses up one application of the oldest fault that applies to `endpoint`.
    pub fn take_fault(&mut self, endpoint: PushEndpoint) -> Option<PushFault> {
        let index = self.faults.iter().position(|r| r.endpoint == PushEndpoint::Any || r.endpoint == endpoint)?;
        let rule = &mut self.faults[index];
        rule.remaining -= 1;
        let fault = rule.fault;
        if rule.remaining == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::AuthUsed;

    fn request() -> PushRequest {
        PushRequest {
            seq: 0,
            at: Utc::now(),
            method: "POST".into(),
            path: "/token".into(),
            endpoint: Some(PushEndpoint::Token),
            auth: AuthUsed::None,
            body: None,
            form: Vec::new(),
            recipient: None,
            fault: None,
            status: None,
            error: None,
            dropped: false,
        }
    }

    #[test]
    fn faults_are_used_up_in_order_and_any_matches_every_endpoint() {
        let mut st = State::new(1);
        st.add_fault(PushEndpoint::FcmSend, PushFault::Drop, 1);
        st.add_fault(PushEndpoint::Any, PushFault::status(503), 2);
        st.add_fault(PushEndpoint::Token, PushFault::status(500), 0);
        assert_eq!(st.take_fault(PushEndpoint::Token), Some(PushFault::status(503)));
        assert_eq!(st.take_fault(PushEndpoint::FcmSend), Some(PushFault::Drop));
        assert_eq!(st.take_fault(PushEndpoint::AppSend), Some(PushFault::status(503)));
        assert_eq!(st.take_fault(PushEndpoint::FcmSend), None);
    }

    #[test]
    fn requests_are_found_by_sequence_number() {
        let mut st = State::new(1);
        let first = st.record(request());
        let second = st.record(request());
        assert_eq!((first, second), (1, 2));
        st.request_mut(first).unwrap().status = Some(200);
        assert_eq!(st.received()[0].status, Some(200));
        assert!(st.request_mut(3).is_none());
        st.clear_log();
        assert!(st.request_mut(second).is_none());
        assert_eq!(st.record(request()), 3);
        assert!(st.request_mut(3).is_some());
    }

    #[test]
    fn scripts_default_to_delivering() {
        let mut st = State::new(1);
        st.set_script("vendor_V-1", PushScript::Unregistered);
        assert_eq!(st.script("vendor_V-1"), PushScript::Unregistered);
        assert_eq!(st.script("vendor_V-2"), PushScript::Delivers);
        st.set_script("vendor_V-1", PushScript::Delivers);
        assert_eq!(st.script("vendor_V-1"), PushScript::Delivers);
    }
}
