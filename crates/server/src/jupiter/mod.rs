//! Jupiter, the order backend: the client every handler reads orders,
//! stores, riders and customers through; the webhooks it sends us; and the
//! outbox that carries what we tell it.
//!
//! With no `JUPITER_URL` (sandbox mode) the Jupiter and PHP simulator runs
//! in-process with the Nashik demo data, and the client talks to it over
//! loopback HTTP like it would to the real thing.

pub mod catalog;
pub mod events;
pub mod outbox;
pub mod resolve;
pub mod signature;

use mangwale_providers::jupiter::{JupiterClient, JupiterClientConfig};
use mangwale_sim::jupiter::{JupiterSim, JupiterSimConfig};

use crate::config::{Config, Secret};

/// The API key the sandbox's simulated Jupiter expects.
const SANDBOX_API_KEY: &str = "sandbox-jupiter-key";

#[derive(Debug, thiserror::Error)]
pub enum JupiterSetupError {
    #[error("the Jupiter simulator could not start: {0}")]
    Simulator(std::io::Error),
    #[error("JUPITER_URL: {0}")]
    Url(String),
}

pub struct Jupiter {
    pub client: JupiterClient,
    /// Where the client goes (the simulator's addresses in sandbox mode).
    pub jupiter_url: reqwest::Url,
    pub php_url: Option<reqwest::Url>,
    /// The in-process simulator (sandbox mode).
    pub sim: Option<JupiterSim>,
    /// None only when every counterpart is simulated (the configuration
    /// refuses to start otherwise): webhooks are then accepted unsigned, and
    /// `/webhooks/jupiter/health` says so.
    pub webhook_secret: Option<Secret>,
}

impl Jupiter {
    pub async fn start(config: &Config) -> Result<Self, JupiterSetupError> {
        let (client_config, sim) = match &config.jupiter_url {
            Some(url) => {
                let api_key = config.jupiter_api_key.as_ref().map(|k| k.expose().to_string()).unwrap_or_default();
                (JupiterClientConfig::new(url.clone(), config.php_backend_url.clone(), api_key), None)
            }
            None => {
                let sim = JupiterSim::start(JupiterSimConfig::new(SANDBOX_API_KEY))
                    .await
                    .map_err(JupiterSetupError::Simulator)?;
                let url = |u: String| reqwest::Url::parse(&u).map_err(|e| JupiterSetupError::Url(e.to_string()));
                let client_config = JupiterClientConfig::new(
                    url(sim.jupiter_url())?,
                    Some(url(sim.php_url())?),
                    SANDBOX_API_KEY.into(),
                );
                tracing::info!(jupiter = %sim.jupiter_url(), php = %sim.php_url(), "sandbox: simulated Jupiter and PHP backend");
                (client_config, Some(sim))
            }
        };
        Ok(Jupiter {
            jupiter_url: client_config.jupiter_url.clone(),
            php_url: client_config.php_url.clone(),
            client: JupiterClient::new(client_config),
            sim,
            webhook_secret: config.jupiter_webhook_secret.clone(),
        })
    }
}
