//! `POST /token`: Google's OAuth2 token endpoint for the JWT-bearer grant
//! (RFC 7523), checking the assertion as Google does.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::server::Reply;
use super::{Inner, IssuedToken};
use crate::clock::lock;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The longest assertion Google accepts: `exp - iat` of an hour.
const MAX_ASSERTION_SECS: i64 = 3600;
/// How far in the future `iat` may be (clock skew).
const MAX_SKEW_SECS: i64 = 300;
const TIMEFRAME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. \
                         Check your iat and exp values in the JWT claim.";

/// A refusal: status, OAuth `error`, `error_description`.
type Refusal = (u16, &'static str, String);

fn refuse((status, error, description): Refusal) -> Reply {
    let log = format!("{error}: {description}");
    Reply::refused(status, json!({"error": error, "error_description": description}), log)
}

fn invalid_grant(description: impl Into<String>) -> Refusal {
    (400, "invalid_grant", description.into())
}

pub(crate) fn grant(inner: &Inner, body: &[u8]) -> Reply {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match field("grant_type") {
        Some(JWT_BEARER) => {}
        Some(other) => return refuse((400, "unsupported_grant_type", format!("Invalid grant_type: {other}"))),
        None => return refuse((400, "invalid_request", "Missing required parameter: grant_type".into())),
    }
    let Some(assertion) = field("assertion") else {
        return refuse((400, "invalid_request", "Missing required parameter: assertion".into()));
    };
    let now = inner.now();
    let claims = match verify(inner, assertion, now) {
        Ok(claims) => claims,
        Err(refusal) => return refuse(refusal),
    };
    let lifetime = inner.config.token_lifetime;
    let mut st = lock(&inner.state);
    let token = format!("ya29.sim-{}", st.ids.next_sid());
    st.issue(IssuedToken {
        token: token.clone(),
        client_email: claims.iss,
        scopes: claims.scopes,
        issued_at: now,
        expires_at: crate::clock::add(now, lifetime),
        revoked: false,
    });
    Reply::ok(json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}))
}

pub(crate) struct Claims {
    pub iss: String,
    pub scopes: Vec<String>,
}

/// Checks the assertion's form, `alg`, `kid`, RS256 signature against the
/// configured account's public key, then `iss`, `aud`, `scope`, `iat`, `exp`.
pub(crate) fn verify(inner: &Inner, jwt: &str, now: DateTime<Utc>) -> Result<Claims, Refusal> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(invalid_grant("Invalid JWT: not three dot-separated parts"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(Value::is_object)
            .ok_or_else(|| invalid_grant("Invalid JWT: a part is not base64url JSON"))
    };
    let head = decode(header)?;
    if head["alg"].as_str() != Some("RS256") {
        return Err(invalid_grant("Invalid JWT: the algorithm must be RS256"));
    }
    // Google picks the public key by `kid`; an unknown one fails as a bad
    // signature does.
    if head.get("kid").is_some() && head["kid"].as_str() != Some(inner.config.private_key_id.as_str()) {
        return Err(invalid_grant("Invalid JWT Signature."));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid_grant("Invalid JWT Signature."))?;
    let signed = format!("{header}.{claims}");
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &inner.public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| invalid_grant("Invalid JWT Signature."))?;

    let claims = decode(claims)?;
    let text = |name: &str| claims[name].as_str().map(str::trim).filter(|v| !v.is_empty());
    if text("iss") != Some(inner.config.client_email.as_str()) {
        return Err(invalid_grant("Invalid grant: account not found"));
    }
    let token_uri = inner.token_uri();
    if text("aud") != Some(token_uri.as_str()) {
        return Err(invalid_grant(format!(
            "Invalid JWT: Failed audience check. The expected audience is {token_uri}."
        )));
    }
    let scopes: Vec<String> = text("scope").unwrap_or_default().split_whitespace().map(str::to_string).collect();
    if scopes.is_empty() {
        return Err((400, "invalid_scope", "Empty or missing scope not allowed.".into()));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err(invalid_grant(TIMEFRAME));
    };
    let now = now.timestamp();
    if exp <= now || iat > now + MAX_SKEW_SECS || exp <= iat || exp - iat > MAX_ASSERTION_SECS {
        return Err(invalid_grant(TIMEFRAME));
    }
    Ok(Claims { iss: inner.config.client_email.clone(), scopes })
}
