//! The JSON-lines protocol of `mangwale-exotel voice dialog`, for programs
//! that drive a dialog over stdin and stdout (docs/voice.md has an example
//! session).
//!
//! Input, one object a line: `{"say": "do plate misal"}`, `{"dtmf": "1"}`
//! or `{"hangup": true}`. Blank lines are skipped. Output, one line per
//! turn, starting with the agent's greeting before any input:
//! `{"agent", "expects", "cart", "orders", "ended"}`. A malformed input
//! line gets `{"error": "...", "line": N}` (N counts input lines from 1)
//! and the dialog goes on. The end of the input is a hang-up.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ports::{PlacedOrder, Ports};
use super::{CartView, Dialog, Expects, Input, Reply};
use crate::catalog::Catalog;

/// One turn's output line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnLine {
    pub agent: String,
    pub expects: Expects,
    /// The cart as it stands after the turn, priced.
    pub cart: CartView,
    /// Every order placed in the call so far, cancelled ones flagged.
    pub orders: Vec<PlacedOrder>,
    pub ended: bool,
}

impl TurnLine {
    pub fn new(reply: &Reply, dialog: &Dialog, catalog: &Catalog) -> TurnLine {
        TurnLine {
            agent: reply.agent.clone(),
            expects: reply.expects,
            cart: dialog.cart_view(catalog),
            orders: dialog.orders.clone(),
            ended: reply.ended,
        }
    }
}

/// The output line for an input line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorLine {
    pub error: String,
    pub line: usize,
}

const SHAPES: &str = r#"{"say": "..."}, {"dtmf": "1"} or {"hangup": true}"#;

/// Reads one input line; the error says what is wrong with it.
pub fn parse_input(line: &str) -> Result<Input, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e}); expected {SHAPES}"))?;
    input_from_value(&value)
}

/// An input given as a JSON value (a protocol line, or a turn of an
/// evaluation case).
pub fn input_from_value(value: &Value) -> Result<Input, String> {
    let Some(object) = value.as_object() else {
        return Err(format!("expected an object: {SHAPES}"));
    };
    let mut fields = object.iter();
    let (Some((name, value)), None) = (fields.next(), fields.next()) else {
        let names: Vec<&str> = object.keys().map(String::as_str).collect();
        return Err(format!("expected exactly one of say, dtmf, hangup; got {names:?}"));
    };
    match (name.as_str(), value) {
        ("say", Value::String(text)) => Ok(Input::Say(text.clone())),
        ("say", _) => Err("say: expected a string".into()),
        ("dtmf", Value::String(keys))
            if !keys.is_empty() && keys.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') =>
        {
            Ok(Input::Dtmf(keys.clone()))
        }
        ("dtmf", _) => Err("dtmf: expected a string of keys 0-9, * and #".into()),
        ("hangup", Value::Bool(true)) => Ok(Input::Hangup),
        ("hangup", _) => Err("hangup: expected true".into()),
        (other, _) => Err(format!("unknown field {other:?}: expected {SHAPES}")),
    }
}

/// Runs one call: the greeting, then a turn per input line until the
/// dialog ends or the input does (a hang-up). Fails only when reading or
/// writing fails.
pub async fn run<R: BufRead, W: Write>(
    dialog: &mut Dialog,
    ports: &dyn Ports,
    catalog: &Catalog,
    input: R,
    mut output: W,
) -> std::io::Result<()> {
    let reply = dialog.turn(Input::Start, ports).await;
    write_line(&mut output, &TurnLine::new(&reply, dialog, catalog))?;
    if reply.ended {
        return Ok(());
    }
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_input(&line) {
            Ok(input) => {
                let reply = dialog.turn(input, ports).await;
                write_line(&mut output, &TurnLine::new(&reply, dialog, catalog))?;
                if reply.ended {
                    return Ok(());
                }
            }
            Err(error) => write_line(&mut output, &ErrorLine { error, line: n + 1 })?,
        }
    }
    let reply = dialog.turn(Input::Hangup, ports).await;
    write_line(&mut output, &TurnLine::new(&reply, dialog, catalog))
}

fn write_line<W: Write, T: Serialize>(output: &mut W, line: &T) -> std::io::Result<()> {
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    output.write_all(text.as_bytes())?;
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_input_shape_is_read() {
        assert_eq!(parse_input(r#"{"say": "do plate misal"}"#), Ok(Input::Say("do plate misal".into())));
        assert_eq!(parse_input(r#"{"dtmf": "1"}"#), Ok(Input::Dtmf("1".into())));
        assert_eq!(parse_input(r#" {"hangup": true} "#), Ok(Input::Hangup));
    }

    #[test]
    fn a_malformed_line_says_what_is_wrong() {
        let error = |line: &str| parse_input(line).unwrap_err();
        assert!(error("say hello").starts_with("not JSON"));
        assert!(error(r#"["say"]"#).starts_with("expected an object"));
        assert_eq!(error(r#"{"say": 2}"#), "say: expected a string");
        assert_eq!(error(r#"{"dtmf": "12a"}"#), "dtmf: expected a string of keys 0-9, * and #");
        assert_eq!(error(r#"{"dtmf": ""}"#), "dtmf: expected a string of keys 0-9, * and #");
        assert_eq!(error(r#"{"hangup": false}"#), "hangup: expected true");
        assert!(error(r#"{"text": "hi"}"#).starts_with(r#"unknown field "text""#));
        assert!(error(r#"{"say": "a", "dtmf": "1"}"#).starts_with("expected exactly one of say, dtmf, hangup; got"));
        assert!(error("{}").starts_with("expected exactly one"));
    }
}
