//! The operations console in headless Chromium against the real service on
//! a loopback port (sandbox, simulators): log in, watch a ladder appear on
//! the live board without a reload, open the order, read the analytics
//! charts, manage campaigns, retry a dead job. Screenshots of each page go
//! to `target/screenshots/`.

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, DESKTOP, PHONE, WAIT};
use chrono::Utc;
use common::{API_KEY, SimEnv, TestApp};
use mangwale_store::NewJob;
use serde_json::{Value, json};

const VENDOR: &str = "+919876543210";

fn vendor_order(order: &str) -> Value {
    json!({
        "order_id": order, "vendor_id": "V-42", "vendor_phone": VENDOR, "vendor_name": "Krishna Kirana",
        "amount": 325, "items": "Poha x1, Milk 500ml", "payment_mode": "cod", "city": "Nashik", "language": "hi"
    })
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let res =
        app.http.post(format!("{}{path}", app.base)).header("X-API-Key", API_KEY).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status < 300, "POST {path}: {status} {body}");
    body
}

/// Logs in through the form and waits for the app shell.
async fn log_in(browser: &Browser, app: &TestApp) {
    browser.goto(&format!("{}/console", app.base)).await;
    browser.fill("#api-key", API_KEY).await;
    browser.click("#login-submit").await;
    browser.wait_until("return !document.getElementById('app').hidden", WAIT).await;
}

/// Opens a page of the console and waits until it has loaded its data.
async fn open(browser: &Browser, hash: &str, page: &str) {
    browser.eval(&format!("location.hash = '{hash}'")).await;
    browser
        .wait_until(
            &format!(
                "const p = document.querySelector('#main > .page'); \
                 return p !== null && p.dataset.page === '{page}' && p.dataset.loaded === 'true'"
            ),
            WAIT,
        )
        .await;
}

async fn no_horizontal_scroll(browser: &Browser) {
    let widths = browser.eval("return [document.documentElement.scrollWidth, window.innerWidth]").await;
    let (content, window) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(content <= window, "the page scrolls sideways: {content} px of content in {window} px");
}

#[tokio::test]
async fn log_in_and_watch_a_ladder_appear_on_the_live_board() {
    let _turn = browser_support::one_at_a_time().await;
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::start(&[]).await;

    // A wrong key: the 401's message, and no cookie.
    browser.goto(&format!("{}/console", app.base)).await;
    browser.fill("#api-key", "not-the-key").await;
    browser.click("#login-submit").await;
    let error = browser.wait_for_text("#login-error", "not accepted", WAIT).await;
    assert!(error.text().await.unwrap().contains("missing or invalid credentials"));
    let cookies = browser.client().get_all_cookies().await.unwrap();
    assert!(cookies.iter().all(|c| c.name() != "mw_console"), "no session cookie: {cookies:?}");

    browser.fill("#api-key", API_KEY).await;
    browser.click("#login-submit").await;
    browser.wait_until("return !document.getElementById('app').hidden", WAIT).await;
    let cookies = browser.client().get_all_cookies().await.unwrap();
    let session = cookies.iter().find(|c| c.name() == "mw_console").expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));

    // Campaigns: one with recipients, its progress, started with its button.
    let created = post(
        &app,
        "/campaigns/create",
        json!({"name": "Diwali offers", "type": "area_launch", "channel": "sms", "language": "hi",
               "phone_numbers": ["+919800000001", "+919800000002", "+919800000003"]}),
    )
    .await;
    let campaign = created["campaignId"].as_str().unwrap().to_string();
    open(&browser, "#/campaigns", "campaigns").await;
    let row = format!("tr[data-campaign-id=\"{campaign}\"]");
    browser.wait_for(&format!("{row} .progress"), WAIT).await;
    browser.click(&format!("{row} button[data-action=start]")).await;
    browser.wait_for(&format!("{row}[data-state=running] button[data-action=pause]"), WAIT).await;

    // A new campaign from the form, its recipients from a CSV file.
    let csv = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    std::fs::write(csv.path(), "phone,name,language\n+919800000011,Asha,hi\n+919800000012,Ravi,mr\nnot-a-phone,X,hi\n")
        .unwrap();
    browser.fill("#campaign-name", "Nashik launch").await;
    browser.wait_for("#campaign-csv", WAIT).await.send_keys(&csv.path().display().to_string()).await.unwrap();
    browser.click("button[data-action=create]").await;
    browser.wait_for_text("#campaign-report", "2 recipients added", WAIT).await;
    browser.wait_for_text("#campaign-report", "line 4", WAIT).await;
    browser.wait_for_text("#campaign-list", "Nashik launch", WAIT).await;
    browser.screenshot("campaigns").await;

    // An order's timeline.
    let first = post(&app, "/comms/notify/vendor/order", vendor_order("MW-ORDER-1")).await;
    open(&browser, "#/order/MW-ORDER-1", "order").await;
    browser.wait_for_text("#timeline", "ladder.started", WAIT).await;
    browser
        .wait_for(&format!(".ladder[data-escalation-id=\"{}\"] .step", first["escalationId"].as_str().unwrap()), WAIT)
        .await;
    browser.screenshot("order").await;

    // The live board: a ladder started through the API shows up without a
    // reload.
    open(&browser, "#/board", "board").await;
    browser
        .wait_for(
            &format!("#ladders .ladder[data-escalation-id=\"{}\"]", first["escalationId"].as_str().unwrap()),
            WAIT,
        )
        .await;
    let marker = browser.eval("window.__sameDocument = 'yes'; return 1").await;
    assert_eq!(marker, json!(1));
    let started = post(&app, "/comms/notify/vendor/order", vendor_order("MW-BOARD-1")).await;
    let id = started["escalationId"].as_str().unwrap().to_string();
    let card = format!("#ladders .ladder[data-escalation-id=\"{id}\"]");
    browser.wait_for(&card, WAIT).await;
    assert_eq!(browser.eval("return window.__sameDocument").await, json!("yes"), "no reload");
    let steps = browser.eval(&format!("return document.querySelectorAll('{card} .step').length")).await;
    assert_eq!(steps.as_u64(), Some(started["steps"].as_array().unwrap().len() as u64));
    browser.wait_for(&format!("{card} .countdown"), WAIT).await;
    let prompts = browser.eval(&format!("return document.querySelectorAll('{card} .prompt').length")).await;
    assert!(prompts.as_u64().unwrap() > 0, "the steps show their prompts");
    browser.screenshot("board").await;

    // At phone width: nothing scrolls sideways.
    browser.set_size(PHONE).await;
    browser.wait_for(&card, WAIT).await;
    no_horizontal_scroll(&browser).await;
    browser.screenshot("board-phone").await;
    browser.set_size(DESKTOP).await;

    // Stop from the board (two clicks: arm, confirm): the ladder leaves it.
    browser.click(&format!("{card} button[data-action=stop]")).await;
    browser.click(&format!("{card} button[data-action=stop]")).await;
    browser.wait_gone(&card, WAIT).await;
    let ladder = app.state.store.ladder(&id).await.unwrap().unwrap();
    assert_eq!(ladder.stop_actor.as_deref(), Some("console"));

    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_analytics_page_draws_its_charts() {
    let _turn = browser_support::one_at_a_time().await;
    let Some(browser) = Browser::start().await else { return };
    // An hour ago, so that what the ladder does lies in the browser's "last 24 h".
    let env = SimEnv::builder().at(Utc::now() - chrono::Duration::hours(1)).whatsapp().start().await;
    let order = env.jupiter.data().orders[0].id.to_string();
    let (status, body) = env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    assert_eq!(status, 200, "{body}");
    env.run_jobs().await;
    // Past the ladder's deadline (540 s): it ends without an answer.
    env.tick(600).await;

    log_in(&browser, &env.app).await;
    open(&browser, "#/analytics", "analytics").await;
    for chart in ["callsPerHour", "ladderOutcomes", "responseSeconds", "missedCalls", "voiceOrders", "campaigns"] {
        browser.wait_for(&format!("svg[data-chart={chart}]"), WAIT).await;
    }
    let bars = browser
        .eval("return [...document.querySelectorAll('svg[data-chart=callsPerHour] rect.bar')].map(r => Number(r.dataset.value)).reduce((a, b) => a + b, 0)")
        .await;
    assert!(bars.as_f64().unwrap() > 0.0, "calls per hour has bars: {bars}");
    let outcomes = browser
        .eval("return [...document.querySelectorAll('svg[data-chart=ladderOutcomes] rect.bar')].map(r => Number(r.dataset.value)).reduce((a, b) => a + b, 0)")
        .await;
    assert!(outcomes.as_f64().unwrap() > 0.0, "ladder outcomes: {outcomes}");
    browser.wait_for("[data-chart=channels] svg rect.bar", WAIT).await;
    browser.screenshot("analytics").await;

    // Another range re-draws.
    browser.click("button[data-range='7d']").await;
    browser.wait_for("button.on[data-range='7d']", WAIT).await;
    browser.wait_for("svg[data-chart=callsPerHour] rect.bar", WAIT).await;
    browser.close().await;
    env.app.stop().await;
}

#[tokio::test]
async fn a_dead_job_is_retried_from_the_operations_page() {
    let _turn = browser_support::one_at_a_time().await;
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::start(&[]).await;
    let store = &app.state.store;
    let now = Utc::now();
    let kind = mangwale_server::maintenance::PRUNE_JOBS;
    store.enqueue(NewJob::new(kind, "console-dead-job", json!({}), now).max_attempts(1)).await.unwrap();
    let claimed = store.claim(&[kind.to_string()], "test", 1, Duration::from_secs(30), now).await.unwrap();
    let job = claimed.into_iter().next().expect("the job is claimed");
    store.fail(job.lease(), "the store said no (test)", None, now).await.unwrap();

    log_in(&browser, &app).await;
    open(&browser, "#/ops", "ops").await;
    let row = format!("tr[data-job-id=\"{}\"]", job.id);
    browser.wait_for_text(&row, "the store said no (test)", WAIT).await;
    browser.wait_for("#health .badge", WAIT).await;
    browser.screenshot("ops").await;
    browser.click(&format!("{row} button[data-action=retry]")).await;
    browser.wait_gone(&row, WAIT).await;
    let again = store.job_by_key("console-dead-job").await.unwrap().unwrap();
    assert_eq!(again.state.as_str(), "pending", "runnable again");
    browser.close().await;
    app.stop().await;
}
