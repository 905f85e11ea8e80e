//! What the simulator remembers: its data, the requests it received, the
//! messages Jupiter was sent, and the faults waiting to be applied.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::data::DemoData;
use super::{JupiterFault, ReceivedRequest, Target};

/// How many received requests, status updates and notifications are kept
/// (oldest dropped first), so a long sandbox run stays small.
const MAX_LOG: usize = 10_000;

#[derive(Default)]
pub(crate) struct State {
    pub data: DemoData,
    received: VecDeque<ReceivedRequest>,
    /// How many received requests were dropped from the front of the log:
    /// a request's sequence number minus this is its index.
    received_offset: u64,
    faults: Vec<FaultRule>,
    pub jupiter_down: bool,
    pub php_down: bool,
    pub status_updates: VecDeque<Value>,
    pub notifications: VecDeque<Value>,
    /// `POST /api/order/create` answers by idempotency key.
    pub created_orders: HashMap<String, Value>,
}

struct FaultRule {
    target: Target,
    path_prefix: String,
    fault: JupiterFault,
    remaining: u32,
}

impl State {
    pub fn new(data: DemoData) -> Self {
        State { data, ..State::default() }
    }

    /// Logs a request; returns its sequence number for [`State::set_answer`].
    pub fn record(&mut self, request: ReceivedRequest) -> u64 {
        if self.received.len() >= MAX_LOG {
            self.received.pop_front();
            self.received_offset += 1;
        }
        self.received.push_back(request);
        self.received_offset + self.received.len() as u64 - 1
    }

    /// Notes the status a logged request was answered with.
    pub fn set_answer(&mut self, seq: u64, status: u16) {
        let index = seq.checked_sub(self.received_offset).and_then(|i| usize::try_from(i).ok());
        if let Some(entry) = index.and_then(|i| self.received.get_mut(i)) {
            entry.status = Some(status);
        }
    }

    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received.iter().cloned().collect()
    }

    pub fn clear_received(&mut self) {
        self.received_offset += self.received.len() as u64;
        self.received.clear();
    }

    pub fn is_down(&self, target: Target) -> bool {
        match target {
            Target::Jupiter => self.jupiter_down,
            Target::Php => self.php_down,
        }
    }

    pub fn set_down(&mut self, target: Target, down: bool) {
        match target {
            Target::Jupiter => self.jupiter_down = down,
            Target::Php => self.php_down = down,
        }
    }

    pub fn add_fault(&mut self, target: Target, path_prefix: &str, fault: JupiterFault, times: u32) {
        if times > 0 {
            self.faults.push(FaultRule { target, path_prefix: path_prefix.to_string(), fault, remaining: times });
        }
    }

    /// Uses up one application of the oldest fault that applies to a request.
    pub fn take_fault(&mut self, target: Target, path: &str) -> Option<JupiterFault> {
        let index = self.faults.iter().position(|r| r.target == target && path.starts_with(&r.path_prefix))?;
        let rule = &mut self.faults[index];
        rule.remaining -= 1;
        let fault = rule.fault;
        if rule.remaining == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }

    pub fn push_status_update(&mut self, body: Value) {
        push_capped(&mut self.status_updates, body);
    }

    pub fn push_notification(&mut self, body: Value) {
        push_capped(&mut self.notifications, body);
    }
}

fn push_capped(log: &mut VecDeque<Value>, value: Value) {
    if log.len() >= MAX_LOG {
        log.pop_front();
    }
    log.push_back(value);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn faults_are_used_up_in_order_and_match_by_prefix() {
        let mut st = State::default();
        st.add_fault(Target::Jupiter, "/api/order/status", JupiterFault::Drop, 1);
        st.add_fault(Target::Jupiter, "", JupiterFault::Status(503), 2);
        st.add_fault(Target::Php, "/api", JupiterFault::Delay(Duration::from_millis(5)), 1);
        assert_eq!(st.take_fault(Target::Jupiter, "/api/order/status"), Some(JupiterFault::Drop));
        assert_eq!(st.take_fault(Target::Jupiter, "/api/order/status"), Some(JupiterFault::Status(503)));
        assert_eq!(st.take_fault(Target::Php, "/"), None);
        assert_eq!(st.take_fault(Target::Jupiter, "/health"), Some(JupiterFault::Status(503)));
        assert_eq!(st.take_fault(Target::Jupiter, "/health"), None);
        assert_eq!(
            st.take_fault(Target::Php, "/api/v1/items/search"),
            Some(JupiterFault::Delay(Duration::from_millis(5)))
        );
    }
}
