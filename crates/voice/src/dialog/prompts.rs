//! Everything the agent says, per language, in one table: `hi` and `mr`
//! in Devanagari, `hi-en` in Latin Hinglish, `en` in English. Amounts and
//! quantities come in already spelled ([`crate::spell`]).

use crate::catalog::Lang;

/// The text for `lang` out of [hi, hi-en, mr, en].
fn pick(lang: Lang, texts: [&str; 4]) -> String {
    match lang {
        Lang::Hi => texts[0],
        Lang::HiEn => texts[1],
        Lang::Mr => texts[2],
        Lang::En => texts[3],
    }
    .to_string()
}

/// Fills `{}` placeholders in order.
fn fill(lang: Lang, texts: [&str; 4], args: &[&str]) -> String {
    let mut out = pick(lang, texts);
    for arg in args {
        if let Some(at) = out.find("{}") {
            out.replace_range(at..at + 2, arg);
        }
    }
    out
}

pub fn greet_store(lang: Lang, store: &str) -> String {
    fill(
        lang,
        [
            "नमस्ते, {} में आपका स्वागत है। क्या ऑर्डर करना है?",
            "Namaste, {} mein aapka swagat hai. Kya order karna hai?",
            "नमस्कार, {} मध्ये आपले स्वागत आहे. काय ऑर्डर करायचं आहे?",
            "Hello, welcome to {}. What would you like to order?",
        ],
        &[store],
    )
}

pub fn greet_no_store(lang: Lang) -> String {
    pick(
        lang,
        [
            "नमस्ते, मंगवाले में आपका स्वागत है। किस दुकान से ऑर्डर करना है, या क्या मंगवाना है?",
            "Namaste, Mangwale mein aapka swagat hai. Kis dukaan se order karna hai, ya kya mangwana hai?",
            "नमस्कार, मंगवाले मध्ये आपले स्वागत आहे. कोणत्या दुकानातून ऑर्डर करायची आहे, किंवा काय मागवायचं आहे?",
            "Hello, welcome to Mangwale. Which store would you like to order from, or what would you like?",
        ],
    )
}

pub fn ask_store(lang: Lang) -> String {
    pick(
        lang,
        [
            "किस दुकान से ऑर्डर करना है, या क्या मंगवाना है?",
            "Kis dukaan se order karna hai, ya kya mangwana hai?",
            "कोणत्या दुकानातून ऑर्डर करायची आहे, किंवा काय मागवायचं आहे?",
            "Which store would you like to order from, or what would you like?",
        ],
    )
}

/// "A ya B? 1 ya 2 dabaiye": a choice between up to three names.
pub fn choose(lang: Lang, names: &[String]) -> String {
    let or = pick(lang, [" या ", " ya ", " की ", " or "]);
    let keys: Vec<String> = (1..=names.len()).map(|n| n.to_string()).collect();
    let key_or = pick(lang, [" या ", " ya ", " किंवा ", " or "]);
    let keys = match keys.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}{key_or}{last}", rest.join(", ")),
        _ => keys.join(""),
    };
    let question = names.join(&or);
    fill(lang, ["{}? {} दबाइए।", "{}? {} dabaiye.", "{}? {} दाबा.", "{}? Press {}."], &[&question, &keys])
}

pub fn no_store_sells(lang: Lang) -> String {
    pick(
        lang,
        [
            "माफ़ कीजिए, पास की किसी खुली दुकान में यह नहीं मिला। दुकान का नाम बताइए।",
            "Maaf kijiye, paas ki kisi khuli dukaan mein yeh nahi mila. Dukaan ka naam bataiye.",
            "माफ करा, जवळच्या कोणत्याही उघड्या दुकानात हे मिळालं नाही. दुकानाचं नाव सांगा.",
            "Sorry, no open store near you sells that. Please tell me the store's name.",
        ],
    )
}

pub fn store_closed(lang: Lang, store: &str) -> String {
    fill(
        lang,
        [
            "{} अभी बंद है। किसी और दुकान का नाम बताइए।",
            "{} abhi band hai. Kisi aur dukaan ka naam bataiye.",
            "{} आत्ता बंद आहे. दुसऱ्या दुकानाचं नाव सांगा.",
            "{} is closed right now. Please name another store.",
        ],
        &[store],
    )
}

pub fn store_chosen(lang: Lang, store: &str) -> String {
    fill(
        lang,
        [
            "{}। क्या ऑर्डर करना है?",
            "{}. Kya order karna hai?",
            "{}. काय ऑर्डर करायचं आहे?",
            "{}. What would you like to order?",
        ],
        &[store],
    )
}

pub fn ask_items(lang: Lang) -> String {
    pick(lang, ["क्या ऑर्डर करना है?", "Kya order karna hai?", "काय ऑर्डर करायचं आहे?", "What would you like to order?"])
}

pub fn anything_else(lang: Lang) -> String {
    pick(lang, ["और कुछ?", "Aur kuch?", "आणखी काही?", "Anything else?"])
}

pub fn okay(lang: Lang) -> String {
    pick(lang, ["ठीक है।", "Theek hai.", "ठीक आहे.", "Okay."])
}

pub fn added(lang: Lang, lines: &str) -> String {
    fill(lang, ["{}, ठीक है।", "{}, theek hai.", "{}, ठीक आहे.", "{}, got it."], &[lines])
}

pub fn removed(lang: Lang, names: &str) -> String {
    fill(lang, ["{} हटा दिया।", "{} hata diya.", "{} काढलं.", "Removed {}."], &[names])
}

pub fn not_sold(lang: Lang, heard: &str) -> String {
    fill(
        lang,
        ["{} यहाँ नहीं मिलता।", "{} yahan nahi milta.", "{} इथे मिळत नाही.", "Sorry, {} is not sold here."],
        &[heard],
    )
}

pub fn unavailable(lang: Lang, name: &str) -> String {
    fill(
        lang,
        [
            "{} अभी उपलब्ध नहीं है।",
            "{} abhi uplabdh nahi hai.",
            "{} आत्ता उपलब्ध नाही.",
            "Sorry, {} is not available right now.",
        ],
        &[name],
    )
}

pub fn ask_quantity(lang: Lang, name: &str) -> String {
    fill(
        lang,
        [
            "{} कितना चाहिए? जैसे एक किलो या पाँच सौ ग्राम।",
            "{} kitna chahiye? Jaise ek kilo ya 500 gram.",
            "{} किती हवं? जसं एक किलो किंवा पाचशे ग्रॅम.",
            "How much {} would you like? For example one kilo or 500 grams.",
        ],
        &[name],
    )
}

pub fn cart_cleared(lang: Lang) -> String {
    pick(lang, ["कार्ट खाली कर दिया।", "Cart khaali kar diya.", "कार्ट रिकामी केली.", "I have emptied the cart."])
}

pub fn cart_cancelled(lang: Lang) -> String {
    pick(
        lang,
        [
            "ठीक है, ऑर्डर रद्द कर दिया। कुछ और मंगवाना है?",
            "Theek hai, order cancel kar diya. Kuch aur mangwana hai?",
            "ठीक आहे, ऑर्डर रद्द केली. आणखी काही मागवायचं आहे का?",
            "Okay, I have cancelled the order. Would you like to order something else?",
        ],
    )
}

pub fn cart_empty(lang: Lang) -> String {
    pick(
        lang,
        [
            "कार्ट अभी खाली है। क्या ऑर्डर करना है?",
            "Cart abhi khaali hai. Kya order karna hai?",
            "कार्ट अजून रिकामी आहे. काय ऑर्डर करायचं आहे?",
            "Your cart is empty. What would you like to order?",
        ],
    )
}

/// The cart read back: its lines and total, then the confirm question.
pub fn read_back(lang: Lang, lines: &str, total: &str) -> String {
    fill(
        lang,
        [
            "आपका ऑर्डर: {}। कुल {}। कन्फर्म करें? 1 हाँ, 2 नहीं।",
            "Aapka order: {}. Total {}. Confirm karein? 1 haan, 2 nahi.",
            "तुमची ऑर्डर: {}. एकूण {}. कन्फर्म करू? 1 हो, 2 नाही.",
            "Your order: {}. Total {}. Shall I confirm it? 1 yes, 2 no.",
        ],
        &[lines, total],
    )
}

pub fn resume(lang: Lang, lines: &str, total: &str) -> String {
    fill(
        lang,
        [
            "आपका पिछला ऑर्डर अधूरा रह गया था: {}। कुल {}। वही ऑर्डर करें? 1 हाँ, 2 नहीं।",
            "Aapka pichhla order adhoora reh gaya tha: {}. Total {}. Wahi order karein? 1 haan, 2 nahi.",
            "तुमची मागची ऑर्डर अपूर्ण राहिली होती: {}. एकूण {}. तीच ऑर्डर करू? 1 हो, 2 नाही.",
            "Your last order was not finished: {}. Total {}. Shall I order that? 1 yes, 2 no.",
        ],
        &[lines, total],
    )
}

pub fn what_to_change(lang: Lang) -> String {
    pick(lang, ["क्या बदलना है?", "Kya badalna hai?", "काय बदलायचं आहे?", "What would you like to change?"])
}

pub fn ask_address(lang: Lang, address: &str) -> String {
    fill(
        lang,
        [
            "{} पर भेजें? 1 हाँ, 2 नहीं।",
            "{} par bhejein? 1 haan, 2 nahi.",
            "{} इथे पाठवू? 1 हो, 2 नाही.",
            "Shall we deliver to {}? 1 yes, 2 no.",
        ],
        &[address],
    )
}

pub fn no_address(lang: Lang) -> String {
    pick(
        lang,
        [
            "डिलीवरी का पता नहीं मिला। आपको ऑर्डर डेस्क से जोड़ रहे हैं।",
            "Delivery ka pata nahi mila. Aapko order desk se jod rahe hain.",
            "डिलिव्हरीचा पत्ता मिळाला नाही. तुम्हाला ऑर्डर डेस्कशी जोडत आहोत.",
            "I don't have a delivery address for you. Connecting you to our order desk.",
        ],
    )
}

pub fn ask_payment(lang: Lang) -> String {
    pick(
        lang,
        [
            "भुगतान कैसे करेंगे? कैश ऑन डिलीवरी के लिए 1, UPI लिंक के लिए 2 दबाइए।",
            "Payment kaise karenge? Cash on delivery ke liye 1, UPI link ke liye 2 dabaiye.",
            "पैसे कसे देणार? कॅश ऑन डिलिव्हरीसाठी 1, UPI लिंकसाठी 2 दाबा.",
            "How would you like to pay? Press 1 for cash on delivery, 2 for a UPI link.",
        ],
    )
}

pub fn placed(lang: Lang, number: &str, total: &str) -> String {
    fill(
        lang,
        [
            "आपका ऑर्डर हो गया। ऑर्डर नंबर {}, कुल {}।",
            "Aapka order ho gaya. Order number {}, total {}.",
            "तुमची ऑर्डर झाली. ऑर्डर नंबर {}, एकूण {}.",
            "Your order is placed. Order number {}, total {}.",
        ],
        &[number, total],
    )
}

/// The order placed, when what Jupiter charges is more than the cart read
/// back: the difference is the delivery charge, said so that the caller is
/// not surprised by a second total.
pub fn placed_with_delivery(lang: Lang, number: &str, total: &str, delivery: &str) -> String {
    fill(
        lang,
        [
            "आपका ऑर्डर हो गया। ऑर्डर नंबर {}, कुल {}, जिसमें {} डिलीवरी चार्ज है।",
            "Aapka order ho gaya. Order number {}, total {}, jismein {} delivery charge hai.",
            "तुमची ऑर्डर झाली. ऑर्डर नंबर {}, एकूण {}, त्यात {} डिलिव्हरी चार्ज आहे.",
            "Your order is placed. Order number {}, total {}, including {} for delivery.",
        ],
        &[number, total, delivery],
    )
}

pub fn link_sent(lang: Lang, whatsapp: bool) -> String {
    let via = if whatsapp { "WhatsApp" } else { "SMS" };
    fill(
        lang,
        [
            "UPI लिंक {} पर भेजा है।",
            "UPI link {} par bheja hai.",
            "UPI लिंक {} वर पाठवली आहे.",
            "The UPI link is on its way by {}.",
        ],
        &[via],
    )
}

pub fn link_failed(lang: Lang) -> String {
    pick(
        lang,
        [
            "UPI लिंक नहीं भेज पाए, कृपया डिलीवरी पर नकद दीजिए।",
            "UPI link nahi bhej paaye, kripya delivery par cash dijiye.",
            "UPI लिंक पाठवता आली नाही, कृपया डिलिव्हरीला रोख द्या.",
            "I could not send the UPI link; please pay cash on delivery.",
        ],
    )
}

pub fn already_placed(lang: Lang, number: &str) -> String {
    fill(
        lang,
        [
            "ऑर्डर पहले ही हो गया है, नंबर {}।",
            "Order pehle hi ho gaya hai, number {}.",
            "ऑर्डर आधीच झाली आहे, नंबर {}.",
            "Your order is already placed, number {}.",
        ],
        &[number],
    )
}

pub fn place_failed(lang: Lang) -> String {
    pick(
        lang,
        [
            "माफ़ कीजिए, ऑर्डर नहीं हो पाया। आपको ऑर्डर डेस्क से जोड़ रहे हैं।",
            "Maaf kijiye, order place nahi ho paaya. Aapko order desk se jod rahe hain.",
            "माफ करा, ऑर्डर होऊ शकली नाही. तुम्हाला ऑर्डर डेस्कशी जोडत आहोत.",
            "Sorry, the order could not be placed. Connecting you to our order desk.",
        ],
    )
}

pub fn confirm_cancel(lang: Lang, number: &str) -> String {
    fill(
        lang,
        [
            "ऑर्डर नंबर {} रद्द करें? 1 हाँ, 2 नहीं।",
            "Order number {} cancel karein? 1 haan, 2 nahi.",
            "ऑर्डर नंबर {} रद्द करू? 1 हो, 2 नाही.",
            "Cancel order number {}? 1 yes, 2 no.",
        ],
        &[number],
    )
}

pub fn order_cancelled(lang: Lang, number: &str) -> String {
    fill(
        lang,
        [
            "ऑर्डर नंबर {} रद्द हो गया।",
            "Order number {} cancel ho gaya.",
            "ऑर्डर नंबर {} रद्द झाली.",
            "Order number {} is cancelled.",
        ],
        &[number],
    )
}

pub fn order_kept(lang: Lang) -> String {
    pick(
        lang,
        ["ठीक है, ऑर्डर चालू है।", "Theek hai, order chalu hai.", "ठीक आहे, ऑर्डर चालू आहे.", "Okay, your order stands."],
    )
}

pub fn nothing_to_cancel(lang: Lang) -> String {
    pick(
        lang,
        [
            "रद्द करने को कोई ऑर्डर नहीं है।",
            "Cancel karne ko koi order nahi hai.",
            "रद्द करायला कोणती ऑर्डर नाही.",
            "There is no order to cancel.",
        ],
    )
}

pub fn not_understood(lang: Lang) -> String {
    pick(
        lang,
        [
            "माफ़ कीजिए, समझ नहीं आया।",
            "Maaf kijiye, samajh nahi aaya.",
            "माफ करा, समजलं नाही.",
            "Sorry, I didn't catch that.",
        ],
    )
}

pub fn to_order_desk(lang: Lang) -> String {
    pick(
        lang,
        [
            "आपको हमारे ऑर्डर डेस्क से जोड़ रहे हैं।",
            "Aapko hamare order desk se jod rahe hain.",
            "तुम्हाला आमच्या ऑर्डर डेस्कशी जोडत आहोत.",
            "Connecting you to our order desk.",
        ],
    )
}

pub fn system_down(lang: Lang) -> String {
    pick(
        lang,
        [
            "माफ़ कीजिए, अभी सिस्टम में दिक्कत है। आपको ऑर्डर डेस्क से जोड़ रहे हैं।",
            "Maaf kijiye, abhi system mein dikkat hai. Aapko order desk se jod rahe hain.",
            "माफ करा, आत्ता सिस्टममध्ये अडचण आहे. तुम्हाला ऑर्डर डेस्कशी जोडत आहोत.",
            "Sorry, our system is having trouble right now. Connecting you to our order desk.",
        ],
    )
}

pub fn cancel_failed(lang: Lang) -> String {
    pick(
        lang,
        [
            "माफ़ कीजिए, ऑर्डर रद्द नहीं हो पाया। आपको ऑर्डर डेस्क से जोड़ रहे हैं।",
            "Maaf kijiye, order cancel nahi ho paaya. Aapko order desk se jod rahe hain.",
            "माफ करा, ऑर्डर रद्द होऊ शकली नाही. तुम्हाला ऑर्डर डेस्कशी जोडत आहोत.",
            "Sorry, I could not cancel the order. Connecting you to our order desk.",
        ],
    )
}

pub fn goodbye(lang: Lang) -> String {
    pick(lang, ["धन्यवाद! नमस्ते।", "Dhanyavaad! Namaste.", "धन्यवाद! नमस्कार.", "Thank you, goodbye."])
}

pub fn price_of(lang: Lang, name: &str, amount: &str) -> String {
    fill(lang, ["{} {} का है।", "{} {} ka hai.", "{} {} ला आहे.", "{} costs {}."], &[name, amount])
}

pub fn total_so_far(lang: Lang, lines: &str, total: &str) -> String {
    fill(
        lang,
        ["अभी तक: {}। कुल {}।", "Abhi tak: {}. Total {}.", "आत्तापर्यंत: {}. एकूण {}.", "So far: {}. Total {}."],
        &[lines, total],
    )
}

pub fn menu(lang: Lang, names: &str) -> String {
    fill(lang, ["यहाँ मिलता है: {}।", "Yahan milta hai: {}.", "इथे मिळतं: {}.", "We have: {}."], &[names])
}

pub fn sold_here(lang: Lang, name: &str) -> String {
    fill(lang, ["हाँ, {} मिलता है।", "Haan, {} milta hai.", "हो, {} मिळतं.", "Yes, we have {}."], &[name])
}

pub fn delivery_time(lang: Lang) -> String {
    pick(
        lang,
        [
            "डिलीवरी का समय इस कॉल पर नहीं बता सकते।",
            "Delivery ka samay is call par nahi bata sakte.",
            "डिलिव्हरीची वेळ या कॉलवर सांगता येत नाही.",
            "I can't tell the delivery time on this call.",
        ],
    )
}

/// Joins spoken list items: "A, B aur C".
pub fn list(lang: Lang, items: &[String]) -> String {
    let and = pick(lang, [" और ", " aur ", " आणि ", " and "]);
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}{and}{last}", rest.join(", ")),
        _ => items.join(""),
    }
}

/// The filler of the phone stream, said when a reply takes a moment.
pub fn one_moment(lang: Lang) -> String {
    pick(lang, ["एक सेकंड...", "Ek second...", "एक सेकंद...", "One moment..."])
}

/// Said on a phone stream when no speech recogniser is configured.
pub fn no_speech_recognition(lang: Lang) -> String {
    pick(
        lang,
        [
            "माफ़ कीजिए, अभी आवाज़ से ऑर्डर नहीं ले सकते। आपको ऑर्डर डेस्क से जोड़ रहे हैं।",
            "Maaf kijiye, abhi aawaaz se order nahi le sakte. Aapko order desk se jod rahe hain.",
            "माफ करा, आत्ता आवाजाने ऑर्डर घेता येत नाही. तुम्हाला ऑर्डर डेस्कशी जोडत आहोत.",
            "Sorry, I can't take orders by voice right now. Connecting you to our order desk.",
        ],
    )
}
