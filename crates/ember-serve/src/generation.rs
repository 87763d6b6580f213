//! Generations (chat completions, FAQ replies) and other long work (explanations) on blocking
//! threads, each tied to its request: a bounded number run at once, and a generation stops at
//! its next token once its request is gone — the client hung up, the request timed out, or
//! shutdown's grace ran out. A streamed generation's pieces go out as server-sent events.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{ApiError, ApiResult};

/// Generations running at once, chat completions, FAQ replies and explanations together; more
/// requests wait their turn (each keeps cores busy, a generation holds a key–value cache).
pub(crate) const SLOTS: usize = 4;
static GENERATIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(SLOTS);

/// What a generation asks between tokens: whether its request is still there.
#[derive(Clone)]
pub(crate) struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// An error once the request is gone; returned from `on_text`, it ends the generation.
    pub(crate) fn check(&self) -> ember::Result<()> {
        match self.0.load(Ordering::Relaxed) {
            true => Err(ember::Error::invalid("the request is gone")),
            false => Ok(()),
        }
    }
}

/// Held by the request (its handler, or the body it streams): dropping it cancels the
/// generation.
pub(crate) struct Tie(Arc<AtomicBool>);

impl Drop for Tie {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits for a free slot, then runs `work` on a blocking thread, which holds the slot until
/// `work` returns. `work` stops when its [`Cancel`] says so, which it does once the [`Tie`]
/// is dropped; a request that goes away while waiting for a slot never starts.
pub(crate) async fn start<T: Send + 'static>(
    work: impl FnOnce(Cancel) -> T + Send + 'static,
) -> ApiResult<(JoinHandle<T>, Tie)> {
    let permit = GENERATIONS
        .acquire()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let gone = Arc::new(AtomicBool::new(false));
    let cancel = Cancel(gone.clone());
    let handle = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(cancel)
    });
    Ok((handle, Tie(gone)))
}

/// [`start`], and the result once `work` is done; dropping this future cancels `work`.
pub(crate) async fn run<T: Send + 'static>(
    work: impl FnOnce(Cancel) -> T + Send + 'static,
) -> ApiResult<T> {
    let (handle, _tie) = start(work).await?;
    handle.await.map_err(|e| ApiError::internal(e.to_string()))
}

/// A streamed answer: each piece `pieces` receives (JSON text, or `[DONE]`) as one
/// server-sent event, its generation (if any) tied to the response body.
pub(crate) fn events(pieces: mpsc::Receiver<String>, tie: Option<Tie>) -> Response {
    Sse::new(Events {
        pieces,
        _generation: tie,
    })
    .into_response()
}

/// The pieces of a generation as server-sent events; the generation is tied to them.
struct Events {
    pieces: mpsc::Receiver<String>,
    /// Dropped with the response body (the client hung up, the server shut down).
    _generation: Option<Tie>,
}

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.pieces
            .poll_recv(cx)
            .map(|m| m.map(|data| Ok(Event::default().data(data))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Work that runs until it is cancelled, as a generation that never ends would.
    fn endless(cancel: Cancel) -> ember::Result<()> {
        loop {
            cancel.check()?;
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_requests_free_their_slots() {
        // More abandoned requests than slots: each one stops, so a later one still runs.
        for _ in 0..2 * SLOTS {
            let abandoned = tokio::time::timeout(Duration::from_millis(20), run(endless)).await;
            assert!(abandoned.is_err(), "the endless work timed out");
        }
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(10), run(|_| 42)).await;
        assert_eq!(answer.unwrap().unwrap(), 42);
        assert!(started.elapsed() < Duration::from_secs(5));
        // A tie dropped by a streaming body ends its work with the cancellation error.
        let (handle, tie) = start(endless).await.unwrap();
        drop(tie);
        let result = tokio::time::timeout(Duration::from_secs(10), handle).await;
        let error = result.unwrap().unwrap().unwrap_err().to_string();
        assert!(error.contains("the request is gone"), "{error}");
    }
}
