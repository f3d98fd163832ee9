//! Passwords, tokens, cookies, sessions and CSRF for the web pages.
//!
//! - Passwords: argon2id (PHC string with its own salt and parameters).
//! - Sessions live in the database; the browser holds a random 256-bit token in an
//!   HttpOnly, SameSite cookie; the database holds only its SHA-256 digest.
//! - CSRF: every form carries the session's token, compared in constant time. The login
//!   forms, before a session exists, use a double-submit cookie.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::{header, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

pub const STAFF_COOKIE: &str = "kehu_session";
pub const APP_COOKIE: &str = "kehu_app";
pub const LANG_COOKIE: &str = "kehu_lang";
pub const LOGIN_CSRF_COOKIE: &str = "kehu_login_csrf";

/// Hashes a password with argon2id and a fresh salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| format!("no random source: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash that matches no password: checked against when the staff id is unknown, so an
/// unknown id costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("kehu: no such login").unwrap_or_default())
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).expect("the operating system's random source");
    hex(&b)
}

pub fn token_digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

/// Equal strings, compared without an early exit.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of one cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// How a cookie is set.
pub struct CookieSpec<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub path: &'a str,
    /// Seconds; 0 deletes the cookie; `None` lasts for the browser session.
    pub max_age: Option<i64>,
    pub http_only: bool,
    pub same_site: &'a str,
    pub secure: bool,
}

impl CookieSpec<'_> {
    pub fn header(&self) -> HeaderValue {
        let mut s = format!(
            "{}={}; Path={}; SameSite={}",
            self.name, self.value, self.path, self.same_site
        );
        if let Some(a) = self.max_age {
            s.push_str(&format!("; Max-Age={a}"));
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if self.secure {
            s.push_str("; Secure");
        }
        HeaderValue::from_str(&s).expect("cookie values are hex or language codes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("春眠不觉晓").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("春眠不觉晓", &h));
        assert!(!verify_password("春眠不觉晓 ", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("kehu: no such login", ""));
        assert_ne!(
            hash_password("a").unwrap(),
            hash_password("a").unwrap(),
            "fresh salt"
        );
    }

    #[test]
    fn tokens_cookies_and_comparison() {
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, random_token());
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("", "") && !same("ab", "abc"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; kehu_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, "kehu_session"), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        let c = CookieSpec {
            name: "k",
            value: "v",
            path: "/",
            max_age: Some(60),
            http_only: true,
            same_site: "Lax",
            secure: false,
        }
        .header();
        assert_eq!(
            c.to_str().unwrap(),
            "k=v; Path=/; SameSite=Lax; Max-Age=60; HttpOnly"
        );
    }
}
