//! The HTTP side of the live providers: one blocking reqwest client with timeouts, faults
//! classified so the poller can hold, back off or honour Retry-After, and secrets that never
//! print.

use std::fmt;
use std::io::Read;
use std::time::Duration;

/// Largest answer read from a provider; a bigger one is refused as malformed (a 48 h forecast
/// at 5-minute resolution is about 40 kB).
const MAX_BODY: u64 = 4 << 20;

/// A token or password: usable by the client, never shown. `Debug` prints `***` and there is
/// no `Display`, so it cannot slip into a message, a log line or samples.csv.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// None for an unset or empty value.
    pub fn new(s: Option<String>) -> Option<Self> {
        s.map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(Self)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What went wrong with one request. Messages name the path asked for, never the host's
/// credentials or the query (which may hold a location).
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    /// No answer in time.
    Timeout(String),
    /// Connection refused, name not resolved, TLS failure.
    Connect(String),
    /// 401 or 403: not allowed (bad token, or not in the plan).
    Auth { path: String, status: u16 },
    /// 429: throttled; wait as long as the server says, if it says.
    Throttled {
        path: String,
        retry_after: Option<Duration>,
    },
    /// Any other non-success status (5xx, 404, …).
    Status { path: String, status: u16 },
    /// An answer that is not what the API documents.
    Malformed(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Timeout(p) => write!(f, "{p}: no answer in time"),
            FetchError::Connect(m) => f.write_str(m),
            FetchError::Auth { path, status } => {
                write!(
                    f,
                    "{path}: HTTP {status} (not allowed: check the token or plan)"
                )
            }
            FetchError::Throttled { path, retry_after } => match retry_after {
                Some(d) => write!(
                    f,
                    "{path}: HTTP 429 throttled, retry after {} s",
                    d.as_secs()
                ),
                None => write!(f, "{path}: HTTP 429 throttled"),
            },
            FetchError::Status { path, status } => write!(f, "{path}: HTTP {status}"),
            FetchError::Malformed(m) => f.write_str(m),
        }
    }
}

/// How a request proves who it is.
pub enum Auth<'a> {
    None,
    /// A header carrying a token (Electricity Maps' `auth-token`).
    Header(&'static str, &'a Secret),
    /// HTTP Basic (WattTime's login).
    Basic(&'a str, &'a Secret),
    /// `Authorization: Bearer` (WattTime's data calls).
    Bearer(&'a Secret),
}

/// A client bound to one provider's base URL.
pub struct Http {
    client: reqwest::blocking::Client,
    base: String,
}

impl Http {
    /// `base` is the provider's root (the default, or `--grid-url`), without a trailing slash.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, super::GridError> {
        let base = base.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base).map_err(|e| super::GridError::BadUrl {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(super::GridError::NotHttp(base));
        }
        tls_ready();
        let mut b = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("carbontop/", env!("CARGO_PKG_VERSION")));
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        if loopback {
            // A proxy from the environment must not swallow a local test or sidecar server.
            b = b.no_proxy();
        }
        let client = b.build().map_err(|e| super::GridError::Client(chain(&e)))?;
        Ok(Self { client, base })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `base + path` with `query`; the body as text on a 2xx answer.
    pub fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        auth: Auth<'_>,
    ) -> Result<String, FetchError> {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Accept", "application/json");
        if !query.is_empty() {
            req = req.query(query);
        }
        req = match auth {
            Auth::None => req,
            Auth::Header(name, s) => req.header(name, s.expose()),
            Auth::Basic(user, s) => req.basic_auth(user, Some(s.expose())),
            Auth::Bearer(s) => req.bearer_auth(s.expose()),
        };
        let resp = req.send().map_err(|e| classify(path, &e))?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            401 | 403 => {
                return Err(FetchError::Auth {
                    path: path.into(),
                    status,
                });
            }
            429 => {
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                return Err(FetchError::Throttled {
                    path: path.into(),
                    retry_after,
                });
            }
            _ => {
                return Err(FetchError::Status {
                    path: path.into(),
                    status,
                });
            }
        }
        let mut body = Vec::new();
        resp.take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut => FetchError::Timeout(path.into()),
                _ => FetchError::Connect(format!("{path}: answer cut off: {e}")),
            })?;
        if body.len() as u64 > MAX_BODY {
            return Err(FetchError::Malformed(format!(
                "{path}: answer larger than {} MiB",
                MAX_BODY >> 20
            )));
        }
        String::from_utf8(body)
            .map_err(|_| FetchError::Malformed(format!("{path}: answer is not UTF-8")))
    }
}

/// Installs rustls' ring crypto provider for every reqwest client of the process (reqwest is
/// built with `rustls-no-provider`); installing it twice is harmless.
pub fn tls_ready() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// reqwest's error without its URL, with the causes that say what happened ("Connection refused").
fn classify(path: &str, e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout(path.into());
    }
    FetchError::Connect(format!("{path}: {}", chain(e)))
}

/// An error and its causes on one line, without the URL reqwest's outer message may carry.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        // reqwest's outer message may carry the URL; the causes say what happened.
        if !s.contains("://") && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        "request failed".into()
    } else {
        parts.join(": ")
    }
}

/// `Retry-After: 120` (seconds) or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s.min(24 * 3600)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    Some(Duration::from_secs(secs.clamp(0, 24 * 3600) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new(Some("tok-123".into())).unwrap();
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(Secret::new(Some("  ".into())), None);
        assert_eq!(Secret::new(None), None);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 5 "), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn bad_base_urls() {
        assert!(Http::new("not a url", Duration::from_secs(1)).is_err());
        let e = Http::new("ftp://127.0.0.1", Duration::from_secs(1))
            .err()
            .unwrap();
        assert_eq!(
            e,
            super::super::GridError::NotHttp("ftp://127.0.0.1".into())
        );
        let e = e.to_string();
        assert!(e.contains("only http"), "{e}");
        assert!(Http::new("http://127.0.0.1:9/", Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn refused_connection_is_a_connect_error_without_the_url() {
        // Port 9 (discard) on loopback: nothing listens there on a test machine.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let h = Http::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2)).unwrap();
        let e = h.get("/intensity", &[], Auth::None).unwrap_err();
        assert!(matches!(e, FetchError::Connect(_)), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with("/intensity: "), "{msg}");
        assert!(!msg.contains("127.0.0.1"), "{msg}");
    }

    #[test]
    fn a_server_that_never_answers_is_a_timeout() {
        // Accepted by the kernel's backlog, never answered.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let h = Http::new(&url, Duration::from_millis(300)).unwrap();
        let t = std::time::Instant::now();
        let e = h.get("/v3/forecast", &[], Auth::None).unwrap_err();
        assert_eq!(e, FetchError::Timeout("/v3/forecast".into()));
        assert!(t.elapsed() < Duration::from_secs(5));
        drop(l);
    }
}
