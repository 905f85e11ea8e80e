//! The real application on 127.0.0.1:0, for the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use mangwale_server::{AppState, Config, PrepareOptions, ServeOptions};
use mangwale_store::test_support::TestDb;
use mangwale_store::{Clock, SystemClock};
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
        let config = Config::from_vars(vars).unwrap();
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
