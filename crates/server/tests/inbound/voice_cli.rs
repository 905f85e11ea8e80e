//! `voice dialog` and `voice eval`, run as the built binary: a caller
//! orders from Godavari Misal House (store 7's committed catalog) over
//! stdin and stdout, line by line as another program would drive it; a
//! catalog off the schema; an evaluation over a small case file.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use mangwale_voice::dialog::protocol::{ErrorLine, TurnLine};
use mangwale_voice::dialog::{Expects, Input};
use mangwale_voice::eval::EvalReport;
use serde_json::Value;

fn catalogs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voice/tests/data/catalogs")
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mangwale-exotel"));
    command.env_clear();
    command
}

/// A `voice dialog` process, spoken to one line at a time.
struct Call {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Call {
    fn start(args: &[&str]) -> Call {
        let mut child = binary()
            .args(["voice", "dialog"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Call { child, stdin, stdout }
    }

    /// The next output line (each is written and flushed as its turn ends).
    fn read(&mut self) -> Value {
        let mut line = String::new();
        assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the dialog stopped writing");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn turn(&mut self, input: &str) -> TurnLine {
        self.send(input);
        let line = self.read();
        serde_json::from_value(line.clone()).unwrap_or_else(|e| panic!("not a turn: {line} ({e})"))
    }

    fn send(&mut self, input: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends `input`, then answers yes (key 1) while the agent waits for a
    /// confirmation.
    fn confirmed(&mut self, input: &str) -> TurnLine {
        let mut turn = self.turn(input);
        for _ in 0..2 {
            if turn.expects != Expects::Confirm {
                break;
            }
            turn = self.turn(r#"{"dtmf": "1"}"#);
        }
        turn
    }

    /// Closes stdin (a hang-up) and returns the last line and the exit status.
    fn hang_up(mut self) -> (TurnLine, std::process::ExitStatus) {
        drop(self.stdin.take());
        let last: TurnLine = serde_json::from_value(self.read()).unwrap();
        let mut rest = String::new();
        assert_eq!(self.stdout.read_line(&mut rest).unwrap(), 0, "nothing after the hang-up: {rest}");
        (last, self.child.wait().unwrap())
    }
}

#[test]
fn voice_dialog_orders_and_cancels_over_stdin_and_stdout_into_an_orders_file() {
    let dir = tempfile::tempdir().unwrap();
    let orders = dir.path().join("orders.jsonl");
    let catalog = catalogs_dir().join("7.json");
    let mut call = Call::start(&[
        "--catalog",
        catalog.to_str().unwrap(),
        "--language",
        "hi-en",
        "--orders",
        orders.to_str().unwrap(),
    ]);

    let greeting: TurnLine = serde_json::from_value(call.read()).unwrap();
    assert_eq!((greeting.expects, greeting.ended), (Expects::Items, false));
    assert!(greeting.cart.lines.is_empty() && greeting.orders.is_empty(), "a fresh call");

    let items = call.turn(r#"{"say": "do plate misal aur ek cutting chai"}"#);
    let lines: Vec<(&str, String)> =
        items.cart.lines.iter().map(|l| (l.item_id.as_str(), l.quantity.to_string())).collect();
    assert_eq!(lines, [("7001", "2".to_string()), ("7012", "1".to_string())], "{}", items.agent);
    assert!(items.cart.total.0 > 0);

    let placed = call.confirmed(r#"{"say": "confirm"}"#);
    assert_eq!(placed.orders.len(), 1, "{}", placed.agent);
    let order = placed.orders[0].clone();
    assert_eq!((order.number.as_str(), order.cancelled), ("1", false));
    assert_eq!((order.lines.clone(), order.total), (items.cart.lines.clone(), items.cart.total));
    assert!(!placed.ended, "the call stays open after an order");
    let file = std::fs::read_to_string(&orders).unwrap();
    let placed_record: Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    assert_eq!(placed_record["placed"]["order"]["order_id"], order.order_id.as_str());

    // Input line 4 (counting the confirmations sent) is not JSON.
    call.send("{say: nope}");
    let error: ErrorLine = serde_json::from_value(call.read()).unwrap();
    assert!(error.error.starts_with("not JSON"), "{}", error.error);
    assert!((3..=5).contains(&error.line), "{error:?}");

    let cancelled = call.confirmed(r#"{"say": "order cancel karo"}"#);
    assert!(cancelled.orders[0].cancelled, "{}", cancelled.agent);
    let (last, status) = call.hang_up();
    assert!(status.success());
    assert!(last.ended && last.orders[0].cancelled);

    let records: Vec<Value> =
        std::fs::read_to_string(&orders).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["cancelled"]["order_id"], order.order_id.as_str());
}

#[test]
fn voice_dialog_refuses_a_catalog_off_the_schema_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(catalogs_dir().join("7.json")).unwrap();
    let mut catalog: Value = serde_json::from_str(&text).unwrap();
    catalog["items"][2]["unit"] = "bowl".into();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, catalog.to_string()).unwrap();
    let out = binary().args(["voice", "dialog", "--catalog", bad.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}: items[2].unit: unknown variant `bowl`", bad.display())), "{stderr}");
    assert!(out.stdout.is_empty(), "no dialog starts");
}

const CASES: &str = r#"{"id": "ordered", "store_id": "7", "lang": "hi-en", "tags": ["x"], "turns": ["do vada pav aur ek dahi misal", "confirm", {"dtmf": "1"}], "expected": {"lines": [{"item_id": "7004", "variant_id": null, "quantity": 2, "modifiers": []}, {"item_id": "7003", "variant_id": null, "quantity": 1, "modifiers": []}]}}
{"id": "cancelled", "store_id": "7", "lang": "hi-en", "turns": ["teen kande pohe", "cancel"], "expected": {"lines": []}}
{"id": "not-sold", "store_id": "7", "lang": "en", "turns": ["one pizza please"], "expected": {"lines": []}}
{"id": "wrong-on-purpose", "store_id": "7", "lang": "en", "turns": ["one vada pav"], "expected": {"lines": [{"item_id": "7004", "variant_id": null, "quantity": 2, "modifiers": []}]}}
"#;

#[test]
fn voice_eval_prints_the_figures_per_language_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.jsonl");
    std::fs::write(&cases, CASES).unwrap();
    let eval = |catalog: PathBuf, extra: &[&str]| {
        let out = binary()
            .args(["voice", "eval", "--catalog", catalog.to_str().unwrap(), "--cases", cases.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };

    let text = eval(catalogs_dir().join("7.json"), &["--verbose"]);
    assert!(text.starts_with("voice eval: 4 cases, no noise\n"), "{text}");
    for heading in ["exact carts", "item recall", "item precision", "quantity acc", "turn p50", "turn p99"] {
        assert!(text.contains(heading), "{heading}: {text}");
    }
    let rows: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(rows.contains(&"en") && rows.contains(&"hi-en") && rows.contains(&"all"), "{text}");
    assert!(
        text.contains("  wrong-on-purpose [en]: \"one vada pav\"\n    expected: 7004 ×2\n    got:      7004 ×1\n"),
        "{text}"
    );

    // A directory of catalogs, picked by each case's store_id; JSON.
    let json = eval(catalogs_dir(), &["--json"]);
    let report: EvalReport = serde_json::from_str(&json).unwrap();
    let all = &report.overall;
    assert_eq!((all.cases, all.exact_carts, all.expected_lines), (4, 3, 3));
    assert_eq!((all.item_recall, all.quantity_accuracy), (Some(1.0), Some(2.0 / 3.0)));
    assert_eq!(report.by_language["hi-en"].exact_cart_rate, Some(1.0));
    assert_eq!(report.failures.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["wrong-on-purpose"]);
    assert!(all.turns >= 6 && all.turn_p50_ms.is_some() && all.turn_p99_ms.is_some());

    // Noise corrupts what the dialog hears, the same way for the same seed.
    let heard = |seed: &str| {
        let json = eval(catalogs_dir(), &["--json", "--noise", "0.5", "--seed", seed]);
        let report: EvalReport = serde_json::from_str(&json).unwrap();
        assert_eq!(report.noise.map(|n| (n.rate, n.seed.to_string())), Some((0.5, seed.to_string())));
        let failure = report.failures.into_iter().find(|f| f.id == "wrong-on-purpose").expect("still wrong");
        failure.heard
    };
    let first = heard("7");
    assert_ne!(first, [Input::Say("one vada pav".into())]);
    assert_eq!(first, heard("7"));
}
