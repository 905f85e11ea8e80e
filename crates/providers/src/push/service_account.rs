//! Google service-account keys and the RS256 JWT assertion of the OAuth2
//! JWT-bearer grant (RFC 7523) that trades a key for an access token.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::json;

/// The OAuth scope FCM's v1 API requires.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Google's token endpoint, for keys whose JSON does not name one.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The longest lifetime Google accepts for an assertion, and the one we ask for.
pub const ASSERTION_LIFETIME_SECS: i64 = 3600;

/// A service-account key as Google hands it out (`{"type":
/// "service_account", "project_id", "private_key_id", "private_key",
/// "client_email", "token_uri", …}`), with its private key parsed once.
/// Clones share the key. `Debug` never shows the private key.
#[derive(Clone)]
pub struct ServiceAccountKey {
    /// The key's own project; FCM's project defaults to it.
    pub project_id: Option<String>,
    pub client_email: String,
    /// Goes into the JWT header as `kid`, so Google can pick the public key.
    pub private_key_id: String,
    /// Where the assertion is sent, and its `aud`.
    pub token_uri: String,
    signer: Arc<RsaKeyPair>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"***")
            .finish()
    }
}

/// Why a service-account key could not be used. The text never quotes the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidServiceAccount(pub String);

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccountKey {
    /// Parses the JSON text of a key file.
    pub fn from_json(text: &str) -> Result<ServiceAccountKey, InvalidServiceAccount> {
        let invalid = |m: String| InvalidServiceAccount(m);
        // serde_json's message names a line and column, never the content.
        let file: KeyFile = serde_json::from_str(text).map_err(|e| invalid(format!("not a JSON key file: {e}")))?;
        match file.kind.as_deref() {
            Some("service_account") => {}
            Some(other) => return Err(invalid(format!("\"type\" is {other:?}, expected \"service_account\""))),
            None => return Err(invalid("\"type\" is missing, expected \"service_account\"".into())),
        }
        let required = |value: Option<String>, name: &str| {
            value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| invalid(format!("\"{name}\" is missing")))
        };
        let client_email = required(file.client_email, "client_email")?;
        let private_key_id = required(file.private_key_id, "private_key_id")?;
        let pem = required(file.private_key, "private_key")?;
        let token_uri = file.token_uri.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        let token_uri = token_uri.unwrap_or_else(|| GOOGLE_TOKEN_URI.to_string());
        match url::Url::parse(&token_uri) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return Err(invalid(format!("\"token_uri\" {token_uri:?} is not an http(s) URL"))),
        }
        let signer = Arc::new(parse_private_key(&pem)?);
        let project_id = file.project_id.map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
        Ok(ServiceAccountKey { project_id, client_email, private_key_id, token_uri, signer })
    }

    /// The signed JWT of the grant: `iss` our account, `aud` the token
    /// endpoint, valid for an hour from `now`.
    pub(crate) fn assertion(&self, now: DateTime<Utc>) -> Result<String, InvalidServiceAccount> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.private_key_id});
        let iat = now.timestamp();
        let claims = json!({
            "iss": self.client_email,
            "scope": FCM_SCOPE,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME_SECS,
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.signer.public_modulus_len()];
        self.signer
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| InvalidServiceAccount("the private key cannot sign".into()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// A PEM RSA key, PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or
/// PKCS#1 (`BEGIN RSA PRIVATE KEY`).
fn parse_private_key(pem: &str) -> Result<RsaKeyPair, InvalidServiceAccount> {
    // A key pasted into an env file often keeps JSON's `\n` escapes literally.
    let pem = if !pem.contains('\n') && pem.contains("\\n") { pem.replace("\\n", "\n") } else { pem.to_string() };
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| InvalidServiceAccount("\"private_key\" is not a PEM private key".into()))?;
    let parsed = match &der {
        PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
        _ => return Err(InvalidServiceAccount("\"private_key\" is not an RSA key".into())),
    };
    parsed.map_err(|e| InvalidServiceAccount(format!("\"private_key\" is not a usable RSA key: {e}")))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use mangwale_sim::push::{TEST_PRIVATE_KEY_PEM, TEST_PUBLIC_KEY_PEM};
    use rustls_pki_types::SubjectPublicKeyInfoDer;
    use serde_json::Value;

    use super::*;

    fn key_json(private_key: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": "mangwale-test",
            "private_key_id": "kid-1",
            "private_key": private_key,
            "client_email": "push@mangwale-test.iam.gserviceaccount.com",
            "token_uri": "http://127.0.0.1:9/token",
        })
        .to_string()
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_with_googles_claims() {
        let key = ServiceAccountKey::from_json(&key_json(TEST_PRIVATE_KEY_PEM)).unwrap();
        let now = DateTime::from_timestamp(1_767_238_200, 0).unwrap();
        let jwt = key.assertion(now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        assert_eq!(decode(parts[0]), json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"}));
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], "push@mangwale-test.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "http://127.0.0.1:9/token");
        assert_eq!(claims["scope"], FCM_SCOPE);
        assert_eq!((claims["iat"].as_i64(), claims["exp"].as_i64()), (Some(1_767_238_200), Some(1_767_241_800)));
        let spki = SubjectPublicKeyInfoDer::from_pem_slice(TEST_PUBLIC_KEY_PEM.as_bytes()).unwrap();
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki.as_ref());
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).expect("a valid signature");
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_them() {
        let e = ServiceAccountKey::from_json(&key_json(
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        ))
        .unwrap_err();
        assert!(e.0.contains("private_key") && !e.0.contains("c2VjcmV0"), "{e}");
        let e = ServiceAccountKey::from_json(r#"{"type":"authorized_user"}"#).unwrap_err();
        assert!(e.0.contains("service_account"), "{e}");
        let e = ServiceAccountKey::from_json("{not json").unwrap_err();
        assert!(e.0.contains("not a JSON key file"), "{e}");
        let mut file: Value = serde_json::from_str(&key_json(TEST_PRIVATE_KEY_PEM)).unwrap();
        file.as_object_mut().unwrap().remove("client_email");
        let e = ServiceAccountKey::from_json(&file.to_string()).unwrap_err();
        assert_eq!(e.0, "\"client_email\" is missing");
    }

    #[test]
    fn literal_backslash_n_escapes_are_tolerated_and_debug_hides_the_key() {
        let flattened = TEST_PRIVATE_KEY_PEM.replace('\n', "\\n");
        let key = ServiceAccountKey::from_json(&key_json(&flattened)).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("***") && !debug.contains("BEGIN") && !debug.contains("MII"), "{debug}");
        assert_eq!(key.project_id.as_deref(), Some("mangwale-test"));
    }
}
