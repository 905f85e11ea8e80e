//! Fresh databases for tests: a temporary SQLite file, and (when
//! `TEST_DATABASE_URL` is set) a new PostgreSQL database per test.

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::Connection;

use crate::{ConnectOptions, Result, Store, StoreError, connect};

/// A database that exists for one test.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    /// The URL of this database, to open more pools on it.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

impl TestDb {
    /// A new SQLite file in the system temporary directory.
    pub async fn sqlite() -> Result<TestDb> {
        let path = std::env::temp_dir().join(format!("mangwale-test-{}.db", uuid::Uuid::new_v4().simple()));
        let url = format!("sqlite:{}", path.display());
        let store = connect(&url, &ConnectOptions::default()).await?;
        Ok(TestDb { store, url, cleanup: Cleanup::SqliteFile(path) })
    }

    /// A new database on the server `TEST_DATABASE_URL` names, or `None` when
    /// it is not set. Databases that earlier test runs left behind (a test
    /// that panicked) are dropped once they are an hour old.
    ///
    /// Under CI (`CI` set, as every CI service sets it, and not `false`/`0`)
    /// a missing `TEST_DATABASE_URL` is an error, not a skip: a green CI run
    /// must mean the PostgreSQL tests ran.
    pub async fn postgres() -> Result<Option<TestDb>> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            if postgres_required(std::env::var("CI").ok().as_deref()) {
                return Err(StoreError::Unavailable(
                    "CI is set but TEST_DATABASE_URL is not: the PostgreSQL tests cannot be skipped under CI".into(),
                ));
            }
            return Ok(None);
        };
        let now = chrono::Utc::now().timestamp();
        let name = format!("mw_test_{now}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
        let stale: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'mw_test_%'")
            .fetch_all(&mut admin)
            .await?;
        for db in stale {
            let created = db.split('_').nth(2).and_then(|t| t.parse::<i64>().ok()).unwrap_or(now);
            if now - created > 3600 {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")))
                    .execute(&mut admin)
                    .await;
            }
        }
        // The name is generated above from digits and hex only.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut admin).await?;
        admin.close().await?;
        let url = with_database(&admin_url, &name);
        let store = connect(&url, &ConnectOptions { max_connections: 5, migrate: true }).await?;
        Ok(Some(TestDb { store, url, cleanup: Cleanup::PostgresDatabase { admin_url, name } }))
    }

    /// Closes the store and removes the database.
    pub async fn cleanup(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ =
                        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                            .execute(&mut admin)
                            .await;
                }
            }
        }
    }
}

/// Whether the value of `CI` makes PostgreSQL tests mandatory.
fn postgres_required(ci: Option<&str>) -> bool {
    ci.is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ci_makes_postgres_mandatory() {
        for ci in ["true", "1", "TRUE", "yes"] {
            assert!(super::postgres_required(Some(ci)), "{ci}");
        }
        for ci in [None, Some(""), Some("false"), Some("0")] {
            assert!(!super::postgres_required(ci), "{ci:?}");
        }
    }

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
