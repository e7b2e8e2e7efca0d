//! Who is asking: bearer JWTs (HS256 shared secret or RS256 public key) whose `sub` is a user id
//! and `role` is `user` or `admin`. Users read only their own resources; anything else answers
//! 404 exactly like an unknown id, so a token cannot probe which ids exist.

use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// `[query.auth]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `jwt` or `none` (every caller reads everything; only for loopback listeners).
    pub mode: AuthMode,
    /// HS256 shared secret (jwt mode; set this or `rs256_public_key_pem`).
    pub hs256_secret: String,
    /// RS256 public key, PEM text (jwt mode).
    pub rs256_public_key_pem: String,
    /// RS256 public key, path of a PEM file (instead of `rs256_public_key_pem`).
    pub rs256_public_key_file: String,
    /// Required `iss` claim, if set.
    pub issuer: String,
    /// Required `aud` claim, if set.
    pub audience: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    None,
    Jwt,
}

/// Claims read from a token (`exp` is required and checked).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Auth is off, or an admin token: reads everything.
    Admin,
    User(String),
}

impl Principal {
    /// Whether the caller may read resources of `user_id`.
    pub fn may_read_user(&self, user_id: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::User(u) => u == user_id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth.mode = jwt needs hs256_secret or rs256_public_key_pem")]
    NoKey,
    #[error("auth: set only one of hs256_secret, rs256_public_key_pem and rs256_public_key_file")]
    TwoKeys,
    #[error("auth.rs256_public_key_pem: {0}")]
    BadKey(String),
    #[error("auth.rs256_public_key_file {0}: {1}")]
    KeyFile(String, std::io::Error),
}

/// Checks tokens against the configured key.
pub struct Authenticator {
    verifier: Option<(DecodingKey, Validation)>,
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Result<Self, AuthConfigError> {
        if config.mode == AuthMode::None {
            return Ok(Authenticator { verifier: None });
        }
        let mut pem = config.rs256_public_key_pem.clone();
        if !config.rs256_public_key_file.is_empty() {
            if !pem.is_empty() {
                return Err(AuthConfigError::TwoKeys);
            }
            pem = std::fs::read_to_string(&config.rs256_public_key_file)
                .map_err(|e| AuthConfigError::KeyFile(config.rs256_public_key_file.clone(), e))?;
        }
        let (key, alg) = match (config.hs256_secret.is_empty(), pem.is_empty()) {
            (true, true) => return Err(AuthConfigError::NoKey),
            (false, false) => return Err(AuthConfigError::TwoKeys),
            (false, true) => (DecodingKey::from_secret(config.hs256_secret.as_bytes()), Algorithm::HS256),
            (true, false) => (
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| AuthConfigError::BadKey(e.to_string()))?,
                Algorithm::RS256,
            ),
        };
        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        if !config.issuer.is_empty() {
            validation.set_issuer(&[&config.issuer]);
        }
        if !config.audience.is_empty() {
            validation.set_audience(&[&config.audience]);
        } else {
            validation.validate_aud = false;
        }
        Ok(Authenticator { verifier: Some((key, validation)) })
    }

    /// Auth off: everyone is admin.
    pub fn disabled() -> Self {
        Authenticator { verifier: None }
    }

    pub fn enabled(&self) -> bool {
        self.verifier.is_some()
    }

    /// The caller of a request: 401 without a valid bearer token (when auth is on).
    pub fn principal(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let Some((key, validation)) = &self.verifier else { return Ok(Principal::Admin) };
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?
            .to_str()
            .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthorized("Authorization must be `Bearer <token>`".into()))?;
        let data = jsonwebtoken::decode::<Claims>(token.trim(), key, validation)
            .map_err(|e| ApiError::Unauthorized(format!("invalid token: {e}")))?;
        let c = data.claims;
        if c.sub.is_empty() {
            return Err(ApiError::Unauthorized("token has an empty sub".into()));
        }
        Ok(match c.role {
            Role::Admin => Principal::Admin,
            Role::User => Principal::User(c.sub),
        })
    }
}
