//! `voice dialog`'s JSON-lines session (`dialog::protocol::run`) over
//! [`LocalPorts`] and store 7's committed catalog (Godavari Misal House):
//! a call that orders, confirms and cancels, malformed lines, the end of
//! input as a hang-up, and the orders file across runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mangwale_voice::dialog::local::LocalPorts;
use mangwale_voice::dialog::protocol::{self, ErrorLine, TurnLine};
use mangwale_voice::dialog::{Dialog, Expects, Mode};
use mangwale_voice::{Catalog, Lang, Paise, Qty};
use serde_json::Value;

fn catalog() -> Arc<Catalog> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/catalogs/7.json");
    Arc::new(Catalog::from_json(&std::fs::read_to_string(path).unwrap()).unwrap())
}

/// An output line: a turn or an error.
#[derive(Debug)]
enum Out {
    Turn(Box<TurnLine>),
    Error(ErrorLine),
}

impl Out {
    fn turn(&self) -> &TurnLine {
        match self {
            Out::Turn(turn) => turn,
            Out::Error(e) => panic!("expected a turn, got {e:?}"),
        }
    }
}

/// Runs one call over `input` (lines of JSON) and returns what it wrote.
async fn session(ports: &LocalPorts, call_id: &str, input: &str) -> Vec<Out> {
    let catalog = ports.catalog_ref().clone();
    let mut dialog = Dialog::new(call_id, Mode::CatalogOnly, Lang::HiEn, Some(ports.store()));
    let mut output = Vec::new();
    protocol::run(&mut dialog, ports, &catalog, input.as_bytes(), &mut output).await.unwrap();
    String::from_utf8(output)
        .unwrap()
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            if value.get("error").is_some() {
                Out::Error(serde_json::from_value(value).unwrap())
            } else {
                // Exactly the protocol's fields.
                let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
                keys.sort();
                assert_eq!(keys, ["agent", "cart", "ended", "expects", "orders"], "{line}");
                Out::Turn(Box::new(serde_json::from_value(value).unwrap()))
            }
        })
        .collect()
}

fn lines_of(turn: &TurnLine) -> Vec<(String, Option<String>, Qty)> {
    turn.cart.lines.iter().map(|l| (l.item_id.clone(), l.variant_id.clone(), l.quantity)).collect()
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const ORDER_AND_CANCEL: &str = r#"{"say": "do plate misal aur ek cutting chai"}
{"say": "confirm"}
{"dtmf": "1"}
this is not json

{"say": "order cancel karo"}
{"dtmf": "1"}
"#;

#[tokio::test]
async fn a_call_orders_confirms_and_cancels_over_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let orders = dir.path().join("orders.jsonl");
    let ports = LocalPorts::with_orders_file(catalog(), &orders).unwrap();
    let out = session(&ports, "test-call-1", ORDER_AND_CANCEL).await;

    // The agent speaks first, to a fresh call.
    let greeting = out[0].turn();
    assert_eq!((greeting.expects, greeting.ended), (Expects::Items, false));
    assert!(greeting.cart.lines.is_empty() && greeting.orders.is_empty());
    assert!(greeting.agent.contains("Godavari Misal House"), "{}", greeting.agent);

    let items = out[1].turn();
    assert_eq!(lines_of(items)[0], ("7001".into(), None, Qty::whole(2)));
    assert_eq!(lines_of(items)[1].0, "7012");
    assert_eq!(items.cart.total, Paise(items.cart.lines.iter().map(|l| l.line_total.0).sum()));
    assert!(items.orders.is_empty());

    // "confirm" reads the cart back (or places it); the key confirms.
    let placed = out[3].turn();
    assert_eq!(placed.orders.len(), 1, "{}", placed.agent);
    let order = &placed.orders[0];
    assert_eq!((order.number.as_str(), order.cancelled, order.payment), ("1", false, None));
    assert_eq!(order.lines, items.cart.lines);
    assert_eq!(order.total, items.cart.total);
    assert!(!placed.ended, "the call stays open after an order");

    // The malformed line (line 4) gets an error and the dialog goes on;
    // the blank line is skipped.
    let Out::Error(error) = &out[4] else { panic!("expected an error line, got {:?}", out[4]) };
    assert_eq!(error.line, 4);
    assert!(error.error.starts_with("not JSON"), "{}", error.error);

    let cancelled = out[6].turn();
    assert_eq!(cancelled.orders.len(), 1);
    assert!(cancelled.orders[0].cancelled, "{}", cancelled.agent);

    // The end of the input is a hang-up.
    let last = out.last().unwrap().turn();
    assert_eq!(out.len(), 8);
    assert_eq!((last.expects, last.ended), (Expects::Nothing, true));

    let records = records(&orders);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["placed"]["order"]["order_id"], order.order_id.as_str());
    assert_eq!(records[0]["placed"]["idempotency_key"], "test-call-1:0");
    assert_eq!(records[1]["cancelled"]["order_id"], order.order_id.as_str());
}

#[tokio::test]
async fn each_run_is_a_fresh_call_and_the_file_numbers_on() {
    let dir = tempfile::tempdir().unwrap();
    let orders = dir.path().join("orders.jsonl");
    let script = "{\"say\": \"ek vada pav\"}\n{\"say\": \"confirm\"}\n{\"dtmf\": \"1\"}\n{\"hangup\": true}\n{\"say\": \"unread\"}\n";
    let first = session(&LocalPorts::with_orders_file(catalog(), &orders).unwrap(), "run-1", script).await;
    assert_eq!(first.last().unwrap().turn().orders[0].number, "1");
    assert_eq!(first.len(), 5, "nothing is read after the hang-up");

    let ports = LocalPorts::with_orders_file(catalog(), &orders).unwrap();
    let second = session(&ports, "run-2", script).await;
    assert!(second[0].turn().orders.is_empty(), "a new run starts with no orders");
    let order = &second.last().unwrap().turn().orders[0];
    assert_eq!((order.number.as_str(), order.lines[0].item_id.as_str()), ("2", "7004"));
    assert_eq!(ports.orders().len(), 2, "the ports hold the file's orders too");
}

#[tokio::test]
async fn every_malformed_line_is_named_and_the_call_goes_on() {
    let ports = LocalPorts::new(catalog());
    let input = "{\"say\": 5}\n{\"dtmf\": \"9x\"}\n{\"hangup\": false}\n{\"text\": \"ek chai\"}\n[1]\n{\"say\": \"ek vada pav\"}\n";
    let out = session(&ports, "bad-lines", input).await;
    let errors: Vec<(usize, String)> = out
        .iter()
        .filter_map(|o| match o {
            Out::Error(e) => Some((e.line, e.error.clone())),
            Out::Turn(_) => None,
        })
        .collect();
    assert_eq!(errors.len(), 5);
    assert_eq!(errors[0], (1, "say: expected a string".to_string()));
    assert_eq!(errors[1].0, 2);
    assert!(errors[1].1.starts_with("dtmf:"));
    assert_eq!(errors[2], (3, "hangup: expected true".to_string()));
    assert!(errors[3].1.starts_with("unknown field \"text\""), "{}", errors[3].1);
    assert!(errors[4].1.starts_with("expected an object"), "{}", errors[4].1);
    let after = out[6].turn();
    assert_eq!(lines_of(after), [("7004".to_string(), None, Qty::ONE)]);
    assert!(out[7].turn().ended, "then the end of input hangs up");
}
