//! The fallback's checks: an LLM's (or the NLU service's) proposal becomes
//! cart operations only when every id is the catalog's and belongs
//! together, quantities are sane, and no price is named.

use mangwale_voice::fallback::{Proposal, Rejection, Source, llm_prompt, understand_llm_answer, validate};
use mangwale_voice::{CartOp, Catalog, Context, Lang, ModifierChoice, Qty, Subject};

fn misal_house() -> Catalog {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/catalogs/7.json");
    Catalog::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn understood(answer: &str, utterance: &str) -> Result<mangwale_voice::Understanding, Rejection> {
    understand_llm_answer(answer, &misal_house(), &Context::default(), utterance)
}

#[test]
fn a_valid_answer_becomes_operations_with_lowered_confidence() {
    let answer = r#"{"ops": [
        {"op": "add", "item_id": "7001", "quantity": 2, "variant_id": "half",
         "modifiers": [{"group_id": "spice", "option_id": "hot"}, {"group_id": "extras", "option_id": "farsan"}],
         "heard": "do half misal teekha"},
        {"op": "add", "item_id": "7012", "quantity": 1, "heard": "ek chaha", "confidence": 0.5},
        {"op": "order_pizza_delivery"}
    ]}"#;
    let u = understood(answer, "do half misal teekha aur ek chaha").unwrap();
    assert_eq!(u.ops.len(), 2, "the unknown op is dropped: {:?}", u.ops);
    let CartOp::Add { item, quantity, variant_id, modifiers } = &u.ops[0] else { panic!("{:?}", u.ops[0]) };
    assert_eq!(item.item_id, "7001");
    assert_eq!(*quantity, Some(Qty::whole(2)));
    assert_eq!(variant_id.as_deref(), Some("half"));
    assert_eq!(
        modifiers,
        &vec![
            ModifierChoice { group_id: "spice".into(), option_id: "hot".into() },
            ModifierChoice { group_id: "extras".into(), option_id: "farsan".into() },
        ]
    );
    assert_eq!(item.heard, "do half misal teekha");
    assert!((item.confidence - Source::Llm.cap()).abs() < 1e-6, "{}", item.confidence);
    let CartOp::Add { item, .. } = &u.ops[1] else { panic!() };
    assert!((item.confidence - Source::Llm.cap() * 0.5).abs() < 1e-6);
    assert_eq!(u.language, Lang::HiEn);
}

#[test]
fn invented_ids_and_mismatched_parts_reject_the_whole_answer() {
    let cases = [
        (r#"{"ops": [{"op": "add", "item_id": "9999", "quantity": 1}]}"#, "unknown_item"),
        (
            r#"{"ops": [{"op": "add", "item_id": "7001"}, {"op": "add", "item_id": "pizza-1", "quantity": 2}]}"#,
            "unknown_item",
        ),
        // Vada pav has no variants; "half" is misal's.
        (r#"{"ops": [{"op": "add", "item_id": "7004", "variant_id": "half"}]}"#, "unknown_variant"),
        // Sugar is the chai's group, not the misal's.
        (
            r#"{"ops": [{"op": "add", "item_id": "7001", "modifiers": [{"group_id": "sugar", "option_id": "less"}]}]}"#,
            "unknown_modifier",
        ),
        (
            r#"{"ops": [{"op": "add", "item_id": "7001", "modifiers": [{"group_id": "spice", "option_id": "extra_hot"}]}]}"#,
            "unknown_modifier",
        ),
        (
            r#"{"ops": [{"op": "add", "item_id": "7001", "modifiers": [{"group_id": "spice", "option_id": "mild"}, {"group_id": "spice", "option_id": "hot"}]}]}"#,
            "exclusive_group",
        ),
        (r#"{"ops": [{"op": "add", "item_id": "7001", "quantity": 0}]}"#, "quantity"),
        (r#"{"ops": [{"op": "add", "item_id": "7001", "quantity": -2}]}"#, "quantity"),
        (r#"{"ops": [{"op": "add", "item_id": "7001", "quantity": 5000}]}"#, "quantity"),
        (r#"{"ops": [{"op": "add", "item_id": "7001", "quantity": 1.23456}]}"#, "quantity"),
        (r#"{"ops": [{"op": "add", "item_id": "7001", "quantity": 2, "price": 90}]}"#, "price"),
        (r#"{"ops": [{"op": "add", "item_id": "7001"}], "total": 180}"#, "price"),
        (r#"{"ops": [{"op": "add", "item_id": "7001", "quantity": "two"}]}"#, "malformed"),
        (r#"{"ops": [{"op": "add", "quantity": 2}]}"#, "malformed"),
        (r#"{"ops": [{"op": "add", "item_id": "7001", "note": "extra"}]}"#, "malformed"),
        (r#"[{"op": "add", "item_id": "7001"}]"#, "malformed"),
        (r#"Sure! Here is the cart: misal x2"#, "malformed"),
        (r#"{"ops": []}"#, "nothing"),
        (r#"{"ops": [{"op": "sing"}, {"op": "ask", "topic": "weather"}]}"#, "nothing"),
    ];
    for (answer, reason) in cases {
        let e = understood(answer, "do misal").unwrap_err();
        assert_eq!(e.reason(), reason, "{answer}: {e}");
    }
}

#[test]
fn operations_without_an_item_refer_to_the_line_being_talked_about() {
    let catalog = misal_house();
    let focus = Context { focus: Some("7012".into()) };
    let answer = r#"{"ops": [{"op": "set_modifier", "modifiers": [{"group_id": "sugar", "option_id": "less"}]},
                             {"op": "set_quantity", "quantity": 3}]}"#;
    let u = understand_llm_answer(answer, &catalog, &focus, "teen kar do kam shakkar").unwrap();
    let CartOp::SetModifier { subject: Subject::Item(item), modifier } = &u.ops[0] else { panic!("{:?}", u.ops) };
    assert_eq!((item.item_id.as_str(), modifier.option_id.as_str()), ("7012", "less"));
    assert!(matches!(&u.ops[1], CartOp::SetQuantity { quantity, .. } if *quantity == Qty::whole(3)));
    // With no focus, a modifier cannot be checked against anything.
    let e = understand_llm_answer(answer, &catalog, &Context::default(), "kam shakkar").unwrap_err();
    assert_eq!(e.reason(), "malformed");
    // A remove without an item and no focus is the dialog's focus line.
    let u = understand_llm_answer(r#"{"ops": [{"op": "remove"}]}"#, &catalog, &Context::default(), "hata do").unwrap();
    assert_eq!(u.ops, vec![CartOp::Remove { subject: Subject::Focus }]);
}

#[test]
fn heard_words_are_kept_only_when_the_caller_said_them() {
    let u = understood(r#"{"ops": [{"op": "add", "item_id": "7004", "heard": "two vada pav please"}]}"#, "do vada pav")
        .unwrap();
    let CartOp::Add { item, .. } = &u.ops[0] else { panic!() };
    assert_eq!(item.heard, "");
    let u = understood(
        r#"{"ops": [{"op": "not_in_catalog", "heard": "Pizza", "quantity": 2}, {"op": "confirm"}]}"#,
        "do pizza",
    )
    .unwrap();
    assert!(matches!(&u.ops[0], CartOp::NotInCatalog { heard, amount: Some(a), removal: false }
        if heard == "pizza" && a.value == Qty::whole(2)));
    assert_eq!(u.ops[1], CartOp::Confirm);
}

#[test]
fn nlu_proposals_are_checked_the_same_way_with_their_own_cap() {
    let catalog = misal_house();
    let proposal = Proposal {
        op: "add".into(),
        item_id: Some("7006".into()),
        quantity: Some(0.5),
        confidence: Some(0.9),
        ..Proposal::default()
    };
    let u =
        validate(std::slice::from_ref(&proposal), &catalog, &Context::default(), "aadha bhaji", Source::Nlu).unwrap();
    let CartOp::Add { item, quantity, .. } = &u.ops[0] else { panic!() };
    assert_eq!(*quantity, Some(Qty(500)));
    assert!((item.confidence - Source::Nlu.cap() * 0.9).abs() < 1e-6);
    let invented = Proposal { item_id: Some("misal-pav".into()), ..proposal };
    assert_eq!(
        validate(&[invented], &catalog, &Context::default(), "misal", Source::Nlu).unwrap_err(),
        Rejection::UnknownItem("misal-pav".into())
    );
}

#[test]
fn the_prompt_names_ids_and_options_but_never_prices() {
    let catalog = misal_house();
    let prompt = llm_prompt(&catalog, &Context { focus: Some("7001".into()) }, "do \"misal\" aur ek chai");
    assert!(prompt.system.contains("JSON"), "OpenAI's JSON mode requires the word");
    assert!(prompt.system.contains("7001 | Misal Pav"));
    assert!(prompt.system.contains("spice Spice level (one of): mild=Less spicy"), "{}", prompt.system);
    assert!(prompt.system.contains("7012 | Cutting Chai"));
    for item in &catalog.items {
        let rupees = format!("{}", item.price.rupees());
        let line = prompt.system.lines().find(|l| l.starts_with(&format!("{} |", item.id))).unwrap();
        assert!(!line.contains(&format!(" {rupees} ")) && !line.contains('₹'), "{line}");
    }
    assert!(!prompt.system.to_lowercase().contains("rs."));
    assert!(prompt.user.starts_with("Line being talked about: 7001 Misal Pav\n"));
    assert!(prompt.user.ends_with(r#"Caller said (JSON string): "do \"misal\" aur ek chai""#), "{}", prompt.user);
}
