//! The node's metrics, rendered as Prometheus text on the admin `/metrics` endpoint.
//!
//! Each node owns its own recorder (not the process-global one) so that several nodes in one
//! test process keep separate figures.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Handles on every metric a node reports.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
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
        let recorder = PrometheusBuilder::new()
            .add_global_label("node", node_id)
            .build_recorder();
        recorder.describe_gauge(
            KeyName::from_const_str("serai_catalog_version"),
            None,
            "The catalog version this node serves (catalog_meta.version).".into(),
        );
        recorder.describe_histogram(
            KeyName::from_const_str("serai_catalog_sync_delay_seconds"),
            None,
            "Seconds from a catalog version's bump in the database to its install on this node \
             (by broadcast or by polling)."
                .into(),
        );
        let handle = recorder.handle();
        let key = |name: &'static str| Key::from_static_name(name);
        Arc::new(Metrics {
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
        })
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

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
