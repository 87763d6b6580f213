//! The HTTP server: routes, the guard every request passes (auth, body size, timeout, JSON
//! errors, metrics, the request log), the connection loop (slow-header timeout, graceful
//! shutdown on SIGTERM or Ctrl-C) and the thread that reloads changed model files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

use crate::batch::BatchLimits;
use crate::chunks::{Oversize, Watched};
use crate::error::{as_v2_error, ApiError, ApiResult, ErrorCode};
use crate::metrics::{Metrics, CONTENT_TYPE};
use crate::registry::Registry;
use crate::{log, openai, playground, v1, v2};

/// How `ember serve` runs; the defaults are the command line's.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub host: String,
    /// 0 picks a free port (the address is printed).
    pub port: u16,
    /// Rows one batch holds at most.
    pub max_batch: usize,
    /// How long a batch's first request waits for others.
    pub max_wait: Duration,
    /// Requests waiting per model at most; more are answered 503 with `Retry-After`.
    pub queue: usize,
    pub max_body_bytes: usize,
    /// Instances (rows, texts) one request may carry.
    pub max_instances: usize,
    /// From a request's headers to its answer.
    pub request_timeout: Duration,
    /// For a client to send a request's headers.
    pub header_timeout: Duration,
    /// Bearer token every API request must carry, when set.
    pub api_key: Option<String>,
    /// How often served files are checked for changes.
    pub reload_interval: Duration,
    /// How long requests in flight may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: 8080,
            max_batch: 64,
            max_wait: Duration::ZERO,
            queue: 1024,
            max_body_bytes: 16 << 20,
            max_instances: 1024,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            api_key: None,
            reload_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub registry: Arc<Registry>,
    max_instances: usize,
    api_key: Option<String>,
    request_timeout: Duration,
    max_body_bytes: usize,
}

impl AppState {
    /// A request of `n` instances within the limit (413 beyond).
    pub fn check_instances(&self, n: usize) -> ApiResult<()> {
        if n > self.max_instances {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_instances",
                format!(
                    "{n} instances in one request; at most {} (--max-instances)",
                    self.max_instances
                ),
            ));
        }
        if n == 0 {
            return Err(ApiError::invalid("the request holds no instances"));
        }
        Ok(())
    }
}

/// Paths anyone may read: the playground (it asks for the key itself) and health checks.
fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/" | "/playground.js" | "/playground.css" | "/v2/health/live" | "/v2/health/ready"
    )
}

/// Whether the request carries the key, compared in constant time.
fn authorized(key: &Option<String>, headers: &HeaderMap) -> bool {
    let Some(key) = key else {
        return true;
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), key.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |m| m.as_str().to_string());
    let too_large = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > state.max_body_bytes as u64);
    let response = if !is_open(&path) && !authorized(&state.api_key, request.headers()) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server needs an API key: send 'Authorization: Bearer KEY'",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    } else if let Some(declared) = too_large {
        // Refused before a byte of the body is read (a body that has no length declared
        // fails as soon as it passes the limit, by `DefaultBodyLimit`).
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the body declares {declared} bytes; at most {} (--max-body-bytes)",
                state.max_body_bytes
            ),
        )
        .into_response()
    } else if let Some(oversize) = chunked(&request) {
        // A chunked body is refused as soon as a chunk declares too much (chunks.rs).
        tokio::select! {
            response = answer(&state, next, request) => response,
            _ = oversize.tripped() => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the body's chunks declare more than {} bytes (--max-body-bytes)",
                    state.max_body_bytes
                ),
            )
            .into_response(),
        }
    } else {
        answer(&state, next, request).await
    };
    // The Open Inference Protocol has errors of its own shape, which its clients parse.
    let response = match path.starts_with("/v2") {
        true => as_v2_error(response),
        false => response,
    };
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state
        .registry
        .metrics
        .request(&route, &method, status, seconds);
    let error = response.extensions().get::<ErrorCode>().map(|c| c.0);
    log::request(&method, &path, status, seconds * 1000.0, error);
    response
}

/// The router's own refusals (no route, a wrong method) in the API's JSON error shape.
fn as_json_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<ErrorCode>().is_some()
    {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("unknown_route", "no such route".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take that method".to_string(),
        ),
        other => (
            "http_error",
            other.canonical_reason().unwrap_or("error").to_string(),
        ),
    };
    let mut fresh = ApiError::new(status, code, message).into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        fresh.headers_mut().insert(header::ALLOW, allow.clone());
    }
    fresh
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.registry.metrics.render(),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("unknown_route", "no such route (see GET /v1/models, /v2)")
}

/// The route's answer within the request timeout (503 beyond it).
async fn answer(state: &AppState, next: Next, request: Request) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => as_json_error(response),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "no answer within {:?} (the server is overloaded, or the request was sent too slowly)",
                state.request_timeout
            ),
        )
        .into_response(),
    }
}

/// A chunked request's connection signal (see chunks.rs); None for any other request.
fn chunked(request: &Request) -> Option<Arc<Oversize>> {
    let chunked = request
        .headers()
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
        });
    chunked
        .then(|| request.extensions().get::<Arc<Oversize>>().cloned())
        .flatten()
}

fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/", get(playground::index))
        .route("/playground.js", get(playground::script))
        .route("/playground.css", get(playground::style))
        .route("/metrics", get(metrics))
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::version_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::version_infer),
        )
        .route("/v1/models", get(v1::list))
        // `{name}:predict` and `{name}:explain` are one path segment: the handler splits it.
        .route("/v1/models/{target}", get(v1::status).post(v1::predict))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/chat/completions", post(crate::chat::completions))
        .route("/v1/faq/{name}/ask", post(crate::faq::ask))
        .route("/v1/recommend/{name}", post(crate::recommend::recommend))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Loads `paths` and serves them until SIGTERM or Ctrl-C; `on_listening` is told the
/// address once the server accepts connections, with each model's name, kind and source.
pub fn serve(
    paths: &[PathBuf],
    options: ServeOptions,
    on_listening: impl FnOnce(SocketAddr, &[(String, &'static str, PathBuf)]),
) -> ember::Result<()> {
    if options
        .api_key
        .as_ref()
        .is_some_and(|k| k.trim().is_empty())
    {
        // An empty key would mean no key: say so rather than serve without one.
        return Err(ember::Error::invalid(
            "the API key (--api-key or EMBER_API_KEY) is empty; give a key, or leave both unset to serve without one",
        ));
    }
    let limits = BatchLimits {
        max_batch: options.max_batch.max(1),
        max_wait: options.max_wait,
        queue: options.queue.max(1),
    };
    let registry = Arc::new(Registry::load(paths, limits, Arc::new(Metrics::new()))?);
    let state = Arc::new(AppState {
        registry: registry.clone(),
        max_instances: options.max_instances,
        api_key: options.api_key.clone(),
        request_timeout: options.request_timeout,
        max_body_bytes: options.max_body_bytes,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
        .enable_all()
        .build()
        .map_err(|e| ember::Error::invalid(format!("cannot start the server's runtime: {e}")))?;
    let address = match options.host.contains(':') {
        true => format!("[{}]:{}", options.host, options.port), // IPv6
        false => format!("{}:{}", options.host, options.port),
    };
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind((
            options.host.as_str(),
            options.port,
        )))
        .map_err(|e| ember::Error::invalid(format!("cannot listen on {address}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| ember::Error::invalid(format!("cannot listen on {address}: {e}")))?;

    // The reload thread stops as soon as `stop` is dropped, not at its next check.
    let (stop, stopped) = mpsc::channel::<()>();
    let reloader = {
        let (registry, interval) = (registry.clone(), options.reload_interval);
        std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    registry.reload_changed();
                }
            })
            .map_err(|e| ember::Error::invalid(format!("cannot start the reload thread: {e}")))?
    };

    let models: Vec<(String, &'static str, PathBuf)> = registry
        .all()
        .iter()
        .map(|m| (m.name.clone(), m.kind_name(), m.source.clone()))
        .collect();
    on_listening(local, &models);
    let auth = match options.api_key {
        Some(_) => "bearer key",
        None => "none",
    };
    log::event(
        "listening",
        &[("address", &local.to_string()), ("auth", auth)],
    );
    let app = router(state, options.max_body_bytes);
    runtime.block_on(accept_until_shutdown(listener, app, &options));
    drop(stop);
    let _ = reloader.join();
    // Drops every task left after the grace period, and with them their requests, which
    // cancels their generations; a blocking thread still busy (a long prompt is run without
    // a check) is not waited for longer than this.
    runtime.shutdown_timeout(Duration::from_secs(2));
    log::event("stopped", &[]);
    Ok(())
}

async fn accept_until_shutdown(
    listener: tokio::net::TcpListener,
    app: Router,
    options: &ServeOptions,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, say: wait a little rather than spin.
                        log::event("accept_failed", &[("error", &e.to_string())]);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // Whether a request's headers have come on this connection.
                let requested = Arc::new(AtomicBool::new(false));
                // Tripped when a chunked body declares more than the limit (chunks.rs).
                let oversize = Arc::new(Oversize::default());
                let service = {
                    let (requested, oversize) = (requested.clone(), oversize.clone());
                    TowerToHyperService::new(app.clone().map_request(move |mut r: Request<Incoming>| {
                        requested.store(true, Ordering::Relaxed);
                        r.extensions_mut().insert(oversize.clone());
                        r
                    }))
                };
                let stream = Watched::new(stream, options.max_body_bytes, oversize);
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(options.header_timeout);
                builder.http2().timer(TokioTimer::new());
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let watched = graceful.watch(connection);
                let header_timeout = options.header_timeout;
                tokio::spawn(async move {
                    // hyper times out an HTTP/1 request's headers, but not a connection
                    // silent from the start, nor one that speaks HTTP/2 and sends no
                    // request: until its first request, a connection has the header
                    // timeout to live.
                    let mut watched = std::pin::pin!(watched);
                    if tokio::time::timeout(header_timeout, watched.as_mut()).await.is_err()
                        && requested.load(Ordering::Relaxed)
                    {
                        let _ = watched.await;
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    log::event(
        "shutting_down",
        &[("grace", &format!("{:?}", options.shutdown_grace))],
    );
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(options.shutdown_grace) => {
            log::event("shutdown_forced", &[]);
        }
    }
}
