//! What `/metrics` reports, in the Prometheus exposition format (OpenMetrics text): requests
//! by route, method and status, request latency, batch sizes, queue depth and reloads.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::batch::BatchMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern (`/v2/models/{name}/infer`), not the path, so that the number of
    /// series stays bounded whatever clients send.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub model: String,
    pub outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    batch_rows: HistogramFamily<ModelLabels>,
    queue_depth: Family<ModelLabels, Gauge>,
    reloads: Family<ReloadLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 1.6 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    // 1 to 1024 rows.
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ember");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let latency = HistogramFamily::<RouteLabels>::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route",
            latency.clone(),
        );
        let batch_rows = HistogramFamily::<ModelLabels>::new_with_constructor(batch_histogram);
        registry.register(
            "batch_rows",
            "Rows a model ran together in one batch",
            batch_rows.clone(),
        );
        let queue_depth = Family::<ModelLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Requests waiting for a model's worker",
            queue_depth.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "model_reloads",
            "Model files reloaded after a change, by outcome (ok, failed)",
            reloads.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            batch_rows,
            queue_depth,
            reloads,
        }
    }

    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let route = route.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    /// The gauge and histogram a model's batcher reports to.
    pub fn batch(&self, model: &str) -> BatchMetrics {
        let labels = ModelLabels {
            model: model.to_string(),
        };
        BatchMetrics {
            queue_depth: self.queue_depth.get_or_create(&labels).clone(),
            batch_rows: self.batch_rows.get_or_create(&labels).clone(),
        }
    }

    pub fn reload(&self, model: &str, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                model: model.to_string(),
                outcome: if ok { "ok" } else { "failed" }.to_string(),
            })
            .inc();
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
