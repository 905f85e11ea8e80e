//! The IVR menus of our Exotel flows: what a key means, what the caller
//! hears, and where the flow goes next. Pure: the server looks up the call
//! and carries the answer out.

use serde::Serialize;

use crate::Language;

/// A keypad menu of one of our flows (`flows/exotel-flows.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Menu {
    /// 1 accept, 2 reject, 3 preparation time.
    VendorNewOrder,
    /// 1 = 15, 2 = 20, 3 = 30 minutes.
    VendorPrepTime,
    /// 1 ready, 2 ten more minutes.
    VendorReminder,
    /// 1 accept, 2 reject.
    RiderAssign,
    /// 1 confirm, 2 problem (admin).
    AddressUpdate,
}

impl Menu {
    /// The menu at a flow's step (the `flow` and `step` of our applet URLs).
    pub fn at(flow: &str, step: &str) -> Option<Menu> {
        Some(match (flow, step) {
            ("vendor_new_order", "menu") => Menu::VendorNewOrder,
            ("vendor_new_order", "prep_time") => Menu::VendorPrepTime,
            ("vendor_reminder", "menu") => Menu::VendorReminder,
            ("rider_assignment", "menu") => Menu::RiderAssign,
            ("address_update", "menu") => Menu::AddressUpdate,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Menu::VendorNewOrder => "vendor_new_order",
            Menu::VendorPrepTime => "vendor_prep_time",
            Menu::VendorReminder => "vendor_reminder",
            Menu::RiderAssign => "rider_assign",
            Menu::AddressUpdate => "address_update",
        }
    }
}

/// What a key press means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "answer", content = "minutes")]
pub enum Answer {
    Accept,
    Reject,
    /// Open the preparation-time menu.
    AskPrepTime,
    PrepTime(u32),
    Ready,
    Extend(u32),
    Confirm,
    Problem,
    /// `*`: say it again.
    Repeat,
    /// A key the menu does not have.
    Invalid,
    /// Nothing was pressed.
    NoInput,
}

/// How many times a wrong key is met with the menu again before the call
/// ends as "no response".
pub const MAX_REPROMPTS: u32 = 2;

/// Minutes added by "2" at the reminder.
pub const EXTEND_MINUTES: u32 = 10;

/// Reads the digits Exotel passed (already unquoted). Only the first key
/// counts: a Gather with `max_input_digits = 1` ends after it anyway.
pub fn interpret(menu: Menu, digits: Option<&str>) -> Answer {
    let key = match digits.map(str::trim).and_then(|d| d.chars().next()) {
        None => return Answer::NoInput,
        Some(k) => k,
    };
    if key == '*' {
        return Answer::Repeat;
    }
    match (menu, key) {
        (Menu::VendorNewOrder, '1') | (Menu::RiderAssign, '1') => Answer::Accept,
        (Menu::VendorNewOrder, '2') | (Menu::RiderAssign, '2') => Answer::Reject,
        (Menu::VendorNewOrder, '3') => Answer::AskPrepTime,
        (Menu::VendorPrepTime, '1') => Answer::PrepTime(15),
        (Menu::VendorPrepTime, '2') => Answer::PrepTime(20),
        (Menu::VendorPrepTime, '3') => Answer::PrepTime(30),
        (Menu::VendorReminder, '1') => Answer::Ready,
        (Menu::VendorReminder, '2') => Answer::Extend(EXTEND_MINUTES),
        (Menu::AddressUpdate, '1') => Answer::Confirm,
        (Menu::AddressUpdate, '2') => Answer::Problem,
        _ => Answer::Invalid,
    }
}

/// Where the flow's Switch goes after the answer (the `cases` of the flows
/// file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// Goodbye and hang up.
    Done,
    /// Play the menu again.
    Repeat,
    /// The vendor's preparation-time menu.
    PrepTime,
    /// Connect to admin support.
    Admin,
}

impl Next {
    pub fn name(self) -> &'static str {
        match self {
            Next::Done => "done",
            Next::Repeat => "repeat",
            Next::PrepTime => "prep_time",
            Next::Admin => "admin",
        }
    }
}

/// Where an answer leads. `invalid_so_far` counts wrong keys at this menu on
/// this call, this one included.
pub fn next_for(answer: Answer, invalid_so_far: u32) -> Next {
    match answer {
        Answer::AskPrepTime => Next::PrepTime,
        Answer::Problem => Next::Admin,
        Answer::Repeat => Next::Repeat,
        Answer::Invalid if invalid_so_far <= MAX_REPROMPTS => Next::Repeat,
        _ => Next::Done,
    }
}

/// What the caller hears: the facts of the order, in the party's language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Rupees, rounded.
    pub amount: Option<i64>,
    /// `Poha x1, Milk 500ml`.
    pub items: Option<String>,
    /// True: collect cash on delivery.
    pub cash_on_delivery: Option<bool>,
    pub pickup: Option<String>,
    pub drop: Option<String>,
    pub new_address: Option<String>,
    pub minutes_remaining: Option<u32>,
}

fn pick(lang: Language, hi: String, en: String, mr: String) -> String {
    match lang {
        Language::Hi => hi,
        Language::En => en,
        Language::Mr => mr,
    }
}

/// The announcement that opens an IVR call of `flow`. The seed's Hindi
/// prompt is the model: "Mangwale se naya order. Amount 325 rupees. Items:
/// Poha x1, Milk 500ml."
pub fn announcement(flow: &str, lang: Language, f: &Facts) -> String {
    let amount = |hi: &str, en: &str, mr: &str| {
        f.amount.map(|a| {
            pick(lang, format!(" {hi} {a} rupees."), format!(" {en} {a} rupees."), format!(" {mr} {a} rupaye."))
        })
    };
    let items = f.items.as_ref().map(|i| format!(" Items: {i}."));
    let payment = f.cash_on_delivery.map(|cod| match (lang, cod) {
        (Language::Hi, true) => " Payment: cash on delivery.".to_string(),
        (Language::Hi, false) => " Payment ho chuka hai.".to_string(),
        (Language::En, true) => " Payment: cash on delivery.".to_string(),
        (Language::En, false) => " Already paid online.".to_string(),
        (Language::Mr, true) => " Payment: cash on delivery.".to_string(),
        (Language::Mr, false) => " Payment jhale aahe.".to_string(),
    });
    let join = |parts: Vec<Option<String>>| parts.into_iter().flatten().collect::<String>();
    match flow {
        "vendor_new_order" => pick(
            lang,
            format!("Mangwale se naya order.{}", join(vec![amount("Amount", "", ""), items.clone(), payment.clone()])),
            format!("New order from Mangwale.{}", join(vec![amount("", "Amount", ""), items.clone(), payment.clone()])),
            format!(
                "Mangwale kadun nava order.{}",
                join(vec![amount("", "", "Rakkam"), items.clone(), payment.clone()])
            ),
        ),
        "vendor_reminder" => {
            let due = f.minutes_remaining;
            pick(
                lang,
                format!(
                    "Mangwale reminder: order taiyaar karne ka samay ho gaya hai.{}",
                    due.map(|m| format!(" {m} minute baaki hain.")).unwrap_or_default()
                ),
                format!(
                    "Mangwale reminder: the order is due.{}",
                    due.map(|m| format!(" {m} minutes remaining.")).unwrap_or_default()
                ),
                format!(
                    "Mangwale reminder: order tayar karaychi vel jhali aahe.{}",
                    due.map(|m| format!(" {m} minita baaki aahet.")).unwrap_or_default()
                ),
            )
        }
        "rider_assignment" => {
            let pickup = f.pickup.as_deref().unwrap_or("store");
            let drop = f.drop.as_deref().unwrap_or("customer");
            pick(
                lang,
                format!("Mangwale delivery. Pickup: {pickup}. Drop: {drop}.{}", join(vec![amount("Amount", "", "")])),
                format!(
                    "Mangwale delivery. Pick up at {pickup}. Deliver to {drop}.{}",
                    join(vec![amount("", "Amount", "")])
                ),
                format!("Mangwale delivery. Pickup: {pickup}. Drop: {drop}.{}", join(vec![amount("", "", "Rakkam")])),
            )
        }
        "address_update" => {
            let address = f.new_address.as_deref().unwrap_or("");
            pick(
                lang,
                format!("Zaroori: customer ka naya pata hai: {address}."),
                format!("Important: the customer's new address is: {address}."),
                format!("Mahatvache: customer cha nava patta: {address}."),
            )
        }
        _ => pick(
            lang,
            "Mangwale mein aapka swagat hai.".into(),
            "Welcome to Mangwale.".into(),
            "Mangwale madhe aapla swagat aahe.".into(),
        ),
    }
}

/// The keypad prompt of a menu.
pub fn menu_prompt(menu: Menu, lang: Language) -> String {
    let (hi, en, mr) = match menu {
        Menu::VendorNewOrder => (
            "Accept ke liye 1, reject ke liye 2, prep time set ke liye 3 dabayein.",
            "Press 1 to accept, 2 to reject, 3 to set the preparation time.",
            "Swikarnyasathi 1, nakarnyasathi 2, tayarichi vel tharavnyasathi 3 daba.",
        ),
        Menu::VendorPrepTime => (
            "15 minute ke liye 1, 20 minute ke liye 2, 30 minute ke liye 3 dabayein.",
            "Press 1 for 15 minutes, 2 for 20 minutes, 3 for 30 minutes.",
            "15 minitansathi 1, 20 minitansathi 2, 30 minitansathi 3 daba.",
        ),
        Menu::VendorReminder => (
            "Order taiyaar hai to 1, das minute aur chahiye to 2 dabayein.",
            "Press 1 if the order is ready, 2 for ten more minutes.",
            "Order tayar asel tar 1, aankhi daha minita havi astil tar 2 daba.",
        ),
        Menu::RiderAssign => (
            "Delivery accept karne ke liye 1, reject ke liye 2 dabayein.",
            "Press 1 to accept the delivery, 2 to reject it.",
            "Delivery swikarnyasathi 1, nakarnyasathi 2 daba.",
        ),
        Menu::AddressUpdate => (
            "Naya pata samajh gaye to 1, koi samasya ho to 2 dabayein.",
            "Press 1 to confirm the new address, 2 if there is a problem.",
            "Nava patta samajla asel tar 1, adchan asel tar 2 daba.",
        ),
    };
    pick(lang, hi.into(), en.into(), mr.into())
}

/// Said when a wrong key was pressed, before the menu again.
pub fn invalid_key_prompt(lang: Language) -> String {
    pick(lang, "Galat button.".into(), "That key is not on the menu.".into(), "Chukicha button.".into())
}

/// The closing words after an answer (or none).
pub fn goodbye(answer: Option<Answer>, lang: Language) -> String {
    let (hi, en, mr) = match answer {
        Some(Answer::Accept) => {
            ("Dhanyavaad, order accept ho gaya.", "Thank you, the order is accepted.", "Dhanyavaad, order swikarla.")
        }
        Some(Answer::Reject) => ("Order reject kar diya gaya.", "The order has been rejected.", "Order nakarla."),
        Some(Answer::PrepTime(_)) => {
            ("Dhanyavaad, samay set ho gaya.", "Thank you, the preparation time is set.", "Dhanyavaad, vel tharavli.")
        }
        Some(Answer::Ready) => (
            "Dhanyavaad, rider ko bata diya gaya.",
            "Thank you, the rider has been told.",
            "Dhanyavaad, rider la kalavle.",
        ),
        Some(Answer::Extend(_)) => {
            ("Theek hai, das minute aur.", "All right, ten more minutes.", "Theek aahe, aankhi daha minita.")
        }
        Some(Answer::Confirm) => ("Dhanyavaad.", "Thank you.", "Dhanyavaad."),
        _ => ("Dhanyavaad. Mangwale.", "Thank you for using Mangwale.", "Dhanyavaad. Mangwale."),
    };
    pick(lang, hi.into(), en.into(), mr.into())
}

/// Where a rider who accepted picks up, said before the call ends (the
/// same details follow by WhatsApp or SMS).
pub fn pickup_directions(lang: Language, vendor: Option<&str>, address: &str) -> String {
    let place = match vendor {
        Some(vendor) => format!("{vendor}, {address}"),
        None => address.to_string(),
    };
    pick(
        lang,
        format!("Pickup: {place}. Poora pata aur map link aapko message mein bheja gaya hai."),
        format!("Pick up from {place}. The address and a map link are on their way to you by message."),
        format!("Pickup: {place}. Poorna patta ani map link tumhala message madhe pathavla aahe."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_mean_what_the_seed_says() {
        assert_eq!(interpret(Menu::VendorNewOrder, Some("1")), Answer::Accept);
        assert_eq!(interpret(Menu::VendorNewOrder, Some("2")), Answer::Reject);
        assert_eq!(interpret(Menu::VendorNewOrder, Some("3")), Answer::AskPrepTime);
        assert_eq!(interpret(Menu::VendorPrepTime, Some("2")), Answer::PrepTime(20));
        assert_eq!(interpret(Menu::VendorReminder, Some("2")), Answer::Extend(10));
        assert_eq!(interpret(Menu::RiderAssign, Some("2")), Answer::Reject);
        assert_eq!(interpret(Menu::AddressUpdate, Some("2")), Answer::Problem);
        assert_eq!(interpret(Menu::AddressUpdate, Some("9")), Answer::Invalid);
        assert_eq!(interpret(Menu::VendorNewOrder, Some("*")), Answer::Repeat);
        assert_eq!(interpret(Menu::VendorNewOrder, Some("")), Answer::NoInput);
        assert_eq!(interpret(Menu::VendorNewOrder, None), Answer::NoInput);
        assert_eq!(Menu::at("vendor_new_order", "prep_time"), Some(Menu::VendorPrepTime));
        assert_eq!(Menu::at("missed_call", "menu"), None);
    }

    #[test]
    fn a_wrong_key_is_reprompted_twice_then_the_call_ends() {
        assert_eq!(next_for(Answer::Invalid, 1), Next::Repeat);
        assert_eq!(next_for(Answer::Invalid, 2), Next::Repeat);
        assert_eq!(next_for(Answer::Invalid, 3), Next::Done);
        assert_eq!(next_for(Answer::Repeat, 9), Next::Repeat, "* always repeats");
        assert_eq!(next_for(Answer::AskPrepTime, 0), Next::PrepTime);
        assert_eq!(next_for(Answer::Problem, 0), Next::Admin);
        assert_eq!(next_for(Answer::NoInput, 0), Next::Done);
    }

    #[test]
    fn the_vendor_hears_the_order_in_their_language() {
        let facts = Facts {
            amount: Some(325),
            items: Some("Poha x1, Milk 500ml".into()),
            cash_on_delivery: Some(true),
            ..Facts::default()
        };
        assert_eq!(
            announcement("vendor_new_order", Language::Hi, &facts),
            "Mangwale se naya order. Amount 325 rupees. Items: Poha x1, Milk 500ml. Payment: cash on delivery."
        );
        assert!(
            announcement("vendor_new_order", Language::En, &facts).starts_with("New order from Mangwale. Amount 325")
        );
        assert!(announcement("vendor_new_order", Language::Mr, &facts).contains("Rakkam 325 rupaye"));
        assert_eq!(announcement("vendor_new_order", Language::Hi, &Facts::default()), "Mangwale se naya order.");
        assert!(menu_prompt(Menu::VendorNewOrder, Language::Hi).contains("Accept ke liye 1"));
        let address = Facts { new_address: Some("Flat 7C, Mumbai Naka".into()), ..Facts::default() };
        assert!(announcement("address_update", Language::En, &address).contains("Flat 7C, Mumbai Naka"));
    }
}
