//! Campaigns over HTTP: the incumbent's shapes, the state machine, bad
//! input, custom templates, the CSV intake at volume and the export.

use serde_json::{Value, json};

use crate::common::{API_KEY, TestApp};

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let res =
        app.http.post(format!("{}{path}", app.base)).header("X-API-Key", API_KEY).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn upload(app: &TestApp, id: &str, csv: String) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}/campaigns/{id}/recipients", app.base))
        .header("X-API-Key", API_KEY)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn create(app: &TestApp, body: Value) -> String {
    let (status, created) = post(app, "/campaigns/create", body).await;
    assert_eq!(status, 201, "{created}");
    created["campaignId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_incumbents_create_start_pause_shapes_work_and_bad_input_names_its_field() {
    let app = TestApp::start(&[]).await;
    let (status, created) = post(
        &app,
        "/campaigns/create",
        json!({
            "name": "Nashik Launch Wave 2",
            "type": "area_launch",
            "channel": "both",
            "phone_numbers": ["+919876543210", "9988776655", "12345", "09876543210"],
            "language": "hi",
            "target_audience": {"area": "Nashik", "inactive_days": 30},
            "schedule": {"start_at": "2026-11-01T04:30:00Z"},
            "caller_id": "+918047110000"
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["success"], true);
    let id = created["campaignId"].as_str().unwrap().to_string();
    assert!(id.starts_with("cmp_"));
    let c = &created["campaign"];
    assert_eq!(
        (c["type"].as_str(), c["channel"].as_str(), c["state"].as_str()),
        (Some("area_launch"), Some("both"), Some("created"))
    );
    assert_eq!(c["status"], "created");
    assert_eq!(c["totalRecipients"], 2);
    assert_eq!(c["startAt"], "2026-11-01T04:30:00+00:00");
    assert_eq!(c["targetAudience"]["area"], "Nashik");
    assert_eq!(c["callerId"], "+918047110000");
    let r = &created["recipients"];
    assert_eq!((r["accepted"].as_u64(), r["duplicates"].as_u64(), r["invalid"].as_u64()), (Some(2), Some(1), Some(1)));
    assert_eq!(r["errors"][0]["index"], 2);

    let (status, got) = app.get(&format!("/campaigns/{id}"), Some(API_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(got["counts"]["sms"]["queued"], 2);
    assert_eq!(got["counts"]["voice"]["queued"], 2);
    assert_eq!(got["counts"]["voice"]["pressed_1"], 0);
    assert_eq!(got["stats"]["total"], 2);
    assert_eq!(app.get(&format!("/campaigns/{id}"), None).await.0, 401);
    assert_eq!(app.get("/campaigns/cmp_000000000000ffffffff", Some(API_KEY)).await.0, 404);

    let (status, started) = post(&app, &format!("/campaigns/{id}/start"), json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!((started["message"].as_str(), started["totalRecipients"].as_u64()), (Some("Campaign started"), Some(2)));
    assert_eq!(post(&app, &format!("/campaigns/{id}/start"), json!({})).await.0, 409);
    let (status, paused) = post(&app, &format!("/campaigns/{id}/pause"), json!({"reason": "wrong city"})).await;
    assert_eq!((status, paused["message"].as_str()), (200, Some("Campaign paused")));
    assert_eq!(paused["campaign"]["stateReason"], "operator: wrong city");
    assert_eq!(post(&app, &format!("/campaigns/{id}/resume"), json!({})).await.0, 200);
    assert_eq!(post(&app, &format!("/campaigns/{id}/cancel"), json!({})).await.0, 200);
    let (status, refused) = post(&app, &format!("/campaigns/{id}/start"), json!({})).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("invalid_state")), "{refused}");
    assert_eq!(upload(&app, &id, "phone\n9876500000\n".into()).await.0, 409);
    let (_, got) = app.get(&format!("/campaigns/{id}"), Some(API_KEY)).await;
    assert_eq!(got["counts"]["sms"]["cancelled"], 2);

    let (_, feed) = app.get("/comms/events?limit=1000", Some(API_KEY)).await;
    let kinds: Vec<&str> = feed["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["campaign.created", "campaign.started", "campaign.paused", "campaign.resumed", "campaign.cancelled"] {
        assert!(kinds.contains(&kind), "{kind} not in {kinds:?}");
    }

    for (body, field) in [
        (json!({"name": "x", "type": "holi", "phone_numbers": []}), "type"),
        (json!({"name": "x", "type": "diwali", "channel": "fax"}), "channel"),
        (json!({"name": "x", "type": "diwali", "language": "fr"}), "language"),
        (json!({"type": "diwali"}), "name"),
        (json!({"name": "x", "type": "diwali", "schedule": {"start_at": "soon"}}), "schedule.start_at"),
        (json!({"name": "x", "type": "diwali", "pacing": {"smsPerSecond": 0}}), "pacing.smsPerSecond"),
    ] {
        let (status, err) = post(&app, "/campaigns/create", body).await;
        assert_eq!((status, err["error"]["field"].as_str()), (400, Some(field)), "{err}");
    }

    let (status, list) = app.get("/campaigns?status=cancelled&type=area_launch", Some(API_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!((list["total"].as_u64(), list["campaigns"][0]["id"].as_str()), (Some(1), Some(id.as_str())));
    assert_eq!(app.get("/campaigns?status=done", Some(API_KEY)).await.0, 400);
    app.stop().await;
}

#[tokio::test]
async fn custom_templates_join_the_book_and_campaigns_can_use_them() {
    let app = TestApp::start(&[]).await;
    let (status, list) = app.get("/campaigns/templates/list", Some(API_KEY)).await;
    assert_eq!(status, 200);
    let before = list["total"].as_u64().unwrap();
    let types: Vec<&str> = list["templates"].as_array().unwrap().iter().filter_map(|t| t["type"].as_str()).collect();
    for built_in in ["area_launch", "free_delivery", "diwali", "rakhi", "inactive_user", "vendor_invite"] {
        assert!(types.contains(&built_in), "{built_in} not in {types:?}");
    }
    let diwali = list["templates"].as_array().unwrap().iter().find(|t| t["type"] == "diwali").unwrap();
    assert_eq!(diwali["channels"], json!(["sms", "voice"]));
    assert_eq!(diwali["languages"], json!(["hi", "en", "mr"]));
    assert_eq!(diwali["category"], "promotional");

    let holi = json!({
        "key": "holi_offer",
        "category": "promotional",
        "description": "Holi colours delivered",
        "variables": ["city", "opt_out"],
        "texts": {"en": {"sms": "Holi colours now in {#var#}. STOP: missed call {#var#}", "voice": "Holi colours are here.",
                         "dlt_template_id": "1107160000000000042"}}
    });
    let (status, saved) = post(&app, "/campaigns/templates", holi).await;
    assert_eq!(status, 201, "{saved}");
    let (_, list) = app.get("/campaigns/templates/list", Some(API_KEY)).await;
    assert_eq!(list["total"].as_u64(), Some(before + 1));
    let id = create(&app, json!({"name": "Holi", "type": "holi_offer", "language": "en"})).await;
    let (status, err) =
        post(&app, "/campaigns/create", json!({"name": "Holi", "type": "holi_offer", "language": "hi"})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("language")));
    assert!(id.starts_with("cmp_"));

    let bad = json!({"key": "diwali", "category": "promotional", "texts": {"en": {"sms": "x", "voice": "y"}}});
    assert_eq!(post(&app, "/campaigns/templates", bad).await.1["error"]["field"], "key");
    let bad = json!({"key": "x1", "category": "promotional", "variables": [], "texts": {"en": {"sms": "a {#var#}", "voice": "y"}}});
    assert_eq!(post(&app, "/campaigns/templates", bad).await.1["error"]["field"], "texts");
    let bad = json!({"key": "x2", "category": "spam", "texts": {}});
    assert_eq!(post(&app, "/campaigns/templates", bad).await.1["error"]["field"], "category");
    app.stop().await;
}

/// 20,000 rows through the streamed intake, with bad and repeated rows, and
/// the export of every recipient's outcome.
#[tokio::test]
async fn a_csv_upload_adds_the_good_rows_lists_the_bad_ones_and_exports_back() {
    let app = TestApp::start(&[]).await;
    let id = create(&app, json!({"name": "Big", "type": "free_delivery", "channel": "sms"})).await;
    let mut csv = String::from("phone,name,language,city\r\n");
    for i in 0..20_000u64 {
        match i {
            100 => csv.push_str("not-a-number,Bad,hi,Pune\r\n"),
            200 => csv.push_str("9800000000,Bad lang,fr,Pune\r\n"),
            _ if i % 1000 == 999 => csv.push_str(&format!("98{:08},Again,,Nashik\r\n", i - 1)),
            _ => csv.push_str(&format!("98{i:08},\"Name, {i}\",mr,Nashik\r\n")),
        }
    }
    let (status, report) = upload(&app, &id, csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows"], 20_000);
    assert_eq!(report["invalid"], 2);
    assert_eq!(report["duplicates"], 20);
    assert_eq!(report["accepted"], 20_000 - 22);
    assert_eq!(report["totalRecipients"], 20_000 - 22);
    assert_eq!(report["errors"][0]["line"], 102);
    assert!(report["errors"][0]["reason"].as_str().unwrap().starts_with("phone:"));
    assert_eq!(report["errors"][1]["line"], 202);

    let (status, bad) = upload(&app, &id, "name,city\nx,y\n".into()).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_csv")));
    let res = app
        .http
        .post(format!("{}/campaigns/{id}/recipients", app.base))
        .header("X-API-Key", API_KEY)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);

    let res = app
        .http
        .get(format!("{}/campaigns/{id}/recipients.csv", app.base))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "seq,phone,name,language,sms_state,sms_attempts,sms_provider_sid,sms_last_error,sms_updated_at"
    );
    assert_eq!(lines.len(), 1 + 20_000 - 22);
    assert!(lines[1].starts_with("1,+919800000000,\"Name, 0\",mr,queued,0,,,"), "{}", lines[1]);
    app.stop().await;
}

/// Live mode's settings, pointing at nothing that answers: these tests
/// never get as far as sending.
fn live(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = vec![
        ("EXOTEL_SID", "mangwale1"),
        ("EXOTEL_API_KEY", "key"),
        ("EXOTEL_API_TOKEN", "token"),
        ("EXOTEL_API_URL", "http://127.0.0.1:9"),
        ("EXOTEL_CALLER_ID", "08047112233"),
        ("JUPITER_URL", "http://127.0.0.1:9"),
        ("JUPITER_WEBHOOK_SECRET", "a-long-webhook-secret-0001"),
        ("PUBLIC_BASE_URL", "https://exotel.mangwale.test"),
    ];
    vars.extend_from_slice(extra);
    vars
}

#[tokio::test]
async fn live_mode_refuses_to_start_a_campaign_whose_sms_lack_dlt_registration() {
    let app = TestApp::start(&live(&[])).await;
    let sms = create(
        &app,
        json!({"name": "Launch", "type": "area_launch", "channel": "sms",
                                  "phone_numbers": ["+919876543210"], "language": "hi"}),
    )
    .await;
    let (status, body) = post(&app, &format!("/campaigns/{sms}/start"), json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "not_sendable");
    assert_eq!(body["error"]["field"], "EXOTEL_DLT_ENTITY_ID", "{body}");
    // A voice campaign needs no DLT registration.
    let voice = create(
        &app,
        json!({"name": "Launch call", "type": "area_launch", "channel": "voice",
                                    "phone_numbers": ["+919876543210"], "language": "hi"}),
    )
    .await;
    let (status, body) = post(&app, &format!("/campaigns/{voice}/start"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;

    // Registered in Hindi only: a recipient who reads Marathi stops the start.
    let app = TestApp::start(&live(&[
        ("EXOTEL_DLT_ENTITY_ID", "1101160000000000001"),
        ("EXOTEL_SMS_SENDER_PROMOTIONAL", "880088"),
        ("EXOTEL_DLT_TEMPLATE_CAMPAIGN_AREA_LAUNCH_HI", "1107160000000000001"),
    ]))
    .await;
    let id = create(
        &app,
        json!({"name": "Launch", "type": "area_launch", "channel": "both",
                                 "phone_numbers": ["+919876543210"], "language": "hi"}),
    )
    .await;
    let (status, body) = upload(&app, &id, "phone,language\n+919876543211,mr\n".to_string()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&app, &format!("/campaigns/{id}/start"), json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "EXOTEL_DLT_TEMPLATE_CAMPAIGN_AREA_LAUNCH_MR", "{body}");
    let hindi = create(
        &app,
        json!({"name": "Launch", "type": "area_launch", "channel": "sms",
                                    "phone_numbers": ["+919876543212"], "language": "hi"}),
    )
    .await;
    let (status, body) = post(&app, &format!("/campaigns/{hindi}/start"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}
