//! The operator's dashboard: the status page at `/` with its stylesheet
//! and script, and `/status.json`, the last hour of the relay's own
//! metrics sampled every `status_sample_secs` into a ring buffer. The
//! counters are the ones `/metrics` exports (the Prometheus source of
//! truth); the page needs no external service and loads nothing from
//! elsewhere (its Content-Security-Policy says so).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use hyper::Response;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use serde::Serialize;

use crate::api::{Relay, Resp};
use crate::error::ApiError;
use crate::inflight::Body;
use crate::store::Stats;

/// The page, its stylesheet and its script (relay/assets).
const PAGE: &str = include_str!("../assets/status.html");
const STYLE: &str = include_str!("../assets/status.css");
const SCRIPT: &str = include_str!("../assets/status.js");

/// Nothing but the relay's own files and `/status.json`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How far back the history goes.
const WINDOW_SECS: u64 = 3600;

/// One sample of the dashboard's series.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Sample {
    t: u64,
    deposits_per_sec: f64,
    deliveries_per_sec: f64,
    rate_limited_per_sec: f64,
    push_connections: u64,
    messages_waiting: u64,
    envelope_bytes_stored: u64,
}

/// The counters a sample turns into rates.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    /// Envelope copies committed to mailboxes.
    pub deposits: u64,
    /// Messages handed to their recipients (pulled or pushed).
    pub deliveries: u64,
    /// Requests refused with 429.
    pub rate_limited: u64,
}

/// The last hour of samples, oldest first.
pub(crate) struct History {
    samples: Mutex<VecDeque<Sample>>,
    capacity: usize,
    /// The counters and time of the previous sample.
    last: Mutex<(Counts, u64)>,
}

impl History {
    /// A history holding one hour of samples taken every `sample_secs`,
    /// counting from zero at `start` (Unix seconds).
    pub(crate) fn new(sample_secs: u64, start: u64) -> Self {
        let capacity = usize::try_from(WINDOW_SECS / sample_secs.max(1)).unwrap_or(1).max(1);
        let samples = Mutex::new(VecDeque::with_capacity(capacity));
        Self { samples, capacity, last: Mutex::new((Counts::default(), start)) }
    }

    /// Records a sample at `t` (Unix seconds, the relay's clock): rates
    /// from the counters' growth since the previous sample.
    fn record(&self, t: u64, counts: Counts, stats: &Stats, connections: usize) {
        let Ok(mut last) = self.last.lock() else { return };
        let (before, then) = *last;
        // A second sample within the same second waits for the next.
        let secs = t.saturating_sub(then);
        if secs == 0 {
            return;
        }
        *last = (counts, t);
        // Counts and seconds far below 2^52 are exact as f64.
        #[allow(clippy::cast_precision_loss, clippy::as_conversions)]
        let per_sec = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs as f64;
        let sample = Sample {
            t,
            deposits_per_sec: per_sec(counts.deposits, before.deposits),
            deliveries_per_sec: per_sec(counts.deliveries, before.deliveries),
            rate_limited_per_sec: per_sec(counts.rate_limited, before.rate_limited),
            push_connections: u64::try_from(connections).unwrap_or(u64::MAX),
            messages_waiting: stats.messages,
            envelope_bytes_stored: stats.envelope_bytes,
        };
        drop(last);
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() >= self.capacity {
                samples.pop_front();
            }
            samples.push_back(sample);
        }
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().map(|s| s.iter().copied().collect()).unwrap_or_default()
    }
}

/// Samples the relay's metrics every `status_sample_secs` until aborted.
pub(crate) async fn sample_loop(relay: Arc<Relay>) {
    let every = relay.config.status_sample_secs.max(1);
    let clock = relay.clock.clone();
    let mut next = clock.now().saturating_add(every);
    loop {
        clock.sleep_until(next).await;
        match relay.fresh_stats().await {
            Ok(stats) => {
                let counts = relay.metrics.counts();
                relay.history.record(clock.now(), counts, &stats, relay.hub.connections());
            }
            Err(e) => tracing::warn!(error = %e, "sampling the status"),
        }
        next = next.saturating_add(every);
        if next <= clock.now() {
            next = clock.now().saturating_add(every);
        }
    }
}

#[derive(Serialize)]
struct Totals {
    accounts: u64,
    messages_waiting: u64,
    envelopes_stored: u64,
    envelope_bytes_stored: u64,
    one_time_prekeys: u64,
    push_connections: u64,
}

#[derive(Serialize, Default)]
struct Series {
    t: Vec<u64>,
    deposits_per_sec: Vec<f64>,
    deliveries_per_sec: Vec<f64>,
    push_connections: Vec<u64>,
    messages_waiting: Vec<u64>,
    envelope_bytes_stored: Vec<u64>,
    rate_limited_per_sec: Vec<f64>,
}

#[derive(Serialize)]
struct Status {
    version: &'static str,
    uptime_secs: u64,
    now: u64,
    sample_secs: u64,
    totals: Totals,
    series: Series,
}

/// `GET /status.json`: the totals now and the last hour's series.
pub(crate) async fn json(relay: &Arc<Relay>) -> Result<Resp, ApiError> {
    let stats = relay.stats().await?;
    let mut series = Series::default();
    for s in relay.history.snapshot() {
        series.t.push(s.t);
        series.deposits_per_sec.push(s.deposits_per_sec);
        series.deliveries_per_sec.push(s.deliveries_per_sec);
        series.push_connections.push(s.push_connections);
        series.messages_waiting.push(s.messages_waiting);
        series.envelope_bytes_stored.push(s.envelope_bytes_stored);
        series.rate_limited_per_sec.push(s.rate_limited_per_sec);
    }
    let status = Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: relay.started.elapsed().as_secs(),
        now: relay.clock.now(),
        sample_secs: relay.config.status_sample_secs.max(1),
        totals: Totals {
            accounts: stats.accounts,
            messages_waiting: stats.messages,
            envelopes_stored: stats.envelopes,
            envelope_bytes_stored: stats.envelope_bytes,
            one_time_prekeys: stats.one_time_prekeys,
            push_connections: u64::try_from(relay.hub.connections()).unwrap_or(u64::MAX),
        },
        series,
    };
    let body = serde_json::to_vec(&status).map_err(crate::error::internal)?;
    Ok(asset(body, "application/json"))
}

/// The page's files: `/`, `/status.css`, `/status.js`.
pub(crate) fn file(name: &str) -> Option<Resp> {
    let (text, content_type) = match name {
        "" => (PAGE, "text/html; charset=utf-8"),
        "status.css" => (STYLE, "text/css; charset=utf-8"),
        "status.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    Some(asset(text.as_bytes().to_vec(), content_type))
}

fn asset(body: Vec<u8>, content_type: &'static str) -> Resp {
    let mut resp = Response::new(Body::new(body));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_turn_counters_into_rates_and_keep_one_hour() {
        let history = History::new(600, 0);
        assert_eq!(history.capacity, 6);
        let stats = Stats { messages: 3, envelope_bytes: 99, ..Stats::default() };
        let counts = |d, r| Counts { deposits: d, deliveries: r, rate_limited: d / 10 };
        history.record(0, counts(0, 0), &stats, 1);
        assert!(history.snapshot().is_empty(), "nothing within the start's second");
        history.record(600, counts(1200, 600), &stats, 2);
        history.record(600, counts(1300, 600), &stats, 2);
        assert_eq!(history.snapshot().len(), 1, "nothing within the same second");
        let first = history.snapshot()[0];
        assert_eq!(
            first,
            Sample {
                t: 600,
                deposits_per_sec: 2.0,
                deliveries_per_sec: 1.0,
                rate_limited_per_sec: 0.2,
                push_connections: 2,
                messages_waiting: 3,
                envelope_bytes_stored: 99
            }
        );
        for i in 2..=8u64 {
            history.record(600 * i, counts(1200 * i, 600), &stats, 0);
        }
        let kept = history.snapshot();
        assert_eq!(kept.iter().map(|s| s.t).collect::<Vec<_>>(), [1800, 2400, 3000, 3600, 4200, 4800]);
        assert!(kept.iter().all(|s| s.deliveries_per_sec == 0.0 && s.deposits_per_sec == 2.0));
    }
}
