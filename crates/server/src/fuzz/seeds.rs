//! Real payloads the generators mutate: the samples of Exotel's wire
//! protocol (`shared/docs/exotel-wire.md`, section in each comment), Meta's
//! and Google's documented bodies, and the shapes the test fixtures use.

/// Passthru, Greeting and Stream applet queries (§4.1, §4.2), and the seed's
/// JSON IVR bodies.
pub const EXOTEL_QUERIES: &[&str] = &[
    // §4.1, the documented Passthru request.
    "CallSid=d50e19c31e3911190a7e601f1056d69a&CallFrom=07799828555&CallTo=08039513882\
     &CallStatus=ringing&Direction=incoming&Created=Tue%2C+16+Feb+2016+15%3A56%3A26&DialCallDuration=0\
     &StartTime=2016-02-16+15%3A56%3A26&EndTime=0000-00-00+00%3A00%3A00&CallType=call-attempt\
     &DialWhomNumber=&flow_id=68135&tenant_id=39&From=07799828555&To=08039513882\
     &CurrentTime=2016-02-16+15%3A56%3A49&digits=%222%22",
    // Our flow URLs: flow and step in the query, the webhook token too.
    "CallSid=b6cfaf5f5cef3ca0fc937749ef96d245&From=09876543210&To=08047112233&flow=vendor_new_order\
     &step=menu&token=secret-token&CustomField=MW-2025-001234%7Cvendor_order_MW-2025-001234&digits=%221%22",
    "CallSid=a&flow=rider_assign&step=menu&digits=%229%22&CallType=completed&DialCallStatus=no-answer\
     &DialCallDuration=%2245.0%22&RecordingUrl=https%3A%2F%2Fs3.example%2Fr.mp3",
    // §4.1, after a Voicebot applet: flattened Stream fields, then the JSON form.
    "CallSid=a&Stream[StreamSID]=s1&Stream[Status]=completed&Stream[Duration]=42&Stream[DisconnectedBy]=user\
     &Stream[StreamUrl]=wss%3A%2F%2Fexample%2Fexotel%2Fvoicebot%3Ftoken%3Dsecret",
    "CallSid=a&Stream=%7B%22StreamSID%22%3A%22s2%22%2C%22Duration%22%3A%227%22%2C%22StreamUrl%22%3A%22wss%3A%2F%2Fx%22%7D",
    // §3, Connect-applet agent events.
    "CallSid=c&CallFrom=09876543210&CallTo=08047112233&Direction=outbound-dial&Created=2024-01-15+14%3A25%3A10\
     &From=09876543210&To=09123456789&CurrentTime=2024-01-15+14%3A25%3A12&DialWhomNumber=09123456789\
     &Status=free&EventType=Answered",
    // §3, flattened status callbacks.
    "CallSid=abc&EventType=answered&Status=in-progress&ConversationDuration=%2245%22\
     &Legs%5B0%5D%5BStatus%5D=in-progress&Legs%5B1%5D%5BStatus%5D=",
    "CallSid=abc&Status=no-answer&DateUpdated=2024-01-15+10%3A30%3A04&RecordingUrl=",
    // §6.4, the SMS delivery callback.
    "SmsSid=6dbfdc50133d0e51ec8d793356559868&To=09876543210&Status=sent&SmsUnits=1\
     &DetailedStatus=DELIVERED_TO_HANDSET&DetailedStatusCode=20005&DateSent=2024-01-15+10%3A30%3A04&CustomField=otp_77",
    "SmsSid=6dbfdc50&To=%2B919876543210&Status=failed_dnd&DetailedStatus=FAILED_REJECTED_DND&DetailedStatusCode=23005",
];

/// JSON bodies Exotel (§3, `StatusCallbackContentType=application/json`)
/// and the seed's IVR clients send.
pub const EXOTEL_JSON: &[&str] = &[
    // §3, the documented terminal callback.
    r#"{"CallSid":"80bfbec2d78bbbf10fb851f4fa165211","EventType":"terminal","Status":"completed",
 "DateCreated":"2024-01-15 14:25:10","DateUpdated":"2024-01-15 14:30:45",
 "StartTime":"2024-01-15 14:25:12","EndTime":"2024-01-15 14:30:45",
 "From":"09876543210","To":"09123456789","PhoneNumberSid":"08047112233",
 "ConversationDuration":320,"Direction":"outbound-api","CustomField":"order_4711",
 "RecordingUrl":"https://s3-ap-southeast-1.amazonaws.com/exotelrecordings/acme1/80bf.mp3",
 "Legs":[{"OnCallDuration":335,"Status":"completed","AnsweredBy":"NA"},
         {"OnCallDuration":320,"Status":"completed","AnsweredBy":"Human"}]}"#,
    r#"{"CallSid":"abc","EventType":"answered","Status":"in-progress","ConversationDuration":"45",
 "Legs":[{"Status":"in-progress"},{"Status":""}]}"#,
    // The seed's IVR bodies.
    r#"{"CallSid":"EXO-456","digits":"1","context":"vendor_new_order","order_id":"MW-1"}"#,
    r#"{"From":"+919876543210","To":"+919999999999","CallType":"missed"}"#,
    r#"{"CallSid":"EXO-789","From":9876543210,"digits":2,"context":"rider_assign","Stream":{"StreamSID":"s"}}"#,
];

/// Voicebot events (§5).
pub const VOICEBOT: &[&str] = &[
    r#"{"event":"connected"}"#,
    r#"{"event":"start","sequence_number":1,"stream_sid":"6f048d2e897a0d2d4029560f3f541947","start":{"stream_sid":"6f048d2e897a0d2d4029560f3f541947","call_sid":"56b1234567abcdef89abcdef12345678","account_sid":"acme1","from":"09876543210","to":"08047112233","custom_parameters":{"lead":"42","token":"secret"},"media_format":{"encoding":"raw","sample_rate":"8000","bit_rate":"128"}}}"#,
    r#"{"event":"media","sequence_number":3,"stream_sid":"6f04","media":{"chunk":2,"timestamp":"200","payload":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
    r#"{"event":"dtmf","sequence_number":7,"stream_sid":"6f04","dtmf":{"digit":"5","duration":"100"}}"#,
    r#"{"event":"mark","sequence_number":15,"stream_sid":"6f04","mark":{"name":"turn-3"}}"#,
    r#"{"event":"stop","sequence_number":20,"stream_sid":"6f04","stop":{"call_sid":"56b1","account_sid":"acme1","reason":"callended"}}"#,
];

/// Exotel's answers to our requests (§0.1, §1.3, §2, §6.1, §6.2), the
/// ExoPhone list and number lookups, and what proxies put in front of them.
pub const EXOTEL_ANSWERS: &[&str] = &[
    r#"{"Call": {"Sid": "c5797dcbaaeed7678c4062a4a3ed2f8a", "ParentCallSid": null,
  "DateCreated": "2024-03-03 10:48:33", "DateUpdated": "2024-03-03 10:48:33",
  "AccountSid": "acme1", "To": "09123456789", "From": "09876543210",
  "PhoneNumberSid": "08047112233", "Status": "in-progress",
  "StartTime": "2024-03-03 10:48:33", "EndTime": null, "Duration": null, "Price": null,
  "Direction": "outbound-api", "AnsweredBy": null, "ForwardedFrom": null, "CallerName": null,
  "Uri": "/v1/Accounts/acme1/Calls/c5797dcbaaeed7678c4062a4a3ed2f8a.json", "RecordingUrl": null,
  "Details": {"ConversationDuration": 8, "Leg1Status": "completed", "Leg2Status": "completed",
            "Legs": [{"Leg": {"Id": 1, "OnCallDuration": 21}}, {"Leg": {"Id": 2, "OnCallDuration": 8}}]}}}"#,
    r#"{"SMSMessage": {"Sid":"6dbfdc50133d0e51ec8d793356559868","AccountSid":"acme1",
  "From":"08047112233/ACMEIN","To":"09876543210","DateCreated":"2024-01-15 10:30:00",
  "DateUpdated":"2024-01-15 10:30:00","DateSent":null,"Body":"Your OTP is 123456 - ACME",
  "Direction":"outbound-api","Uri":"/v1/Accounts/acme1/SMS/Messages/6dbfdc50133d0e51ec8d793356559868.json",
  "ApiVersion":null,"Price":null,"Status":"queued","SmsUnits":null,
  "DetailedStatusCode":21010,"DetailedStatus":"PENDING_TO_OPERATOR"}}"#,
    r#"[{"SMSMessage":{"Sid":"a1","To":"09876543210","Status":"queued"}},{"RestException":{"Status":400,"Message":"Invalid To","Code":40203}}]"#,
    r#"{"page": 0, "page_size": 50, "next_page_uri": null, "incoming_phone_numbers": [{"sid": "0a1b2c", "phone_number": "+918047112233", "friendly_name": "Mangwale IVR"}]}"#,
    r#"{"Numbers": {"PhoneNumber": "09876543210", "Circle": "KA", "CircleName": "Karnataka", "Type": "Mobile", "Operator": "AT", "OperatorName": "Airtel", "DND": "Yes"}}"#,
    r#"{"RestException": {"Status": 401, "Message": "Unauthorized; ", "Code": 34010}}"#,
    "<TwilioResponse><RestException><Status>400</Status><Message>Invalid To 09876543210</Message><Code>40203</Code></RestException></TwilioResponse>",
    "<html>\n<body><h1>502   Bad Gateway</h1></body></html>",
];

/// Jupiter's webhook bodies (the seed's webhook table) and the answers of
/// Jupiter and the PHP backend (the shapes of `jupiter::model`'s fixtures).
pub const JUPITER_WEBHOOKS: &[&str] = &[
    r#"{"order_id": 12345, "store_id": 67, "vendor_phone": "+919822012345", "amount": 325, "items": [{"name": "Poha", "quantity": 1, "price": 25}]}"#,
    r#"{"orderId": "MW-2025-001234", "riderId": 5, "rider_phone": "9850011223", "customer_phone": "09876543210", "customer_name": "Rahul"}"#,
    r#"{"order_id": "MW-2025-001234", "reason": "store closed", "address": "Flat 4B, Shivaji Nagar", "landmark": null}"#,
];

pub const JUPITER_ANSWERS: &[&str] = &[
    r#"{"id": 100045, "order_amount": "325.00", "delivery_charge": "20.00", "order_status": "pending",
 "payment_method": "cash_on_delivery", "payment_status": "unpaid", "order_note": null,
 "customer": {"id": 890, "f_name": "Rahul", "l_name": "Patil", "phone": "09876543210"},
 "store": {"id": 67, "name": "Krishna Kirana", "phone": "919822012345", "address": "College Road"},
 "delivery_man": {"id": 5, "f_name": "Sunil", "l_name": "Pawar", "phone": "+919850011223"},
 "sender_details": "{\"contact_person_name\":\"Krishna Kirana\",\"address\":\"Shop 12\",\"latitude\":\"20.0\"}",
 "receiver_details": {"contact_person_name": "Rahul", "contact_person_number": "9876543210", "address": "Flat 4B"},
 "details": [{"item_id": 7, "price": "25.00", "quantity": 1, "product_details": "{\"id\":7,\"name\":\"Poha\"}"},
             {"item_id": 9, "price": 30, "quantity": "2", "food": {"id": 9, "name": "Milk 500ml"}}]}"#,
    r#"{"success": true, "data": {"id": 12345, "status": "confirmed", "amount": 325, "paymentMethod": "digital_payment",
 "store": {"id": 67, "name": "Sharma Kirana", "phone": "+919822012345"}, "deliveryMan": null,
 "items": [{"name": "Butter Chicken", "quantity": 1, "price": 280.0}]}}"#,
    r#"{"stores": [{"id": "4", "name": "Gupta Medical", "phone": "9822000004", "active": 0, "minimum_order": "100.00", "module_type": "pharmacy"}]}"#,
    r#"{"delivery_men": [{"id": 5, "f_name": "Sunil", "l_name": "Pawar", "phone": "0985001122 3", "active": "1", "current_orders": 2}]}"#,
    r#"{"data": {"id": 890, "name": "Rahul", "phone": "9876543210", "language": "mr", "isRegistered": true,
 "addresses": [{"id": 1, "label": "home", "address": "Flat 4B", "latitude": 20.01, "longitude": "73.7"}]}}"#,
    r#"{"items": [{"id": 11, "storeId": 2, "name": "Toor Dal", "aliases": ["tur dal", "तूर दाल"], "price": "145.50", "unit": "kg", "packSize": "1 kg", "available": 1}]}"#,
    r#"{"orderId": "MW-2025-001234", "orderAmount": 325, "status": "pending"}"#,
    r#"{"errors": [{"code": "order_id", "message": "order 9876543210 not found"}]}"#,
];

/// WhatsApp Cloud API webhooks (Meta's `messages` webhook, modelled on
/// captured traffic) and answers.
pub const WHATSAPP_WEBHOOKS: &[&str] = &[
    r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
 "messaging_product":"whatsapp","metadata":{"display_phone_number":"918047112233","phone_number_id":"106540352242922"},
 "contacts":[{"profile":{"name":"Sharma Sweets"},"wa_id":"919876543210"}],
 "messages":[
  {"context":{"from":"918047112233","id":"wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSOUE3QjFGNjdCRjA4QjI5NzU3AA=="},
   "from":"919876543210","id":"wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhggM0VCMDQ3RDhBNzE3NTNGNkM5QkQA","timestamp":"1736925612",
   "type":"button","button":{"payload":"vendor_order_MW-2025-001234|accept","text":"स्वीकार करें"}},
  {"from":"919876543210","id":"wamid.2","timestamp":"1736925640","type":"interactive",
   "interactive":{"type":"button_reply","button_reply":{"id":"vendor_reminder_MW-1|extend","title":"Ready"}}},
  {"from":"919876543210","id":"wamid.3","timestamp":1736925700,"type":"text","text":{"body":"10 minute mein ready hoga"}},
  {"from":"919876543210","id":"wamid.4","timestamp":"1736925701","type":"reaction","reaction":{"message_id":"wamid.1","emoji":"\ud83d\udc4d"}}
 ]},"field":"messages"}]},
 {"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","statuses":[
  {"id":"wamid.1","status":"delivered","timestamp":"1736925601","recipient_id":"919876543210",
   "conversation":{"id":"2bd9","origin":{"type":"utility"}},"pricing":{"billable":true,"category":"utility"}},
  {"id":"wamid.5","status":"failed","timestamp":"1736925620","recipient_id":"919998765432",
   "errors":[{"code":131026,"title":"Message undeliverable","error_data":{"details":"Message Undeliverable."}}]}
 ]},"field":"messages"},
 {"value":{"event":"APPROVED","message_template_id":1234567890,"message_template_name":"vendor_new_order"},"field":"message_template_status_update"}]}]}"#,
];

pub const WHATSAPP_ANSWERS: &[&str] = &[
    r#"{"messaging_product":"whatsapp","contacts":[{"input":"+919876543210","wa_id":"919876543210"}],"messages":[{"id":"wamid.HBgM","message_status":"accepted"}]}"#,
    r#"{"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","type":"OAuthException","code":131056,"error_subcode":"2494055","error_data":{"messaging_product":"whatsapp","details":"Message failed to send to +919876543210"},"fbtrace_id":"AbCdEf123"}}"#,
];

/// FCM v1 answers (Google's error model) and the OAuth token endpoint's.
pub const FCM_ANSWERS: &[&str] = &[
    r#"{"name": "projects/mangwale/messages/0:1500415314455276%31bd1c9631bd1c96"}"#,
    r#"{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND", "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}"#,
    r#"{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "QUOTA_EXCEEDED"}]}}"#,
];

/// `Retry-After` headers: seconds or an HTTP date (RFC 9110 §10.2.3).
pub const RETRY_AFTER: &[&str] =
    &["120", "0", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 +0000", "18446744073709551615", ""];
