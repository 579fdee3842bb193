//! Notifications after `larder run` and `larder drill` (`[notify]`): generic JSON webhooks,
//! Slack-compatible webhooks and healthchecks-style pings. This is the one place the library
//! speaks HTTP (ureq, synchronous), and it sits after the data path: the job's [`Outcome`]
//! is final before anything is sent.
//!
//! A notification never fails a job: every request is bounded by the configured timeout and
//! retries, and a request that still fails becomes a one-line warning the caller logs.
//! Warnings name a URL only by scheme and host, since webhook and ping URLs carry their
//! secret in the path.

use std::time::Duration;

use crate::config::{NotifyConfig, NotifyOn};
use crate::format::event::EventKind;
use crate::id::SnapshotId;

/// The most of the log tail sent in one request, bytes (healthchecks.io keeps up to 100 KB
/// of a ping body; the rest of a tail is rarely read).
pub const LOG_TAIL_MAX: usize = 10 * 1024;

/// The wait before the first retry; it doubles for each further one.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// What a finished job reports.
///
/// A generic webhook receives it as a JSON object, `Content-Type: application/json`:
///
/// ```json
/// {"series": "shop-db", "what": "run", "ok": false, "host": "db1",
///  "summary": "source command `pg_dump shop` exited with status 1; no snapshot written",
///  "snapshot": null, "duration": 12.5, "bytes_read": 0, "bytes_added": 0,
///  "log_tail": "pg_dump: error: connection to server … failed\n"}
/// ```
///
/// `snapshot` is the 64-hex-digit id written (run) or restored (drill), or `null`;
/// `duration` is in seconds; `log_tail` holds at most the last [`LOG_TAIL_MAX`] bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// The series.
    pub series: String,
    /// Which job: a run or a drill.
    pub what: EventKind,
    /// Whether it succeeded (a good snapshot; a drill that passed).
    pub ok: bool,
    /// The host it ran on.
    pub host: String,
    /// One line: what was done, or the error.
    pub summary: String,
    /// The snapshot written (run) or restored (drill).
    pub snapshot: Option<SnapshotId>,
    /// Seconds the job took.
    pub duration: f64,
    /// Bytes read from the source (run) or restored (drill).
    pub bytes_read: u64,
    /// Stored bytes added (run).
    pub bytes_added: u64,
    /// The last lines of the producer's or drill command's stderr and of larder's messages.
    pub log_tail: String,
}

/// Sends the notifications `[notify]` configures for one series.
#[derive(Debug, Clone)]
pub struct Notifier {
    agent: ureq::Agent,
    webhook: Vec<String>,
    slack: Vec<String>,
    healthchecks: Option<String>,
    on: NotifyOn,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

/// One HTTP request to send.
struct Request {
    /// What it is, for a warning: `webhook`, `slack webhook`, `healthchecks ping`.
    what: &'static str,
    url: String,
    /// Content type and body; `None` sends a GET.
    body: Option<(&'static str, Vec<u8>)>,
}

impl Notifier {
    /// A notifier for `config`; `healthchecks` is the series' own ping URL, which replaces
    /// the one in `[notify]`.
    pub fn new(config: &NotifyConfig, healthchecks: Option<&str>) -> Notifier {
        let timeout = config.timeout.0;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("larder/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Notifier {
            agent,
            webhook: config.webhook.clone(),
            slack: config.slack.clone(),
            healthchecks: healthchecks
                .map(str::to_owned)
                .or_else(|| config.healthchecks.clone()),
            on: config.on,
            timeout,
            retries: config.retries,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Whether nothing is configured (no request will ever be sent).
    pub fn is_empty(&self) -> bool {
        self.webhook.is_empty() && self.slack.is_empty() && self.healthchecks.is_none()
    }

    /// Pings `<healthchecks>/start` before the job of `series`, if a ping URL is set.
    /// Returns a warning per request that failed; takes at most timeout × (retries + 1)
    /// plus the backoff between attempts (1 s, 2 s, …).
    pub fn start(&self, series: &str) -> Vec<String> {
        let Some(base) = &self.healthchecks else {
            return Vec::new();
        };
        let req = Request {
            what: "healthchecks start ping",
            url: ping_url(base, Some("start")),
            body: None,
        };
        self.send_all(series, vec![req])
    }

    /// Sends what `outcome` calls for: the healthchecks ping (the URL on success,
    /// `<url>/fail` on failure, with the summary and log tail as body), and the webhooks and
    /// Slack webhooks when `on = "always"` or the job failed. The requests go out in
    /// parallel, each bounded as for [`Notifier::start`]. Returns a warning per request that
    /// failed, naming its URL by scheme and host only.
    pub fn finish(&self, outcome: &Outcome) -> Vec<String> {
        let mut reqs = Vec::new();
        if let Some(base) = &self.healthchecks {
            let mut body = outcome.summary.clone();
            body.push('\n');
            body.push_str(tail(
                &outcome.log_tail,
                LOG_TAIL_MAX.saturating_sub(body.len()),
            ));
            reqs.push(Request {
                what: "healthchecks ping",
                url: ping_url(base, (!outcome.ok).then_some("fail")),
                body: Some(("text/plain; charset=utf-8", body.into_bytes())),
            });
        }
        if self.on == NotifyOn::Always || !outcome.ok {
            let json = webhook_payload(outcome);
            reqs.extend(self.webhook.iter().map(|url| Request {
                what: "webhook",
                url: url.clone(),
                body: Some(("application/json", json.clone())),
            }));
            let slack = serde_json::json!({ "text": slack_text(outcome) }).to_string();
            reqs.extend(self.slack.iter().map(|url| Request {
                what: "slack webhook",
                url: url.clone(),
                body: Some(("application/json", slack.clone().into_bytes())),
            }));
        }
        self.send_all(&outcome.series, reqs)
    }

    /// Sends every request, in parallel; the warnings come back in request order.
    fn send_all(&self, series: &str, reqs: Vec<Request>) -> Vec<String> {
        std::thread::scope(|s| {
            let running: Vec<_> = reqs.iter().map(|r| (r, s.spawn(|| self.send(r)))).collect();
            running
                .into_iter()
                .filter_map(|(r, h)| {
                    let failed = match h.join() {
                        Ok(Ok(())) => return None,
                        Ok(Err(why)) => why,
                        Err(_) => "the sending thread panicked".to_owned(),
                    };
                    Some(format!(
                        "{} for {series} to {} failed: {failed}",
                        r.what,
                        redact(&r.url)
                    ))
                })
                .collect()
        })
    }

    /// One request with its retries: again after a transport error, a 5xx or a 429, not
    /// after another status or for a URL that cannot be sent to. Returns why it failed, without the URL.
    fn send(&self, req: &Request) -> std::result::Result<(), String> {
        let mut wait = self.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = match &req.body {
                None => self.agent.get(&req.url).call(),
                Some((ty, body)) => self
                    .agent
                    .post(&req.url)
                    .header("Content-Type", *ty)
                    .send(body.as_slice()),
            };
            let why = match sent.map(|r| r.status().as_u16()) {
                Ok(200..=299) => return Ok(()),
                Ok(status @ (429 | 500..=599)) => format!("HTTP status {status}"),
                Ok(status) => return Err(format!("HTTP status {status} (not retried)")),
                Err(e) if permanent(&e) => return Err(self.describe(&e)),
                Err(e) => self.describe(&e),
            };
            if attempts > self.retries {
                let tries = if attempts == 1 { "attempt" } else { "attempts" };
                return Err(format!("{why} ({attempts} {tries})"));
            }
            std::thread::sleep(wait);
            wait = wait.saturating_mul(2);
        }
    }

    /// A transport error as one line that cannot contain the URL.
    fn describe(&self, e: &ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(_) => format!("timed out after {:?}", self.timeout),
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => "invalid URL".to_owned(),
            ureq::Error::RequireHttpsOnly(_) => "the URL is not https".to_owned(),
            ureq::Error::ConnectProxyFailed(_) | ureq::Error::InvalidProxyUrl => {
                "the proxy failed".to_owned()
            }
            ureq::Error::Other(_) => "request failed".to_owned(),
            ureq::Error::Io(e) => e.to_string(),
            e => e.to_string(),
        }
    }
}

/// Whether sending again cannot help: the URL itself is unusable.
fn permanent(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_)
    )
}

/// The healthchecks URL for `suffix` (`start`, `fail`; `None`: success), keeping a query
/// string such as `?create=1` at the end.
fn ping_url(base: &str, suffix: Option<&str>) -> String {
    let Some(suffix) = suffix else {
        return base.to_owned();
    };
    let (path, query) = base.split_at(base.find('?').unwrap_or(base.len()));
    format!("{}/{suffix}{query}", path.trim_end_matches('/'))
}

/// `scheme://host[:port]`, then `/…` if the URL went on: no user, path or query, which is
/// where webhook URLs keep their token.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "an invalid URL".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let more = if authority.len() < rest.len() {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
}

/// The last `max` bytes of `s` at most, starting on a character boundary.
fn tail(s: &str, max: usize) -> &str {
    let mut from = s.len().saturating_sub(max);
    while !s.is_char_boundary(from) {
        from += 1;
    }
    &s[from..]
}

/// The generic webhook body: `outcome` as JSON, its log tail cut to [`LOG_TAIL_MAX`].
fn webhook_payload(outcome: &Outcome) -> Vec<u8> {
    let capped = Outcome {
        log_tail: tail(&outcome.log_tail, LOG_TAIL_MAX).to_owned(),
        ..outcome.clone()
    };
    serde_json::to_vec(&capped).expect("an Outcome serializes: plain fields, string keys")
}

/// The Slack line: `larder run shop-db on db1: FAILED: <summary> (12.5 s)`, with Slack's
/// control characters escaped.
fn slack_text(o: &Outcome) -> String {
    let word = if o.ok { "OK" } else { "FAILED" };
    let mut facts = Vec::new();
    if let Some(id) = o.snapshot {
        facts.push(format!("snapshot {}", id.short()));
    }
    if o.bytes_read > 0 {
        let verb = if o.what == EventKind::Drill {
            "restored"
        } else {
            "read"
        };
        facts.push(format!("{} {verb}", bytes(o.bytes_read)));
    }
    if o.what == EventKind::Run && o.ok {
        facts.push(format!("{} added", bytes(o.bytes_added)));
    }
    facts.push(seconds(o.duration));
    let summary = o.summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = format!(
        "larder {} {} on {}: {word}: {summary} ({})",
        o.what.name(),
        o.series,
        o.host,
        facts.join(", ")
    );
    line.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `512 B`, `4.7 GiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `12.5 s`, `5m 12s`, `2h 03m`.
fn seconds(s: f64) -> String {
    let whole = match Duration::try_from_secs_f64(s) {
        Ok(d) if d.as_secs() >= 60 => d.as_secs(),
        _ => return format!("{:.1} s", s.max(0.0)),
    };
    if whole < 3600 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h {:02}m", whole / 3600, whole % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Span;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// A request the test server received.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        content_type: Option<String>,
        body: String,
    }

    /// A server on 127.0.0.1 answering the n-th request with `statuses[n]` (the last one
    /// repeated), recording each request.
    fn serve(statuses: &[u16]) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (statuses, log) = (statuses.to_vec(), seen.clone());
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let mut conn = BufReader::new(conn.unwrap());
                let mut line = String::new();
                conn.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap(), parts.next().unwrap());
                let (mut len, mut content_type) = (0, None);
                loop {
                    let mut h = String::new();
                    conn.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    match k.to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap(),
                        "content-type" => content_type = Some(v.trim().to_owned()),
                        _ => {}
                    }
                }
                let mut body = vec![0; len];
                conn.read_exact(&mut body).unwrap();
                log.lock().unwrap().push(Seen {
                    method: method.to_owned(),
                    path: path.to_owned(),
                    content_type,
                    body: String::from_utf8(body).unwrap(),
                });
                let status = statuses.get(n).or(statuses.last()).copied().unwrap_or(200);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                conn.get_mut().write_all(reply.as_bytes()).unwrap();
            }
        });
        (base, seen)
    }

    fn config(timeout: Duration, retries: u32) -> NotifyConfig {
        NotifyConfig {
            timeout: Span(timeout),
            retries,
            ..NotifyConfig::default()
        }
    }

    /// A notifier whose retries wait 10 ms, not seconds.
    fn notifier(config: &NotifyConfig, healthchecks: Option<&str>) -> Notifier {
        Notifier {
            backoff: Duration::from_millis(10),
            ..Notifier::new(config, healthchecks)
        }
    }

    fn outcome(ok: bool) -> Outcome {
        Outcome {
            series: "shop-db".into(),
            what: EventKind::Run,
            ok,
            host: "db1".into(),
            summary: if ok {
                "snapshot written".into()
            } else {
                "source command `pg_dump shop` exited with status 1; no snapshot written".into()
            },
            snapshot: ok.then_some(SnapshotId([0xab; 32])),
            duration: 312.5,
            bytes_read: 5 << 30,
            bytes_added: 120 << 20,
            log_tail: "pg_dump: error: connection refused\nlarder: giving up\n".into(),
        }
    }

    fn seen(log: &Arc<Mutex<Vec<Seen>>>) -> Vec<Seen> {
        log.lock().unwrap().clone()
    }

    #[test]
    fn webhook_posts_the_outcome_as_json() {
        let (base, log) = serve(&[200]);
        let mut c = config(Duration::from_secs(5), 0);
        c.webhook = vec![format!("{base}/hook/tok")];
        let n = notifier(&c, None);
        assert!(n.finish(&outcome(false)).is_empty());
        let got = seen(&log);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].method.as_str(), got[0].path.as_str()),
            ("POST", "/hook/tok")
        );
        assert_eq!(got[0].content_type.as_deref(), Some("application/json"));
        let v: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(v["series"], "shop-db");
        assert_eq!(v["what"], "run");
        assert_eq!(v["ok"], false);
        assert_eq!(v["host"], "db1");
        assert!(
            v["summary"]
                .as_str()
                .unwrap()
                .contains("exited with status 1")
        );
        assert_eq!(v["snapshot"], serde_json::Value::Null);
        assert_eq!(v["duration"], 312.5);
        assert_eq!(v["bytes_read"], 5u64 << 30);
        assert_eq!(v["bytes_added"], 120u64 << 20);
        assert_eq!(v["log_tail"], outcome(false).log_tail);
        assert_eq!(v.as_object().unwrap().len(), 10);

        let good = outcome(true);
        let v: serde_json::Value = serde_json::from_slice(&webhook_payload(&good)).unwrap();
        assert_eq!(v["snapshot"], "ab".repeat(32));
        let long = Outcome {
            log_tail: "é".repeat(LOG_TAIL_MAX),
            ..good
        };
        let v: serde_json::Value = serde_json::from_slice(&webhook_payload(&long)).unwrap();
        assert_eq!(v["log_tail"].as_str().unwrap().len(), LOG_TAIL_MAX);
    }

    #[test]
    fn webhooks_fire_on_failure_unless_always() {
        let (base, log) = serve(&[200]);
        let mut c = config(Duration::from_secs(5), 0);
        c.webhook = vec![format!("{base}/hook")];
        c.slack = vec![format!("{base}/slack")];
        assert!(notifier(&c, None).finish(&outcome(true)).is_empty());
        assert!(
            seen(&log).is_empty(),
            "on = failure sends nothing after a good run"
        );
        c.on = NotifyOn::Always;
        assert!(notifier(&c, None).finish(&outcome(true)).is_empty());
        let mut paths: Vec<String> = seen(&log).into_iter().map(|s| s.path).collect();
        paths.sort();
        assert_eq!(paths, ["/hook", "/slack"]);
    }

    #[test]
    fn slack_gets_one_readable_line() {
        let (base, log) = serve(&[200]);
        let mut c = config(Duration::from_secs(5), 0);
        c.slack = vec![format!("{base}/services/T/B/X")];
        let mut o = outcome(false);
        o.summary = "producer <pg_dump> & friends\nfailed".into();
        assert!(notifier(&c, None).finish(&o).is_empty());
        let got = seen(&log);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].content_type.as_deref(), Some("application/json"));
        let v: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        assert_eq!(
            v["text"],
            "larder run shop-db on db1: FAILED: producer &lt;pg_dump&gt; &amp; friends failed \
             (5.0 GiB read, 5m 12s)"
        );
        let ok = slack_text(&outcome(true));
        assert_eq!(
            ok,
            "larder run shop-db on db1: OK: snapshot written \
             (snapshot abababab, 5.0 GiB read, 120.0 MiB added, 5m 12s)"
        );
        assert!(ok.is_ascii());
    }

    #[test]
    fn healthchecks_pings_start_success_and_fail_with_the_log_tail() {
        let (base, log) = serve(&[200]);
        let c = NotifyConfig {
            healthchecks: Some("http://127.0.0.1:9/not-this-one".into()),
            ..config(Duration::from_secs(5), 0)
        };
        // The series' own URL replaces the one in [notify].
        let n = notifier(&c, Some(&format!("{base}/ping/uuid")));
        assert!(n.start("shop-db").is_empty());
        assert!(n.finish(&outcome(true)).is_empty());
        assert!(n.finish(&outcome(false)).is_empty());
        let got = seen(&log);
        let calls: Vec<(&str, &str)> = got
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                ("GET", "/ping/uuid/start"),
                ("POST", "/ping/uuid"),
                ("POST", "/ping/uuid/fail")
            ]
        );
        assert!(
            got[2]
                .body
                .starts_with("source command `pg_dump shop` exited")
        );
        assert!(
            got[2]
                .body
                .contains("pg_dump: error: connection refused\nlarder: giving up\n")
        );

        let huge = Outcome {
            log_tail: format!("{}THE END", "x".repeat(200_000)),
            ..outcome(false)
        };
        assert!(n.finish(&huge).is_empty());
        let body = &seen(&log)[3].body;
        assert!(
            body.len() <= LOG_TAIL_MAX && body.ends_with("THE END"),
            "{}",
            body.len()
        );
    }

    #[test]
    fn ping_urls_keep_the_query() {
        assert_eq!(
            ping_url("https://hc/u", Some("start")),
            "https://hc/u/start"
        );
        assert_eq!(ping_url("https://hc/u/", Some("fail")), "https://hc/u/fail");
        assert_eq!(
            ping_url("https://hc/key/db?create=1", Some("fail")),
            "https://hc/key/db/fail?create=1"
        );
        assert_eq!(ping_url("https://hc/u?x", None), "https://hc/u?x");
    }

    #[test]
    fn retries_after_500_until_success() {
        let (base, log) = serve(&[500, 503, 200]);
        let mut c = config(Duration::from_secs(5), 2);
        c.webhook = vec![format!("{base}/hook")];
        assert_eq!(
            notifier(&c, None).finish(&outcome(false)),
            Vec::<String>::new()
        );
        assert_eq!(seen(&log).len(), 3);

        let (base, log) = serve(&[429, 500]);
        c.webhook = vec![format!("{base}/hook")];
        let w = notifier(&c, None).finish(&outcome(false));
        assert_eq!(seen(&log).len(), 3, "one try and two retries");
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("HTTP status 500 (3 attempts)"), "{w:?}");
    }

    #[test]
    fn no_retry_after_404_and_no_url_path_in_the_warning() {
        let (base, log) = serve(&[404]);
        let mut c = config(Duration::from_secs(5), 2);
        c.slack = vec![format!("{base}/services/T0/B0/secret-token")];
        let w = notifier(&c, None).finish(&outcome(false));
        assert_eq!(seen(&log).len(), 1);
        assert_eq!(
            w,
            [format!(
                "slack webhook for shop-db to {base}/… failed: HTTP status 404 (not retried)"
            )]
        );
        assert!(!w[0].contains("secret-token"));
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        // Connections complete in the listen backlog; nothing ever replies.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ping/secret-uuid", listener.local_addr().unwrap());
        let timeout = Duration::from_millis(300);
        let n = notifier(&config(timeout, 2), Some(&url));
        let t = Instant::now();
        let w = n.start("shop-db");
        let took = t.elapsed();
        assert!(took >= timeout * 3, "{took:?}");
        assert!(took < timeout * 3 + Duration::from_secs(2), "{took:?}");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("timed out"), "{w:?}");
        assert!(w[0].contains("(3 attempts)"), "{w:?}");
        assert!(!w[0].contains("secret-uuid"), "{w:?}");
        drop(listener);
    }

    #[test]
    fn connection_refused_is_a_warning() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = config(Duration::from_secs(2), 1);
        c.webhook = vec![format!(
            "http://user:pw@127.0.0.1:{port}/hook/secret-token?k=v"
        )];
        c.slack = vec!["not a url".into()];
        let w = notifier(&c, None).finish(&outcome(false));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with(&format!(
                "webhook for shop-db to http://127.0.0.1:{port}/… failed: "
            )),
            "{w:?}"
        );
        assert!(w[0].ends_with("(2 attempts)"), "{w:?}");
        assert_eq!(
            w[1],
            "slack webhook for shop-db to an invalid URL failed: invalid URL"
        );
        for w in &w {
            assert!(!w.contains("secret-token") && !w.contains("pw") && !w.contains("k=v"));
        }
    }

    #[test]
    fn nothing_configured_sends_nothing() {
        let n = Notifier::new(&NotifyConfig::default(), None);
        assert!(n.is_empty());
        assert!(n.start("s").is_empty());
        assert!(n.finish(&outcome(false)).is_empty());
    }

    #[test]
    fn redaction_and_formatting() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T/B/X"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("https://u:p@hc-ping.com:8443"),
            "https://hc-ping.com:8443"
        );
        assert_eq!(redact("https://h?token=1"), "https://h/…");
        assert_eq!(tail("aé", 1), "");
        assert_eq!(tail("aéb", 2), "b");
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
        assert_eq!(seconds(12.34), "12.3 s");
        assert_eq!(seconds(-1.0), "0.0 s");
        assert_eq!(seconds(f64::NAN), "0.0 s");
        assert_eq!(seconds(7380.0), "2h 03m");
    }
}
