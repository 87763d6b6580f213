//! Dynamic batching: a model's requests wait in a bounded queue, and one worker thread runs
//! those that arrive together as one batch — up to `max_batch` rows, or `max_wait` after the
//! first of them — then hands each request its own rows of the result.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use ember::Tensor;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::oneshot;

use crate::error::{ApiError, ApiResult};

/// One request's rows: prepared input tensors (n, …), or texts for a model that reads text.
pub enum Rows {
    Tensor(Tensor),
    Texts(Vec<String>),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Tensor(t) => t.rows(),
            Rows::Texts(texts) => texts.len(),
        }
    }
}

/// How a model answers a batch: one result (n, …) per request, in order.
pub type Run = Box<dyn Fn(Vec<Rows>) -> Vec<ApiResult<Tensor>> + Send>;

#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    /// Rows merged into one batch at most (a larger request runs alone).
    pub max_batch: usize,
    /// How long the first request of a batch waits for others.
    pub max_wait: Duration,
    /// Requests waiting at most; beyond, requests are answered 503.
    pub queue: usize,
}

/// What the worker reports as it goes.
#[derive(Clone)]
pub struct BatchMetrics {
    pub queue_depth: Gauge,
    pub batch_rows: Histogram,
}

struct Job {
    rows: Rows,
    reply: oneshot::Sender<ApiResult<Tensor>>,
}

/// The queue in front of one model's worker thread. Dropping it lets the worker finish the
/// requests already queued and stop (a reloaded model gets a new one).
pub struct Batcher {
    model: String,
    sender: SyncSender<Job>,
    queue_depth: Gauge,
}

impl Batcher {
    pub fn start(model: &str, limits: BatchLimits, metrics: BatchMetrics, run: Run) -> Batcher {
        let (sender, receiver) = sync_channel(limits.queue.max(1));
        let worker_metrics = metrics.clone();
        let name = model.to_string();
        std::thread::Builder::new()
            .name(format!("model {model}"))
            .spawn(move || work(&name, receiver, limits, &worker_metrics, &run))
            .expect("the operating system refused a thread for a model's worker");
        Batcher {
            model: model.to_string(),
            sender,
            queue_depth: metrics.queue_depth,
        }
    }

    /// Queues `rows` and waits for their outputs; a full queue is a 503 at once.
    pub async fn submit(&self, rows: Rows) -> ApiResult<Tensor> {
        let (reply, answer) = oneshot::channel();
        self.queue_depth.inc();
        if let Err(e) = self.sender.try_send(Job { rows, reply }) {
            self.queue_depth.dec();
            return Err(match e {
                TrySendError::Full(_) => ApiError::busy(&self.model),
                TrySendError::Disconnected(_) => {
                    ApiError::internal(format!("model '{}' has no worker", self.model))
                }
            });
        }
        answer
            .await
            .map_err(|_| ApiError::internal(format!("model '{}' dropped a request", self.model)))?
    }
}

/// The worker: takes a first request, gathers more until the batch is full or its wait is
/// over, runs them, answers each; until every sender is gone.
fn work(
    model: &str,
    receiver: Receiver<Job>,
    limits: BatchLimits,
    metrics: &BatchMetrics,
    run: &Run,
) {
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        metrics.queue_depth.dec();
        let deadline = Instant::now() + limits.max_wait;
        let mut rows = first.rows.len();
        let mut jobs = vec![first];
        while rows < limits.max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(job) if rows + job.rows.len() > limits.max_batch => {
                    // It starts the next batch, and counts as waiting until then.
                    carried = Some(job);
                    break;
                }
                Ok(job) => {
                    metrics.queue_depth.dec();
                    rows += job.rows.len();
                    jobs.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        // A client that has gone (timed out, disconnected) needs no answer.
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        metrics
            .batch_rows
            .observe(jobs.iter().map(|j| j.rows.len()).sum::<usize>() as f64);
        let (inputs, replies): (Vec<Rows>, Vec<_>) =
            jobs.into_iter().map(|job| (job.rows, job.reply)).unzip();
        let count = replies.len();
        // A panic is a bug in a model, not the client's fault: answer 500, keep serving.
        let results = catch_unwind(AssertUnwindSafe(|| run(inputs))).unwrap_or_else(|_| {
            (0..count)
                .map(|_| Err(ApiError::internal(format!("model '{model}' failed"))))
                .collect()
        });
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// `tensors` (each (n_i, …), the same sample shape) one after the other: (Σ n_i, …).
pub fn concat_rows(tensors: &[Tensor]) -> ember::Result<Tensor> {
    let Some(first) = tensors.first() else {
        return Err(ember::Error::invalid("no rows to batch"));
    };
    let sample = &first.shape()[1..];
    let mut data = Vec::with_capacity(tensors.iter().map(|t| t.data().len()).sum());
    for t in tensors {
        if &t.shape()[1..] != sample {
            return Err(ember::Error::shape(
                "batch",
                format!("samples of shape {:?} and {sample:?}", &t.shape()[1..]),
            ));
        }
        data.extend_from_slice(t.data());
    }
    let mut shape = first.shape().to_vec();
    shape[0] = tensors.iter().map(Tensor::rows).sum();
    Tensor::new(&shape, data)
}

/// `outputs` cut back into consecutive pieces of `sizes` rows.
pub fn split_rows(outputs: &Tensor, sizes: &[usize]) -> ember::Result<Vec<Tensor>> {
    let mut start = 0;
    sizes
        .iter()
        .map(|&n| {
            let piece = outputs.slice_rows(start, start + n);
            start += n;
            piece
        })
        .collect()
}

/// Runs a function of the whole batch's inputs, or, when the batch fails, each request
/// alone, so that one request's bad input never fails the others'.
pub fn run_together(
    inputs: Vec<Rows>,
    run: impl Fn(Vec<&Rows>) -> ember::Result<Tensor>,
) -> Vec<ApiResult<Tensor>> {
    let sizes: Vec<usize> = inputs.iter().map(Rows::len).collect();
    if inputs.len() > 1 {
        if let Ok(pieces) = run(inputs.iter().collect()).and_then(|out| split_rows(&out, &sizes)) {
            return pieces.into_iter().map(Ok).collect();
        }
    }
    inputs
        .iter()
        .map(|rows| run(vec![rows]).map_err(ApiError::from_ember))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_then_split_gives_back_each_request() {
        let a = Tensor::new(&[1, 2], vec![1.0, 2.0]).unwrap();
        let b = Tensor::new(&[2, 2], vec![3.0, 4.0, 5.0, 6.0]).unwrap();
        let all = concat_rows(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(all.shape(), &[3, 2]);
        let pieces = split_rows(&all, &[1, 2]).unwrap();
        assert_eq!(pieces, vec![a, b]);
        let c = Tensor::new(&[1, 3], vec![0.0; 3]).unwrap();
        assert!(concat_rows(&[all, c]).is_err());
    }

    fn doubling() -> Run {
        Box::new(|inputs: Vec<Rows>| {
            run_together(inputs, |rows| {
                let tensors: Vec<Tensor> = rows
                    .iter()
                    .map(|r| match r {
                        Rows::Tensor(t) => Ok(t.clone()),
                        Rows::Texts(_) => Err(ember::Error::invalid("texts")),
                    })
                    .collect::<ember::Result<_>>()?;
                let mut x = concat_rows(&tensors)?;
                x.scale_in_place(2.0);
                Ok(x)
            })
        })
    }

    fn metrics() -> BatchMetrics {
        BatchMetrics {
            queue_depth: Gauge::default(),
            batch_rows: Histogram::new([1.0, 2.0, 4.0, 8.0]),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_batches_and_get_their_own_rows() {
        let limits = BatchLimits {
            max_batch: 8,
            max_wait: Duration::from_millis(50),
            queue: 64,
        };
        let m = metrics();
        let batcher = std::sync::Arc::new(Batcher::start("t", limits, m.clone(), doubling()));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move {
                let x = Tensor::new(&[1, 1], vec![i as f32]).unwrap();
                b.submit(Rows::Tensor(x)).await
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            let out = task.await.unwrap().unwrap();
            assert_eq!(out.data(), &[2.0 * i as f32]);
        }
        // A bad request in a batch fails alone.
        let (good, bad) = tokio::join!(
            batcher.submit(Rows::Tensor(Tensor::new(&[1, 1], vec![1.0]).unwrap())),
            batcher.submit(Rows::Texts(vec!["x".into()]))
        );
        assert_eq!(good.unwrap().data(), &[2.0]);
        assert_eq!(bad.unwrap_err().status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(m.queue_depth.get(), 0, "every request left the queue");
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy() {
        let limits = BatchLimits {
            max_batch: 1,
            max_wait: Duration::ZERO,
            queue: 1,
        };
        // A worker that blocks until told, so that the queue fills.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = std::sync::Mutex::new(wait);
        let run: Run = Box::new(move |inputs| {
            let _ = wait.lock().unwrap().recv();
            inputs
                .into_iter()
                .map(|_| Err(ApiError::invalid("x")))
                .collect()
        });
        let batcher = std::sync::Arc::new(Batcher::start("t", limits, metrics(), run));
        let rows = || Rows::Texts(vec!["a".into()]);
        let (b1, b2) = (batcher.clone(), batcher.clone());
        let first = tokio::spawn(async move { b1.submit(rows()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = tokio::spawn(async move { b2.submit(rows()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let third = batcher.submit(rows()).await.unwrap_err();
        assert_eq!(third.code, "queue_full");
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap_err().code, "invalid_input");
        assert_eq!(second.await.unwrap().unwrap_err().code, "invalid_input");
    }
}
