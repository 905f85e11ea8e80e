//! Entry points for the fuzz harness (`mangwale_server::fuzz`): everything
//! the client reads out of a Jupiter or PHP backend answer.

use mangwale_core::E164;
use serde_json::Value;

use super::model;

/// A body as the client reads it: JSON (or nothing), then every mapping
/// that may be applied to it. Returns how many produced a record.
pub fn answer(body: &[u8]) -> usize {
    // As `JupiterClient::attempt`: a blank 2xx body is `null`, anything else
    // must be JSON; an error body that is not JSON is `null`.
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(_) => Value::Null,
        }
    };
    let asked = E164::parse("+919876543210").unwrap_or_else(|_| unreachable!("a valid number"));
    let mut found = 0;
    found += usize::from(model::order_from_json(&value).is_some());
    found += usize::from(model::store_from_json(&value).is_some());
    found += usize::from(model::rider_from_json(&value).is_some());
    found += usize::from(model::created_order_from_json(&value).is_some());
    found += usize::from(model::catalog_item_from_json(&value).is_some());
    found += model::customer_from_json(&value, &asked).addresses.len();
    found += super::first_of(&value, "stores").and_then(model::store_from_json).map_or(0, |_| 1);
    found += super::first_of(&value, "delivery_men").and_then(model::rider_from_json).map_or(0, |_| 1);
    found += super::items_of(&value, "items").len() + super::items_of(&value, "products").len();
    found += super::error_message(&value).map_or(0, |m| m.len());
    found
}
