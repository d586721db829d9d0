//! The node's metrics, rendered as Prometheus text on the admin `/metrics` endpoint.
//!
//! Each node owns its own recorder (not the process-global one) so that several nodes in one
//! test process keep separate figures. Every metric is described in [`CATALOG`] (its `# HELP`
//! line); every histogram has buckets ([`LATENCY_BUCKETS`]), so it aggregates across nodes.

mod catalog;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub use catalog::{described, Described, Kind, CATALOG, LATENCY_BUCKETS};

/// Something to bring up to date just before each render (a gauge read off shared state).
type RenderHook = Box<dyn Fn() + Send + Sync>;

/// Handles on every metric a node reports.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    hooks: Mutex<Vec<RenderHook>>,
    /// The last readiness answer: [`UNKNOWN`], 0 (not ready) or 1 (ready).
    last_ready: AtomicU8,
    ready: Gauge,
    readiness_changes: Counter,
    /// Dirty rows waiting to be written (queued plus in flight).
    pub flush_backlog: Gauge,
    /// Seconds from the start of a flush to its commit.
    pub flush_latency: Histogram,
    pub rows_written: Counter,
    pub flush_failures: Counter,
    /// Transactions and flushes retried after 40001 or a lost connection.
    pub db_retries: Counter,
    /// Writes refused because a newer claim owns the row.
    pub fenced_writes: Counter,
    pub claims: Counter,
    /// Seconds a forwarded message took, request to answer (the added hop).
    pub forward_latency: Histogram,
    /// Age of the oldest dirty change not yet committed: what a crash would lose.
    pub oldest_unflushed: Gauge,
    /// 1 while the flush backlog is over its high-water mark (writers wait, not ready).
    pub backpressure: Gauge,
    /// Rows this node set aside into `compensation` after their retries.
    pub compensation_rows: Counter,
    /// Open `compensation` records (the whole table, every node's).
    pub compensation_open: Gauge,
    /// The catalog version this node serves.
    pub catalog_version: Gauge,
    /// Seconds from a catalog version's bump to its install on this node.
    pub catalog_sync_delay: Histogram,
}

static META: Metadata<'static> = Metadata::new("serai", Level::INFO, Some("serai"));

impl Metrics {
    pub fn new(node_id: &str) -> Arc<Metrics> {
        let mut builder = PrometheusBuilder::new()
            .add_global_label("node", node_id)
            .set_buckets(&LATENCY_BUCKETS)
            .expect("latency buckets are not empty");
        for (name, buckets) in catalog::BUCKETS_FOR {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
                .expect("buckets are not empty");
        }
        let recorder = builder.build_recorder();
        for d in CATALOG {
            let (name, help) = (KeyName::from_const_str(d.name), d.help.into());
            match d.kind {
                Kind::Counter => recorder.describe_counter(name, None, help),
                Kind::Gauge => recorder.describe_gauge(name, None, help),
                Kind::Histogram => recorder.describe_histogram(name, None, help),
            }
        }
        let handle = recorder.handle();
        let key = |name: &'static str| Key::from_static_name(name);
        let build = Key::from_parts(
            "serai_build_info",
            vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
        );
        recorder.register_gauge(&build, &META).set(1.0);
        let ready = recorder.register_gauge(&key("serai_ready"), &META);
        ready.set(0.0);
        let metrics = Arc::new(Metrics {
            process: metrics_process::Collector::default(),
            hooks: Mutex::new(Vec::new()),
            last_ready: AtomicU8::new(UNKNOWN),
            ready,
            readiness_changes: recorder
                .register_counter(&key("serai_readiness_changes_total"), &META),
            flush_backlog: recorder.register_gauge(&key("serai_flush_backlog_rows"), &META),
            flush_latency: recorder.register_histogram(&key("serai_flush_latency_seconds"), &META),
            rows_written: recorder.register_counter(&key("serai_rows_written_total"), &META),
            flush_failures: recorder.register_counter(&key("serai_flush_failures_total"), &META),
            db_retries: recorder.register_counter(&key("serai_db_retries_total"), &META),
            fenced_writes: recorder.register_counter(&key("serai_fenced_writes_total"), &META),
            claims: recorder.register_counter(&key("serai_claims_total"), &META),
            forward_latency: recorder
                .register_histogram(&key("serai_forward_latency_seconds"), &META),
            oldest_unflushed: recorder
                .register_gauge(&key("serai_persistence_oldest_unflushed_seconds"), &META),
            backpressure: recorder.register_gauge(&key("serai_persistence_backpressure"), &META),
            compensation_rows: recorder
                .register_counter(&key("serai_compensation_rows_total"), &META),
            compensation_open: recorder.register_gauge(&key("serai_compensation_open"), &META),
            catalog_version: recorder.register_gauge(&key("serai_catalog_version"), &META),
            catalog_sync_delay: recorder
                .register_histogram(&key("serai_catalog_sync_delay_seconds"), &META),
            recorder,
            handle,
        });
        spawn_upkeep(Arc::downgrade(&metrics));
        metrics
    }

    /// The gauge of active actors of one kind (`character`, `market`, …).
    pub fn active_actors(&self, kind: &'static str) -> Gauge {
        let key = Key::from_parts("serai_active_actors", vec![Label::new("kind", kind)]);
        self.recorder.register_gauge(&key, &META)
    }

    /// A counter with one label, for figures that are counted per kind or per outcome.
    pub fn counter(&self, name: &'static str, label: &'static str, value: &'static str) -> Counter {
        let key = Key::from_parts(name, vec![Label::new(label, value)]);
        self.recorder.register_counter(&key, &META)
    }

    /// A histogram without labels (seconds, by convention of its name).
    pub fn histogram(&self, name: &'static str) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_static_name(name), &META)
    }

    /// A gauge without labels.
    pub fn gauge(&self, name: &'static str) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_static_name(name), &META)
    }

    /// A counter with any labels.
    pub fn counter_with(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder
            .register_counter(&labeled(name, labels), &META)
    }

    /// A histogram with any labels (seconds, by convention of its name).
    pub fn histogram_with(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder
            .register_histogram(&labeled(name, labels), &META)
    }

    /// One database write of `op` ended after `seconds` (its retries included); `failure` is
    /// the class of its failure, `None` when the database did its part.
    pub fn db_write(&self, op: &'static str, seconds: f64, failure: Option<&'static str>) {
        self.histogram_with("serai_db_write_duration_seconds", &[("op", op)])
            .record(seconds);
        if let Some(class) = failure {
            self.counter_with(
                "serai_db_write_failures_total",
                &[("op", op), ("class", class)],
            )
            .increment(1);
        }
    }

    /// One attempt of a database write of `op` failed with an error of `class` (whether or
    /// not it is retried).
    pub fn db_error(&self, op: &'static str, class: &'static str) {
        self.counter_with("serai_db_errors_total", &[("op", op), ("class", class)])
            .increment(1);
    }

    /// One client RPC ended: its id, transport (`http`, `socket`), outcome and duration.
    pub fn rpc(&self, rpc: &str, transport: &'static str, outcome: &'static str, seconds: f64) {
        let labels = [("rpc", rpc), ("transport", transport), ("outcome", outcome)];
        self.histogram_with("serai_rpc_duration_seconds", &labels)
            .record(seconds);
    }

    /// The answer of a readiness check: sets `serai_ready` and counts a change of answer.
    pub fn observe_readiness(&self, ready: bool) {
        let now = u8::from(ready);
        self.ready.set(f64::from(now));
        let before = self.last_ready.swap(now, Ordering::AcqRel);
        if before != UNKNOWN && before != now {
            self.readiness_changes.increment(1);
        }
    }

    /// Runs `hook` before every render, e.g. to set a gauge from shared state that has no
    /// single writer.
    pub fn on_render(&self, hook: impl Fn() + Send + Sync + 'static) {
        lock(&self.hooks).push(Box::new(hook));
    }

    /// Prometheus text exposition of every metric: render hooks and process figures first.
    pub fn render(&self) -> String {
        for hook in lock(&self.hooks).iter() {
            hook();
        }
        metrics::with_local_recorder(&self.recorder, || self.process.collect());
        self.handle.render()
    }
}

/// `last_ready` before the first readiness check.
const UNKNOWN: u8 = 2;

/// How often histogram samples are folded into their buckets between scrapes (without it a
/// node nobody scrapes would keep every sample).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds histogram samples into buckets every [`UPKEEP_EVERY`] until the metrics are dropped.
fn spawn_upkeep(metrics: Weak<Metrics>) {
    let spawned = std::thread::Builder::new()
        .name("serai-metrics".into())
        .spawn(move || {
            let mut next = Instant::now() + UPKEEP_EVERY;
            loop {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                next += UPKEEP_EVERY;
                match metrics.upgrade() {
                    Some(m) => m.handle.run_upkeep(),
                    None => return,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread: histograms fold at each scrape");
    }
}

fn labeled(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, v.to_string()))
        .collect();
    Key::from_parts(name, labels)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn readiness_changes_count_flips_after_the_first_answer() {
        let m = Metrics::new("t");
        m.observe_readiness(true);
        m.observe_readiness(true);
        m.observe_readiness(false);
        m.observe_readiness(true);
        let text = m.render();
        assert_eq!(value(&text, "serai_ready"), Some(1.0));
        assert_eq!(value(&text, "serai_readiness_changes_total"), Some(2.0));
    }

    #[test]
    fn every_family_has_help_and_histograms_have_buckets() {
        let m = Metrics::new("t");
        m.db_write("settle_trade", 0.003, Some("connection"));
        m.db_error("flush", "serialization");
        m.rpc("echo", "http", "ok", 0.0001);
        let text = m.render();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert!(families.len() > 10, "{text}");
        for name in families {
            assert!(described(name).is_some(), "{name} is not in the catalog");
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no help"
            );
        }
        assert!(text.contains("# TYPE serai_rpc_duration_seconds histogram"));
        assert!(text.contains(
            "serai_db_write_duration_seconds_bucket{node=\"t\",op=\"settle_trade\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "serai_db_write_failures_total{node=\"t\",op=\"settle_trade\",class=\"connection\"} 1"
        ));
        assert!(text.contains("serai_build_info{node=\"t\",version=\""));
    }
}
