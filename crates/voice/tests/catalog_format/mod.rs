//! The catalog format has two descriptions, the JSON Schema
//! (crates/voice/catalog.schema.json, in docs/voice.md) and the Rust parser
//! (`Catalog::from_json`): these tests keep them in agreement, and check that
//! every catalog we ship is valid under both.

use std::path::{Path, PathBuf};

use mangwale_voice::{Catalog, Lang, Unit};
use serde_json::{Map, Value, json};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> Value {
    let text = std::fs::read_to_string(crate_dir().join("catalog.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn shipped() -> Vec<(PathBuf, String)> {
    let dir = crate_dir().join("tests/data/catalogs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "catalogs in {}", dir.display());
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// Validates `value` against the part of JSON Schema the catalog schema
/// uses (`$ref` into `$defs`, `type`, `enum`, `required`, `properties`,
/// `additionalProperties: false`, `items`, `minLength`, `minItems`,
/// `minimum`, `maximum`); the errors name the path.
fn validate(root: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("unsupported $ref {reference}"));
        validate(root, &root["$defs"][name], value, path, errors);
    }
    let type_name = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            other => other.as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect(),
        };
        if !allowed.contains(&type_name(value)) {
            errors.push(format!("{path}: {} is not {allowed:?}", type_name(value)));
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        errors.push(format!("{path}: {value} is not one of {values:?}"));
    }
    if let (Some(min), Some(s)) = (schema.get("minLength").and_then(Value::as_u64), value.as_str())
        && (s.chars().count() as u64) < min
    {
        errors.push(format!("{path}: shorter than {min}"));
    }
    if let Some(n) = value.as_f64() {
        if schema.get("minimum").and_then(Value::as_f64).is_some_and(|min| n < min) {
            errors.push(format!("{path}: below the minimum"));
        }
        if schema.get("maximum").and_then(Value::as_f64).is_some_and(|max| n > max) {
            errors.push(format!("{path}: above the maximum"));
        }
    }
    if let Some(list) = value.as_array() {
        if schema.get("minItems").and_then(Value::as_u64).is_some_and(|min| (list.len() as u64) < min) {
            errors.push(format!("{path}: fewer than the minimum items"));
        }
        if let Some(each) = schema.get("items") {
            for (i, element) in list.iter().enumerate() {
                validate(root, each, element, &format!("{path}[{i}]"), errors);
            }
        }
    }
    if let Some(object) = value.as_object() {
        let empty = Map::new();
        let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !object.contains_key(required.as_str().unwrap()) {
                errors.push(format!("{path}: {required} is required"));
            }
        }
        for (key, field) in object {
            match properties.get(key) {
                Some(property) => validate(root, property, field, &format!("{path}.{key}"), errors),
                None if schema.get("additionalProperties") == Some(&json!(false)) => {
                    errors.push(format!("{path}: {key} is not a property"))
                }
                None => {}
            }
        }
    }
}

fn schema_errors(value: &Value) -> Vec<String> {
    let root = schema();
    let mut errors = Vec::new();
    validate(&root, &root, value, "$", &mut errors);
    errors
}

#[test]
fn every_shipped_catalog_is_valid_under_the_parser_and_the_schema() {
    for (path, text) in shipped() {
        let catalog = Catalog::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap();
        assert_eq!(stem, catalog.store.id, "{} is named after its store", path.display());
        let errors = schema_errors(&serde_json::from_str(&text).unwrap());
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

/// A catalog with every optional field set, and where in it each of the
/// schema's object definitions occurs.
fn full_sample() -> (Value, Vec<(&'static str, Vec<Value>)>) {
    let sample = json!({
        "store": {"id": "7", "name": "Godavari Misal House", "language": "mr"},
        "items": [{
            "id": "7001", "name": "Misal Pav", "aliases": ["misal paav", "मिसळ पाव"], "price": 70,
            "unit": "plate", "category": "Misal", "available": true,
            "pack_size": {"quantity": 1, "unit": "plate"},
            "variants": [{"id": "half", "name": "Half plate", "aliases": ["half"], "price": 45}],
            "modifier_groups": [{"id": "spice", "name": "Spice level", "exclusive": true, "default": "mild",
                "options": [{"id": "mild", "name": "Less spicy", "aliases": ["kam teekha"], "price_delta": 0}]}]
        }]
    });
    let at = |path: &[Value]| path.to_vec();
    let places = vec![
        ("store", at(&[json!("store")])),
        ("item", at(&[json!("items"), json!(0)])),
        ("pack_size", at(&[json!("items"), json!(0), json!("pack_size")])),
        ("variant", at(&[json!("items"), json!(0), json!("variants"), json!(0)])),
        ("modifier_group", at(&[json!("items"), json!(0), json!("modifier_groups"), json!(0)])),
        (
            "modifier_option",
            at(&[json!("items"), json!(0), json!("modifier_groups"), json!(0), json!("options"), json!(0)]),
        ),
    ];
    (sample, places)
}

fn object_at<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Map<String, Value> {
    let mut here = value;
    for step in path {
        here = match step {
            Value::String(key) => &mut here[key.as_str()],
            index => &mut here[index.as_u64().unwrap() as usize],
        };
    }
    here.as_object_mut().unwrap()
}

fn parses(value: &Value) -> bool {
    Catalog::from_json(&value.to_string()).is_ok()
}

#[test]
fn the_schema_and_the_parser_agree_on_fields_and_required_ones() {
    let schema = schema();
    let (sample, places) = full_sample();
    assert!(parses(&sample) && schema_errors(&sample).is_empty(), "{:?}", schema_errors(&sample));
    let top = ("catalog", Vec::new());
    for (def, path) in std::iter::once(&top).chain(&places) {
        let definition = if *def == "catalog" { &schema } else { &schema["$defs"][*def] };
        let properties: Vec<&String> = definition["properties"].as_object().unwrap().keys().collect();
        let required: Vec<&str> =
            definition["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        let mut reserialized = serde_json::to_value(Catalog::from_json(&sample.to_string()).unwrap()).unwrap();
        let mut rust_fields: Vec<&String> = object_at(&mut reserialized, path).keys().collect();
        let mut schema_fields = properties.clone();
        rust_fields.sort();
        schema_fields.sort();
        assert_eq!(rust_fields, schema_fields, "{def}: the parser writes the fields the schema knows");
        for property in &properties {
            let mut without = sample.clone();
            object_at(&mut without, path).remove(property.as_str());
            let is_required = required.contains(&property.as_str());
            assert_eq!(
                !parses(&without),
                is_required,
                "{def}.{property}: required in the schema iff the parser needs it"
            );
            assert_eq!(!schema_errors(&without).is_empty(), is_required, "{def}.{property}");
        }
        let mut extra = sample.clone();
        object_at(&mut extra, path).insert("colour".into(), json!("red"));
        assert!(!parses(&extra) && !schema_errors(&extra).is_empty(), "{def}: unknown fields are refused by both");
    }
}

/// Every unit, with a match that stops compiling when a unit is added
/// (so that the schema's enum is updated with it).
fn every_unit() -> Vec<Unit> {
    let all = vec![Unit::Piece, Unit::Plate, Unit::Kg, Unit::G, Unit::Litre, Unit::Ml, Unit::Pack, Unit::Dozen];
    for unit in &all {
        match unit {
            Unit::Piece | Unit::Plate | Unit::Kg | Unit::G | Unit::Litre | Unit::Ml | Unit::Pack | Unit::Dozen => {}
        }
    }
    all
}

fn every_lang() -> Vec<Lang> {
    let all = vec![Lang::Hi, Lang::Mr, Lang::En, Lang::HiEn];
    for lang in &all {
        match lang {
            Lang::Hi | Lang::Mr | Lang::En | Lang::HiEn => {}
        }
    }
    all
}

#[test]
fn the_schema_and_the_parser_agree_on_units_and_languages() {
    let schema = schema();
    let units: Vec<Value> = every_unit().into_iter().map(|u| serde_json::to_value(u).unwrap()).collect();
    assert_eq!(&Value::Array(units.clone()), &schema["$defs"]["item"]["properties"]["unit"]["enum"]);
    assert_eq!(&Value::Array(units), &schema["$defs"]["pack_size"]["properties"]["unit"]["enum"]);
    let langs: Vec<Value> = every_lang().into_iter().map(|l| serde_json::to_value(l).unwrap()).collect();
    assert_eq!(&Value::Array(langs), &schema["$defs"]["store"]["properties"]["language"]["enum"]);
    let (sample, _) = full_sample();
    let places = [
        (vec![json!("store")], ("language", "gu")),
        (vec![json!("items"), json!(0)], ("unit", "bowl")),
        (vec![json!("items"), json!(0), json!("pack_size")], ("unit", "bowl")),
    ];
    for (path, bad) in places {
        let mut wrong = sample.clone();
        object_at(&mut wrong, &path).insert(bad.0.into(), json!(bad.1));
        assert!(!parses(&wrong) && !schema_errors(&wrong).is_empty(), "{bad:?} is refused by both");
    }
}

#[test]
fn the_schema_is_the_one_docs_voice_md_shows() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/voice.md")).unwrap();
    let start = docs.find("```json\n{\n  \"$schema\"").expect("docs/voice.md shows the schema") + "```json\n".len();
    let end = start + docs[start..].find("\n```").unwrap();
    let shown: Value = serde_json::from_str(&docs[start..end]).unwrap();
    assert_eq!(shown, schema(), "docs/voice.md shows crates/voice/catalog.schema.json as it is");
}
