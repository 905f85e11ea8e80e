//! The real application on 127.0.0.1:0, for the integration tests.
#![allow(dead_code)]

pub mod http;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mangwale_providers::exotel::client::RetryPolicy;
use mangwale_server::{AppState, Config, PrepareOptions, ServeOptions};
use mangwale_sim::exotel::{ExotelSim, SimConfig};
use mangwale_sim::jupiter::JupiterSim;
use mangwale_sim::whatsapp::{ApprovedTemplate, WhatsAppSim, WhatsAppSimConfig};
use mangwale_store::test_support::TestDb;
use mangwale_store::{Clock, Ladder, ManualClock, SystemClock, TimelineEvent, Worker};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const API_KEY: &str = "test-api-key-0123456789";
pub const TOKEN: &str = "test-webhook-token-0123456789";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub shutdown: CancellationToken,
    pub served: tokio::task::JoinHandle<()>,
    pub db: TestDb,
}

/// How a test wants the application assembled.
pub struct Setup {
    pub vars: Vec<(String, String)>,
    pub clock: Arc<dyn Clock>,
    pub prepare: PrepareOptions,
    pub serve: ServeOptions,
    /// Keep the given database (a restart) instead of a fresh one.
    pub db: Option<TestDb>,
    /// Leave API_KEYS and EXOTEL_WEBHOOK_TOKEN unset (sandbox generates them).
    pub generated_credentials: bool,
    /// Apply the sandbox's demo defaults as `serve` does (the admin's and
    /// the order desk's virtual phones, the masking ExoPhone).
    pub demo_defaults: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            vars: Vec::new(),
            clock: Arc::new(SystemClock),
            prepare: PrepareOptions::default(),
            // Tests drive the workers themselves.
            serve: ServeOptions { workers: false },
            db: None,
            generated_credentials: false,
            demo_defaults: false,
        }
    }
}

impl TestApp {
    pub async fn start(extra: &[(&str, &str)]) -> TestApp {
        Self::start_setup(Setup {
            vars: extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Setup::default()
        })
        .await
    }

    /// Starts with the background workers running, as in production.
    pub async fn start_with_workers(extra: &[(&str, &str)]) -> TestApp {
        Self::start_setup(Setup {
            vars: extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            serve: ServeOptions::default(),
            ..Setup::default()
        })
        .await
    }

    pub async fn start_setup(setup: Setup) -> TestApp {
        let db = match setup.db {
            Some(db) => db,
            None => TestDb::sqlite().await.unwrap(),
        };
        // Bound first, so that callback URLs (the simulator's status
        // callbacks) point at this very server.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut vars =
            vec![("DATABASE_URL".to_string(), db.url.clone()), ("PUBLIC_BASE_URL".to_string(), base.clone())];
        if !setup.generated_credentials {
            vars.push(("API_KEYS".to_string(), API_KEY.to_string()));
            vars.push(("EXOTEL_WEBHOOK_TOKEN".to_string(), TOKEN.to_string()));
        }
        vars.extend(setup.vars);
        let mut config = Config::from_vars(vars).unwrap();
        if setup.demo_defaults {
            config.apply_sandbox_demo_defaults();
        }
        let state = mangwale_server::prepare_with(config, setup.clock, setup.prepare).await.unwrap();
        let shutdown = CancellationToken::new();
        let options = setup.serve;
        let served = tokio::spawn({
            let (state, shutdown) = (state.clone(), shutdown.clone());
            async move { mangwale_server::serve_with(state, listener, shutdown, options).await.unwrap() }
        });
        TestApp { base, http: reqwest::Client::new(), state, shutdown, served, db }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.header("X-API-Key", key);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// `path` with the webhook token appended.
    pub fn exotel_url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}token={TOKEN}", self.base)
    }

    /// Stops the server, keeping the database (for a restart).
    pub async fn stop_keeping_db(self) -> TestDb {
        self.shutdown.cancel();
        self.served.await.unwrap();
        self.db
    }

    pub async fn stop(self) {
        let db = self.stop_keeping_db().await;
        db.cleanup().await;
    }
}

/// The application in the sandbox on a [`ManualClock`] the test moves, with
/// the Exotel simulator (and, when asked, the WhatsApp simulator) on that
/// clock and a worker the test drains: the setup of the end-to-end tests.
pub struct SimEnv {
    pub app: TestApp,
    pub clock: Arc<ManualClock>,
    pub exotel: Arc<ExotelSim>,
    pub whatsapp: WhatsAppSim,
    pub jupiter: JupiterSim,
    /// Whether `whatsapp` runs on `clock` (else on the system clock, and
    /// [`SimEnv::tick`] leaves it alone).
    whatsapp_on_clock: bool,
    worker: Worker,
    step: Duration,
    phones_first: bool,
}

/// How a test wants its [`SimEnv`]; start it with [`SimEnvBuilder::start`].
pub struct SimEnvBuilder {
    vars: Vec<(String, String)>,
    clock: Option<Arc<ManualClock>>,
    exotel: Box<dyn FnOnce(SimConfig) -> SimConfig + Send>,
    whatsapp: Option<Option<Vec<ApprovedTemplate>>>,
    exotel_retries: Option<u32>,
    db: Option<TestDb>,
    maintenance: bool,
    step: Duration,
    phones_first: bool,
    speech: Option<mangwale_server::speech::Speech>,
    demo_defaults: bool,
}

impl SimEnv {
    pub fn builder() -> SimEnvBuilder {
        SimEnvBuilder {
            vars: Vec::new(),
            clock: None,
            exotel: Box::new(|config| config),
            whatsapp: None,
            exotel_retries: None,
            db: None,
            maintenance: false,
            step: Duration::from_secs(5),
            phones_first: false,
            speech: None,
            demo_defaults: false,
        }
    }

    /// `POST path` with the API key and a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .app
            .http
            .post(format!("{}{path}", self.app.base))
            .header("X-API-Key", API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` with the API key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.app.get(path, Some(API_KEY)).await
    }

    /// Runs the jobs due now, until none is left.
    pub async fn run_jobs(&self) {
        self.worker.run_until_idle().await.unwrap();
    }

    /// Moves every clock by `secs` in steps (5 s unless the builder said
    /// otherwise), running the due jobs and letting the simulated phones act
    /// at each step.
    pub async fn tick(&self, secs: u64) {
        for _ in 0..secs.div_ceil(self.step.as_secs()) {
            self.clock.advance(self.step);
            if self.phones_first {
                self.move_phones().await;
                self.run_jobs().await;
                // What the jobs just did may be due at once on the phones.
                self.exotel.run_due().await;
                if self.whatsapp_on_clock {
                    self.whatsapp.run_due().await;
                }
            } else {
                self.run_jobs().await;
                self.move_phones().await;
            }
            self.run_jobs().await;
        }
    }

    /// Moves the simulators on the test's clock by one step.
    async fn move_phones(&self) {
        self.exotel.advance(self.step).await;
        if self.whatsapp_on_clock {
            self.whatsapp.advance(self.step).await;
        }
    }

    /// The order's timeline, oldest first.
    pub async fn order_events(&self, order: &str) -> Vec<TimelineEvent> {
        self.app.state.store.events_for_order(order).await.unwrap()
    }

    /// The kinds of the order's timeline entries, oldest first.
    pub async fn kinds(&self, order: &str) -> Vec<String> {
        self.order_events(order).await.into_iter().map(|e| e.kind).collect()
    }

    /// The details of the order's timeline entries of `kind`, oldest first.
    pub async fn details(&self, order: &str, kind: &str) -> Vec<Value> {
        self.order_events(order).await.into_iter().filter(|e| e.kind == kind).map(|e| e.detail).collect()
    }

    /// Every timeline entry, oldest first.
    pub async fn all_events(&self) -> Vec<TimelineEvent> {
        self.app.state.store.events_after(0, 10_000).await.unwrap()
    }

    pub async fn ladder(&self, id: &str) -> Ladder {
        self.app.state.store.ladder(id).await.unwrap().expect("the ladder")
    }
}

impl SimEnvBuilder {
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.to_string(), value.to_string()));
        self
    }

    /// Starts the clocks at `at` (else now).
    pub fn at(self, at: DateTime<Utc>) -> Self {
        self.clock(Arc::new(ManualClock::new(at)))
    }

    /// Runs on `clock` (a restart keeps the clock of the run before).
    pub fn clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Changes the Exotel simulator's configuration (on the test's clock).
    pub fn exotel(mut self, change: impl FnOnce(SimConfig) -> SimConfig + Send + 'static) -> Self {
        self.exotel = Box::new(change);
        self
    }

    /// Puts the WhatsApp simulator on the test's clock.
    pub fn whatsapp(mut self) -> Self {
        self.whatsapp = Some(self.whatsapp.flatten());
        self
    }

    /// [`SimEnvBuilder::whatsapp`], approving only `templates`.
    pub fn whatsapp_templates(mut self, templates: Vec<ApprovedTemplate>) -> Self {
        self.whatsapp = Some(Some(templates));
        self
    }

    /// The Exotel client retries a request up to `max_retries` times, with
    /// its logic but without its real-time waits.
    pub fn exotel_retries(mut self, max_retries: u32) -> Self {
        self.exotel_retries = Some(max_retries);
        self
    }

    /// Keeps the given database (a restart) instead of a fresh one.
    pub fn db(mut self, db: Option<TestDb>) -> Self {
        self.db = db;
        self
    }

    /// Schedules the periodic maintenance jobs, as start-up does.
    pub fn maintenance(mut self) -> Self {
        self.maintenance = true;
        self
    }

    /// Runs with these speech engines (a recogniser double).
    pub fn speech(mut self, speech: mangwale_server::speech::Speech) -> Self {
        self.speech = Some(speech);
        self
    }

    /// The step of [`SimEnv::tick`].
    pub fn tick_step(mut self, step: Duration) -> Self {
        self.step = step;
        self
    }

    /// At each step of [`SimEnv::tick`] the simulators move before the due
    /// jobs run, so that what the jobs send carries the step's time on the
    /// phones too (by default the jobs run first and the phones catch up).
    pub fn phones_first(mut self) -> Self {
        self.phones_first = true;
        self
    }

    /// Applies the sandbox's demo defaults as `serve` does.
    pub fn demo_defaults(mut self) -> Self {
        self.demo_defaults = true;
        self
    }

    pub async fn start(self) -> SimEnv {
        let clock = self.clock.unwrap_or_else(|| Arc::new(ManualClock::new(Utc::now())));
        let whatsapp_on_clock = self.whatsapp.is_some();
        let whatsapp_sim = self.whatsapp.map(|templates| {
            let mut config = WhatsAppSimConfig::manual(clock.now());
            if let Some(templates) = templates {
                config.templates = templates;
            }
            config
        });
        let exotel_retry = self.exotel_retries.map(|max_retries| RetryPolicy {
            max_retries,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        });
        let app = TestApp::start_setup(Setup {
            vars: self.vars,
            clock: clock.clone(),
            prepare: PrepareOptions {
                exotel_sim: Some((self.exotel)(SimConfig::manual(clock.now()))),
                whatsapp_sim,
                exotel_retry,
                speech: self.speech,
                ..PrepareOptions::default()
            },
            db: self.db,
            demo_defaults: self.demo_defaults,
            ..Setup::default()
        })
        .await;
        if self.maintenance {
            mangwale_server::maintenance::schedule(&app.state).await.unwrap();
        }
        SimEnv {
            exotel: app.state.exotel.sim.clone().unwrap(),
            whatsapp: app.state.channels.whatsapp_sim.clone().unwrap(),
            jupiter: app.state.jupiter.sim.clone().unwrap(),
            worker: mangwale_server::build_worker(&app.state),
            whatsapp_on_clock,
            step: self.step,
            phones_first: self.phones_first,
            clock,
            app,
        }
    }
}
