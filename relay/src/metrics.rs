//! Prometheus text metrics, kept with atomics and one small map.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::Stats;

/// Latency bucket bounds in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Counters of the relay.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    deposits: AtomicU64,
    deposited_bytes: AtomicU64,
    deliveries: AtomicU64,
    rate_limited: AtomicU64,
    latency_buckets: [AtomicU64; 10],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Counts a finished request.
    pub(crate) fn record(&self, route: &'static str, status: u16, _took: Duration) {
        if status == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut r) = self.requests.lock() {
            let n = r.entry((route, status)).or_insert(0);
            *n = n.saturating_add(1);
        }
    }

    /// Counts a committed deposit of one envelope of `size` bytes for
    /// `copies` recipients.
    pub(crate) fn deposited(&self, copies: usize, size: usize, took: Duration) {
        self.deposits.fetch_add(u64::try_from(copies).unwrap_or(0), Ordering::Relaxed);
        self.deposited_bytes.fetch_add(u64::try_from(size).unwrap_or(0), Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts `n` messages handed to their recipient (a pull page or pushed
    /// frames).
    pub(crate) fn delivered(&self, n: usize) {
        self.deliveries.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The counters the dashboard samples.
    pub(crate) fn counts(&self) -> crate::status::Counts {
        crate::status::Counts {
            deposits: self.deposits.load(Ordering::Relaxed),
            deliveries: self.deliveries.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
        }
    }

    /// The Prometheus exposition text.
    pub(crate) fn render(&self, stats: &Stats, connections: usize, uptime: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP sealpost_requests_total Requests answered, by route and status.");
        let _ = writeln!(out, "# TYPE sealpost_requests_total counter");
        if let Ok(r) = self.requests.lock() {
            for ((route, status), n) in r.iter() {
                let _ = writeln!(out, "sealpost_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP sealpost_envelopes_deposited_total Envelope copies committed to mailboxes.");
        let _ = writeln!(out, "# TYPE sealpost_envelopes_deposited_total counter");
        let _ = writeln!(out, "sealpost_envelopes_deposited_total {}", load(&self.deposits));
        let _ =
            writeln!(out, "# HELP sealpost_envelope_bytes_deposited_total Bytes of envelopes committed (each once).");
        let _ = writeln!(out, "# TYPE sealpost_envelope_bytes_deposited_total counter");
        let _ = writeln!(out, "sealpost_envelope_bytes_deposited_total {}", load(&self.deposited_bytes));
        let _ =
            writeln!(out, "# HELP sealpost_messages_delivered_total Messages handed to recipients (pulled or pushed).");
        let _ = writeln!(out, "# TYPE sealpost_messages_delivered_total counter");
        let _ = writeln!(out, "sealpost_messages_delivered_total {}", load(&self.deliveries));
        let _ = writeln!(out, "# HELP sealpost_rate_limited_total Requests refused with 429 (any limit).");
        let _ = writeln!(out, "# TYPE sealpost_rate_limited_total counter");
        let _ = writeln!(out, "sealpost_rate_limited_total {}", load(&self.rate_limited));
        let _ = writeln!(out, "# HELP sealpost_deposit_commit_seconds Time from request to durable commit.");
        let _ = writeln!(out, "# TYPE sealpost_deposit_commit_seconds histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(out, "sealpost_deposit_commit_seconds_bucket{{le=\"{bound}\"}} {}", load(bucket));
        }
        let count = load(&self.latency_count);
        let _ = writeln!(out, "sealpost_deposit_commit_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = Duration::from_micros(load(&self.latency_sum_micros)).as_secs_f64();
        let _ = writeln!(out, "sealpost_deposit_commit_seconds_sum {sum}");
        let _ = writeln!(out, "sealpost_deposit_commit_seconds_count {count}");
        for (name, help, v) in [
            ("sealpost_accounts", "Accounts with a published bundle.", stats.accounts),
            ("sealpost_messages_waiting", "Messages waiting in mailboxes (one per recipient).", stats.messages),
            ("sealpost_envelopes_stored", "Envelopes stored, each once for all its recipients.", stats.envelopes),
            ("sealpost_envelope_bytes_stored", "Bytes of the stored envelopes.", stats.envelope_bytes),
            ("sealpost_one_time_prekeys", "One-time prekeys held.", stats.one_time_prekeys),
            ("sealpost_push_connections", "Open WebSocket push connections.", u64::try_from(connections).unwrap_or(0)),
            ("sealpost_uptime_seconds", "Seconds since the relay started.", uptime),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {v}");
        }
        out
    }
}
