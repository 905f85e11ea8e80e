//! The real application on 127.0.0.1:0, for the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use mangwale_server::{AppState, Config, ServeOptions};
use mangwale_store::SystemClock;
use mangwale_store::test_support::TestDb;
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

impl TestApp {
    pub async fn start(extra: &[(&str, &str)]) -> TestApp {
        let db = TestDb::sqlite().await.unwrap();
        let mut vars = vec![
            ("DATABASE_URL".to_string(), db.url.clone()),
            ("API_KEYS".to_string(), API_KEY.to_string()),
            ("EXOTEL_WEBHOOK_TOKEN".to_string(), TOKEN.to_string()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::start_with(db, vars).await
    }

    pub async fn start_with(db: TestDb, vars: Vec<(String, String)>) -> TestApp {
        Self::start_with_options(db, vars, ServeOptions { workers: false }).await
    }

    /// Starts with the background workers running, as in production.
    pub async fn start_with_workers(extra: &[(&str, &str)]) -> TestApp {
        let db = TestDb::sqlite().await.unwrap();
        let mut vars = vec![
            ("DATABASE_URL".to_string(), db.url.clone()),
            ("API_KEYS".to_string(), API_KEY.to_string()),
            ("EXOTEL_WEBHOOK_TOKEN".to_string(), TOKEN.to_string()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::start_with_options(db, vars, ServeOptions::default()).await
    }

    pub async fn start_with_options(db: TestDb, vars: Vec<(String, String)>, options: ServeOptions) -> TestApp {
        let config = Config::from_vars(vars).unwrap();
        let state = mangwale_server::prepare(config, Arc::new(SystemClock)).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
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

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.served.await.unwrap();
        self.db.cleanup().await;
    }
}

impl TestApp {
    /// `path` with the webhook token appended.
    pub fn exotel_url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}token={TOKEN}", self.base)
    }
}
