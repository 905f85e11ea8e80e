//! The menus of an inbound call, by who is calling: what a key means, where
//! the flow's Switch goes, and what the caller hears. Pure, like
//! [`crate::ivr`]: the server identifies the caller, looks up the orders
//! and carries the choice out.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ivr::MAX_REPROMPTS;
use crate::{InvalidValue, Language};

/// Who is calling, as Jupiter knows the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    /// The phone of a store (`store_by_phone`).
    Vendor,
    /// The phone of a delivery man (`rider_by_phone`).
    Rider,
    /// A registered customer (`customer_by_phone`).
    Customer,
    /// Nobody Jupiter knows, or a call without a caller number.
    Unknown,
}

impl CallerKind {
    pub fn name(self) -> &'static str {
        match self {
            CallerKind::Vendor => "vendor",
            CallerKind::Rider => "rider",
            CallerKind::Customer => "customer",
            CallerKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for CallerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CallerKind {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "vendor" => CallerKind::Vendor,
            "rider" => CallerKind::Rider,
            "customer" => CallerKind::Customer,
            "unknown" => CallerKind::Unknown,
            other => return Err(InvalidValue(format!("unknown caller kind '{other}'"))),
        })
    }
}

/// A keypad menu of the inbound flow (`customer_voice_order` in
/// `flows/exotel-flows.toml`), by its step name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundMenu {
    /// Unknown caller, or a customer without an active order: 1 food,
    /// 2 parcel, 3 local shop, 5 support.
    Welcome,
    /// A customer with an active order: 1 rider, 2 vendor (before pickup),
    /// 3 new order, 5 support.
    CustomerOrder,
    /// A vendor: 1 accept the oldest pending order, 2 preparation time,
    /// 5 support.
    Vendor,
    /// The vendor's preparation time: 1 = 15, 2 = 20, 3 = 30 minutes.
    VendorPrepTime,
    /// A rider: 1 customer, 2 vendor, 5 support.
    Rider,
}

impl InboundMenu {
    /// The menu at a step of the inbound flow (the `step` of its URLs).
    pub fn at(step: &str) -> Option<InboundMenu> {
        Some(match step {
            "menu" => InboundMenu::Welcome,
            "order_menu" => InboundMenu::CustomerOrder,
            "vendor_menu" => InboundMenu::Vendor,
            "prep_time" => InboundMenu::VendorPrepTime,
            "rider_menu" => InboundMenu::Rider,
            _ => return None,
        })
    }

    /// The name wrong keys are counted under (distinct from the ladder
    /// menus' names).
    pub fn name(self) -> &'static str {
        match self {
            InboundMenu::Welcome => "inbound_welcome",
            InboundMenu::CustomerOrder => "inbound_customer_order",
            InboundMenu::Vendor => "inbound_vendor",
            InboundMenu::VendorPrepTime => "inbound_vendor_prep_time",
            InboundMenu::Rider => "inbound_rider",
        }
    }
}

/// Which options a menu offers this caller: a key for an option the caller
/// does not have (no rider yet, nothing pending) is a wrong key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offer {
    /// Customer: a rider is assigned. Rider: the delivery has a customer.
    pub rider: bool,
    /// Customer: the order has not been picked up, so the vendor may be
    /// reached. Rider: the delivery has a vendor.
    pub vendor: bool,
    /// Vendor: an order waits for acceptance.
    pub pending: bool,
}

/// What a key press at an inbound menu means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "choice", content = "minutes")]
pub enum Choice {
    Food,
    Parcel,
    LocalShop,
    /// Customer: talk to the rider; rider: no such choice.
    TalkToRider,
    /// Customer or rider: talk to the vendor.
    TalkToVendor,
    /// Rider: talk to the customer.
    TalkToCustomer,
    NewOrder,
    /// Vendor: accept the oldest pending order.
    AcceptOldest,
    /// Vendor: open the preparation-time menu.
    AskPrepTime,
    PrepTime(u32),
    Support,
    /// `*`: say it again.
    Repeat,
    Invalid,
    NoInput,
}

impl Choice {
    pub fn name(self) -> &'static str {
        match self {
            Choice::Food => "food",
            Choice::Parcel => "parcel",
            Choice::LocalShop => "local_shop",
            Choice::TalkToRider => "talk_to_rider",
            Choice::TalkToVendor => "talk_to_vendor",
            Choice::TalkToCustomer => "talk_to_customer",
            Choice::NewOrder => "new_order",
            Choice::AcceptOldest => "accept_oldest",
            Choice::AskPrepTime => "ask_prep_time",
            Choice::PrepTime(_) => "prep_time",
            Choice::Support => "support",
            Choice::Repeat => "repeat",
            Choice::Invalid => "invalid",
            Choice::NoInput => "no_input",
        }
    }

    /// The choice [`Choice::name`] named (`minutes` for `prep_time`).
    pub fn from_name(name: &str, minutes: Option<u32>) -> Option<Choice> {
        Some(match name {
            "food" => Choice::Food,
            "parcel" => Choice::Parcel,
            "local_shop" => Choice::LocalShop,
            "talk_to_rider" => Choice::TalkToRider,
            "talk_to_vendor" => Choice::TalkToVendor,
            "talk_to_customer" => Choice::TalkToCustomer,
            "new_order" => Choice::NewOrder,
            "accept_oldest" => Choice::AcceptOldest,
            "ask_prep_time" => Choice::AskPrepTime,
            "prep_time" => Choice::PrepTime(minutes?),
            "support" => Choice::Support,
            "repeat" => Choice::Repeat,
            "invalid" => Choice::Invalid,
            "no_input" => Choice::NoInput,
            _ => return None,
        })
    }

    /// The minutes of a preparation time.
    pub fn minutes(self) -> Option<u32> {
        match self {
            Choice::PrepTime(m) => Some(m),
            _ => None,
        }
    }
}

/// The support key of every inbound menu.
pub const SUPPORT_KEY: char = '5';

/// Reads the digits Exotel passed (already unquoted); only the first key
/// counts, as at the ladder menus.
pub fn interpret(menu: InboundMenu, offer: Offer, digits: Option<&str>) -> Choice {
    let key = match digits.map(str::trim).and_then(|d| d.chars().next()) {
        None => return Choice::NoInput,
        Some(k) => k,
    };
    if key == '*' {
        return Choice::Repeat;
    }
    if key == SUPPORT_KEY && menu != InboundMenu::VendorPrepTime {
        return Choice::Support;
    }
    match (menu, key) {
        (InboundMenu::Welcome, '1') => Choice::Food,
        (InboundMenu::Welcome, '2') => Choice::Parcel,
        (InboundMenu::Welcome, '3') => Choice::LocalShop,
        (InboundMenu::CustomerOrder, '1') if offer.rider => Choice::TalkToRider,
        (InboundMenu::CustomerOrder, '2') if offer.vendor => Choice::TalkToVendor,
        (InboundMenu::CustomerOrder, '3') => Choice::NewOrder,
        (InboundMenu::Vendor, '1') if offer.pending => Choice::AcceptOldest,
        (InboundMenu::Vendor, '2') if offer.pending => Choice::AskPrepTime,
        (InboundMenu::VendorPrepTime, '1') => Choice::PrepTime(15),
        (InboundMenu::VendorPrepTime, '2') => Choice::PrepTime(20),
        (InboundMenu::VendorPrepTime, '3') => Choice::PrepTime(30),
        (InboundMenu::Rider, '1') if offer.rider => Choice::TalkToCustomer,
        (InboundMenu::Rider, '2') if offer.vendor => Choice::TalkToVendor,
        _ => Choice::Invalid,
    }
}

/// Where the inbound flow's Switch goes (the `cases` of its Switch applets
/// in the flows file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// The caller Switch: a customer with an active order.
    CustomerOrder,
    /// The caller Switch: a vendor.
    Vendor,
    /// The caller Switch: a rider.
    Rider,
    /// The caller Switch, and 3 at the order menu: the welcome menu.
    Welcome,
    /// Connect to the order desk (a person takes the order).
    Desk,
    /// The voice bot takes the order (the Voicebot applet), where voice
    /// ordering runs; see [`with_voice_ordering`].
    Bot,
    /// Connect to the rider of the order (masked).
    ConnectRider,
    /// Connect to the vendor of the order.
    ConnectVendor,
    /// Connect to the customer of the delivery (masked).
    ConnectCustomer,
    /// The vendor's preparation-time menu.
    PrepTime,
    /// Connect to support.
    Support,
    /// Play the menu again.
    Repeat,
    /// Goodbye and hang up.
    Done,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::CustomerOrder => "customer_order",
            Route::Vendor => "vendor",
            Route::Rider => "rider",
            Route::Welcome => "welcome",
            Route::Desk => "desk",
            Route::Bot => "bot",
            Route::ConnectRider => "connect_rider",
            Route::ConnectVendor => "connect_vendor",
            Route::ConnectCustomer => "connect_customer",
            Route::PrepTime => "prep_time",
            Route::Support => "support",
            Route::Repeat => "repeat",
            Route::Done => "done",
        }
    }
}

/// The caller Switch's case for who is calling: a customer's menu needs an
/// active order, else the welcome menu.
pub fn route_for_caller(kind: CallerKind, has_active_order: bool) -> Route {
    match kind {
        CallerKind::Vendor => Route::Vendor,
        CallerKind::Rider => Route::Rider,
        CallerKind::Customer if has_active_order => Route::CustomerOrder,
        CallerKind::Customer | CallerKind::Unknown => Route::Welcome,
    }
}

/// Where a choice leads. `invalid_so_far` counts wrong keys at this menu on
/// this call, this one included: the first two are met with the menu
/// again, the third ends the call, as at the ladder menus.
pub fn route_for(choice: Choice, invalid_so_far: u32) -> Route {
    match choice {
        Choice::Food | Choice::Parcel | Choice::LocalShop => Route::Desk,
        Choice::TalkToRider => Route::ConnectRider,
        Choice::TalkToVendor => Route::ConnectVendor,
        Choice::TalkToCustomer => Route::ConnectCustomer,
        Choice::NewOrder => Route::Welcome,
        Choice::AskPrepTime => Route::PrepTime,
        Choice::Support => Route::Support,
        Choice::Repeat => Route::Repeat,
        Choice::Invalid if invalid_so_far <= MAX_REPROMPTS => Route::Repeat,
        Choice::AcceptOldest | Choice::PrepTime(_) | Choice::Invalid | Choice::NoInput => Route::Done,
    }
}

/// Where an ordering choice goes when the service can hear and speak: the
/// voice bot instead of the order desk (which the bot hands back to when it
/// cannot take the order). Other routes are unchanged.
pub fn with_voice_ordering(choice: Choice, route: Route, voice_ordering: bool) -> Route {
    match (choice, route) {
        (Choice::Food | Choice::Parcel | Choice::LocalShop, Route::Desk) if voice_ordering => Route::Bot,
        _ => route,
    }
}

fn pick(lang: Language, hi: String, en: String, mr: String) -> String {
    match lang {
        Language::Hi => hi,
        Language::En => en,
        Language::Mr => mr,
    }
}

/// The welcome every caller without a menu of their own hears.
pub fn welcome(lang: Language) -> String {
    pick(
        lang,
        "Mangwale mein aapka swagat hai.".into(),
        "Welcome to Mangwale.".into(),
        "Mangwale madhe aapla swagat aahe.".into(),
    )
}

/// The keypad prompt of a menu, naming only the options on offer.
pub fn menu_prompt(menu: InboundMenu, offer: Offer, lang: Language) -> String {
    let mut parts: Vec<(&'static str, &'static str, &'static str)> = Vec::new();
    match menu {
        InboundMenu::Welcome => {
            return pick(
                lang,
                "Khana order karne ke liye 1, parcel ke liye 2, local dukaan se saaman ke liye 3, support ke liye 5 dabayein.".into(),
                "Press 1 for food, 2 for a parcel, 3 for a local shop, 5 for support.".into(),
                "Jevan order karnyasathi 1, parcelsathi 2, local dukanasathi 3, supportsathi 5 daba.".into(),
            );
        }
        InboundMenu::VendorPrepTime => return crate::ivr::menu_prompt(crate::ivr::Menu::VendorPrepTime, lang),
        InboundMenu::CustomerOrder => {
            if offer.rider {
                parts.push(("rider se baat ke liye 1", "1 to talk to your rider", "rider shi bolnyasathi 1"));
            }
            if offer.vendor {
                parts.push(("dukaan se baat ke liye 2", "2 to talk to the shop", "dukanashi bolnyasathi 2"));
            }
            parts.push(("naya order ke liye 3", "3 for a new order", "navya ordersathi 3"));
        }
        InboundMenu::Vendor => {
            if offer.pending {
                parts.push((
                    "sabse purana order accept karne ke liye 1",
                    "1 to accept the oldest order",
                    "sarvat junya order swikarnyasathi 1",
                ));
                parts.push((
                    "prep time set karne ke liye 2",
                    "2 to set the preparation time",
                    "tayarichi vel tharavnyasathi 2",
                ));
            }
        }
        InboundMenu::Rider => {
            if offer.rider {
                parts.push(("customer se baat ke liye 1", "1 to call the customer", "customer shi bolnyasathi 1"));
            }
            if offer.vendor {
                parts.push(("dukaan se baat ke liye 2", "2 to call the shop", "dukanashi bolnyasathi 2"));
            }
        }
    }
    parts.push(("support ke liye 5", "5 for support", "supportsathi 5"));
    let join = |lang: usize| parts.iter().map(|p| [p.0, p.1, p.2][lang]).collect::<Vec<_>>().join(", ");
    pick(
        lang,
        format!("{} dabayein.", capitalise(&join(0))),
        format!("Press {}.", join(1)),
        format!("{} daba.", capitalise(&join(2))),
    )
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What a customer hears about their order, from Jupiter's record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderStatusFacts {
    /// 6amMart's `order_status`.
    pub status: String,
    pub store: Option<String>,
    pub rider: Option<String>,
    pub eta_minutes: Option<u32>,
}

/// "Your order from Sai Misal is with rider Ramesh, about 10 minutes away."
pub fn order_status(lang: Language, f: &OrderStatusFacts) -> String {
    let store = f.store.as_deref().unwrap_or("Mangwale");
    let rider = f.rider.as_deref();
    let eta = |hi: &str, en: &str, mr: &str| {
        f.eta_minutes.map(|m| {
            pick(lang, format!(", lagbhag {m} {hi}"), format!(", about {m} {en}"), format!(", sumare {m} {mr}"))
        })
    };
    let eta = eta("minute door hai", "minutes away", "minita dur aahe").unwrap_or_default();
    match (f.status.as_str(), rider) {
        ("picked_up", Some(rider)) => pick(
            lang,
            format!("{store} se aapka order rider {rider} ke paas hai{eta}."),
            format!("Your order from {store} is with rider {rider}{eta}."),
            format!("{store} kadun tumcha order rider {rider} kade aahe{eta}."),
        ),
        ("handover", Some(rider)) => pick(
            lang,
            format!("{store} par aapka order taiyaar hai, rider {rider} use le ja rahe hain."),
            format!("Your order from {store} is ready and rider {rider} is collecting it."),
            format!("{store} madhe tumcha order tayar aahe, rider {rider} to ghet aahet."),
        ),
        ("pending", _) => pick(
            lang,
            format!("{store} ne abhi aapka order accept nahi kiya hai."),
            format!("Your order is waiting for {store} to accept it."),
            format!("{store} ne ajun tumcha order swikarla nahi."),
        ),
        (_, Some(rider)) => pick(
            lang,
            format!("{store} aapka order taiyaar kar raha hai. Rider {rider} hain."),
            format!("{store} is preparing your order. Your rider is {rider}."),
            format!("{store} tumcha order tayar karat aahe. Rider {rider} aahet."),
        ),
        (_, None) => pick(
            lang,
            format!("{store} aapka order taiyaar kar raha hai."),
            format!("{store} is preparing your order."),
            format!("{store} tumcha order tayar karat aahe."),
        ),
    }
}

/// One pending order, as a vendor hears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingFacts {
    pub order_id: String,
    /// Rupees, rounded.
    pub amount: Option<i64>,
    pub items: Option<String>,
}

/// "You have 2 pending orders. The oldest: order 100001, 325 rupees, …"
pub fn vendor_orders(lang: Language, pending: usize, oldest: Option<&PendingFacts>) -> String {
    let Some(oldest) = oldest.filter(|_| pending > 0) else {
        return pick(
            lang,
            "Mangwale: abhi koi naya order baaki nahi hai.".into(),
            "Mangwale: you have no pending orders.".into(),
            "Mangwale: sadhya kontahi order baaki nahi.".into(),
        );
    };
    let amount = oldest.amount.map(|a| format!(" {a} rupees.")).unwrap_or_default();
    let items = oldest.items.as_ref().map(|i| format!(" Items: {i}.")).unwrap_or_default();
    let id = &oldest.order_id;
    pick(
        lang,
        format!("Mangwale: aapke {pending} order baaki hain. Sabse purana order {id}.{amount}{items}"),
        format!("Mangwale: you have {pending} pending orders. The oldest is order {id}.{amount}{items}"),
        format!("Mangwale: tumche {pending} order baaki aahet. Sarvat juna order {id}.{amount}{items}"),
    )
}

/// What a rider hears about their current delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFacts {
    pub order_id: String,
    pub pickup: Option<String>,
    pub drop: Option<String>,
}

pub fn rider_delivery(lang: Language, delivery: Option<&DeliveryFacts>) -> String {
    let Some(d) = delivery else {
        return pick(
            lang,
            "Mangwale: abhi aapke paas koi delivery nahi hai.".into(),
            "Mangwale: you have no delivery right now.".into(),
            "Mangwale: sadhya tumchyakade kontihi delivery nahi.".into(),
        );
    };
    let id = &d.order_id;
    let pickup = d.pickup.as_deref().unwrap_or("store");
    let drop = d.drop.as_deref().unwrap_or("customer");
    pick(
        lang,
        format!("Mangwale delivery, order {id}. Pickup: {pickup}. Drop: {drop}."),
        format!("Mangwale delivery, order {id}. Pick up at {pickup}. Deliver to {drop}."),
        format!("Mangwale delivery, order {id}. Pickup: {pickup}. Drop: {drop}."),
    )
}

/// The closing words of an inbound call, after what the caller did there.
pub fn goodbye(last: Option<Choice>, lang: Language) -> String {
    let (hi, en, mr) = match last {
        Some(Choice::AcceptOldest) => {
            ("Dhanyavaad, order accept ho gaya.", "Thank you, the order is accepted.", "Dhanyavaad, order swikarla.")
        }
        Some(Choice::PrepTime(_)) => {
            ("Dhanyavaad, samay set ho gaya.", "Thank you, the preparation time is set.", "Dhanyavaad, vel tharavli.")
        }
        _ => ("Dhanyavaad. Mangwale.", "Thank you for calling Mangwale.", "Dhanyavaad. Mangwale."),
    };
    pick(lang, hi.into(), en.into(), mr.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Offer = Offer { rider: true, vendor: true, pending: true };

    #[test]
    fn keys_mean_what_the_issue_says() {
        use InboundMenu::*;
        assert_eq!(interpret(Welcome, Offer::default(), Some("1")), Choice::Food);
        assert_eq!(interpret(Welcome, Offer::default(), Some("3")), Choice::LocalShop);
        assert_eq!(interpret(Welcome, Offer::default(), Some("5")), Choice::Support);
        assert_eq!(interpret(CustomerOrder, ALL, Some("1")), Choice::TalkToRider);
        assert_eq!(interpret(CustomerOrder, ALL, Some("2")), Choice::TalkToVendor);
        assert_eq!(interpret(CustomerOrder, ALL, Some("3")), Choice::NewOrder);
        assert_eq!(interpret(Vendor, ALL, Some("1")), Choice::AcceptOldest);
        assert_eq!(interpret(Vendor, ALL, Some("2")), Choice::AskPrepTime);
        assert_eq!(interpret(VendorPrepTime, ALL, Some("2")), Choice::PrepTime(20));
        assert_eq!(interpret(VendorPrepTime, ALL, Some("5")), Choice::Invalid, "no support key mid-question");
        assert_eq!(interpret(Rider, ALL, Some("1")), Choice::TalkToCustomer);
        assert_eq!(interpret(Rider, ALL, Some("2")), Choice::TalkToVendor);
        assert_eq!(interpret(Rider, ALL, Some("*")), Choice::Repeat);
        assert_eq!(interpret(Rider, ALL, None), Choice::NoInput);
        assert_eq!(interpret(Welcome, ALL, Some("9")), Choice::Invalid);
    }

    #[test]
    fn an_option_the_caller_does_not_have_is_a_wrong_key() {
        let no_rider = Offer { rider: false, vendor: true, pending: false };
        assert_eq!(interpret(InboundMenu::CustomerOrder, no_rider, Some("1")), Choice::Invalid);
        assert_eq!(interpret(InboundMenu::Vendor, no_rider, Some("1")), Choice::Invalid);
        assert!(!menu_prompt(InboundMenu::CustomerOrder, no_rider, Language::En).contains("rider"));
        assert!(
            menu_prompt(InboundMenu::CustomerOrder, ALL, Language::En).starts_with("Press 1 to talk to your rider")
        );
        assert_eq!(menu_prompt(InboundMenu::Vendor, Offer::default(), Language::En), "Press 5 for support.");
    }

    #[test]
    fn routes_follow_the_ladder_menus_rules() {
        assert_eq!(route_for(Choice::Food, 0), Route::Desk);
        assert_eq!(with_voice_ordering(Choice::Food, Route::Desk, true), Route::Bot);
        assert_eq!(with_voice_ordering(Choice::Parcel, Route::Desk, false), Route::Desk);
        assert_eq!(with_voice_ordering(Choice::Support, Route::Support, true), Route::Support);
        assert_eq!(route_for(Choice::Invalid, 2), Route::Repeat);
        assert_eq!(route_for(Choice::Invalid, 3), Route::Done);
        assert_eq!(route_for(Choice::Repeat, 9), Route::Repeat);
        assert_eq!(route_for(Choice::NoInput, 0), Route::Done);
        assert_eq!(route_for(Choice::NewOrder, 0), Route::Welcome);
        assert_eq!(route_for_caller(CallerKind::Customer, false), Route::Welcome);
        assert_eq!(route_for_caller(CallerKind::Customer, true), Route::CustomerOrder);
        assert_eq!("rider".parse::<CallerKind>().unwrap(), CallerKind::Rider);
    }

    #[test]
    fn the_customer_hears_the_order_status() {
        let facts = OrderStatusFacts {
            status: "picked_up".into(),
            store: Some("Sai Misal".into()),
            rider: Some("Ramesh".into()),
            eta_minutes: Some(10),
        };
        assert_eq!(
            order_status(Language::En, &facts),
            "Your order from Sai Misal is with rider Ramesh, about 10 minutes away."
        );
        assert!(order_status(Language::Hi, &facts).contains("rider Ramesh ke paas"));
        assert!(order_status(Language::Mr, &facts).contains("rider Ramesh kade"));
        let pending = PendingFacts { order_id: "100001".into(), amount: Some(325), items: None };
        assert!(
            vendor_orders(Language::En, 2, Some(&pending)).contains("2 pending orders. The oldest is order 100001")
        );
    }
}
