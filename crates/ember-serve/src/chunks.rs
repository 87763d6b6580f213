//! A declared body past `--max-body-bytes` is refused at once, however it is framed: a
//! `Content-Length` is seen in the headers (see the guard in `server.rs`), a chunked body's
//! sizes only in the bytes that follow them. [`Watched`] wraps a connection and reads its
//! HTTP/1 framing as hyper reads it — header blocks, then each body by its length or chunk by
//! chunk — and trips the connection's [`Oversize`] signal when a chunk (or the chunks so far)
//! declares more than the limit, before any of its data comes. The guard then answers 413.
//! The framing is hyper's to enforce: whatever this reader cannot follow (HTTP/2, a malformed
//! line) it stops watching.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// A connection's "a chunked body declared too much" signal.
#[derive(Default)]
pub struct Oversize {
    tripped: AtomicBool,
    notify: Notify,
}

impl Oversize {
    fn trip(&self) {
        self.tripped.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Resolves once the signal is tripped (at once if it already is).
    pub async fn tripped(&self) {
        loop {
            let notified = self.notify.notified();
            if self.tripped.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// The longest header block or chunk-size line followed; past it hyper answers itself.
const MAX_LINE: usize = 1 << 20;

/// Where in a connection's HTTP/1 framing the bytes read so far end.
#[derive(Debug, PartialEq)]
enum State {
    /// In a request's header block (its bytes so far).
    Headers(Vec<u8>),
    /// In a body of known length: the bytes still to come.
    Body(u64),
    /// In a chunk-size line (its bytes so far); the body's chunks so far sum to `total`.
    Size(Vec<u8>, u64),
    /// In a chunk's data, then its CRLF: the bytes still to come.
    Data(u64, u64),
    /// In the trailer after the last chunk (the current line's bytes).
    Trailer(Vec<u8>),
    /// Not followed (HTTP/2, or framing hyper will refuse), or tripped.
    Off,
}

/// The framing reader: fed the bytes of a connection in order.
pub struct Framing {
    state: State,
    limit: u64,
}

impl Framing {
    pub fn new(limit: u64) -> Framing {
        Framing {
            state: State::Headers(Vec::new()),
            limit,
        }
    }

    /// Reads `bytes`; true when a chunked body has just declared more than the limit.
    pub fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Off => return false,
                State::Headers(seen) => {
                    let before = seen.len();
                    seen.extend_from_slice(bytes);
                    if seen.starts_with(b"PRI * HTTP/2") {
                        self.state = State::Off;
                        return false;
                    }
                    // The end of the block, looked for in the new bytes (and the 3 before).
                    let from = before.saturating_sub(3);
                    let Some(end) = find(&seen[from..], b"\r\n\r\n").map(|e| e + from) else {
                        if seen.len() > MAX_LINE {
                            self.state = State::Off;
                        }
                        return false;
                    };
                    bytes = &bytes[end + 4 - before..];
                    self.state = body_of(&seen[..end]);
                }
                State::Body(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    *left -= n;
                    if *left == 0 {
                        self.state = State::Headers(Vec::new());
                    }
                }
                State::Size(line, total) => {
                    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(bytes);
                        if line.len() > MAX_LINE {
                            self.state = State::Off;
                        }
                        return false;
                    };
                    line.extend_from_slice(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    let text = String::from_utf8_lossy(line);
                    let digits = text.split(';').next().unwrap_or("").trim();
                    let Ok(size) = u64::from_str_radix(digits, 16) else {
                        self.state = State::Off;
                        return false;
                    };
                    let total = total.saturating_add(size);
                    if total > self.limit {
                        self.state = State::Off;
                        return true;
                    }
                    self.state = match size {
                        0 => State::Trailer(Vec::new()),
                        _ => State::Data(size + 2, total),
                    };
                }
                State::Data(left, total) => {
                    let n = (*left).min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    *left -= n;
                    if *left == 0 {
                        self.state = State::Size(Vec::new(), *total);
                    }
                }
                State::Trailer(line) => {
                    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(bytes);
                        if line.len() > MAX_LINE {
                            self.state = State::Off;
                        }
                        return false;
                    };
                    let blank = line.iter().chain(&bytes[..end]).all(|&b| b == b'\r');
                    bytes = &bytes[end + 1..];
                    self.state = match blank {
                        true => State::Headers(Vec::new()),
                        false => State::Trailer(Vec::new()),
                    };
                }
            }
        }
        false
    }
}

/// What follows a header block: a chunked body, one of a declared length, or none.
fn body_of(head: &[u8]) -> State {
    let text = String::from_utf8_lossy(head);
    let mut chunked = false;
    let mut length = None;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<u64>().ok();
        }
    }
    match (chunked, length) {
        (true, _) => State::Size(Vec::new(), 0),
        (false, Some(0)) | (false, None) => State::Headers(Vec::new()),
        (false, Some(n)) => State::Body(n),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A connection whose incoming framing is watched (see the module's doc).
pub struct Watched<S> {
    inner: S,
    framing: Framing,
    oversize: Arc<Oversize>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, limit: usize, oversize: Arc<Oversize>) -> Watched<S> {
        Watched {
            inner,
            framing: Framing::new(limit as u64),
            oversize,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let this = &mut *self;
            if this.framing.feed(&buf.filled()[before..]) {
                this.oversize.trip();
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(framing: &str) -> Vec<u8> {
        format!("POST /x HTTP/1.1\r\nHost: h\r\n{framing}\r\n\r\n").into_bytes()
    }

    #[test]
    fn an_oversize_chunk_trips_at_its_size_line_byte_by_byte_too() {
        let bytes = [
            head("Transfer-Encoding: chunked"),
            b"ffffffffffffffff\r\n".to_vec(),
        ]
        .concat();
        let mut whole = Framing::new(100);
        assert!(whole.feed(&bytes));
        let mut split = Framing::new(100);
        let tripped: Vec<bool> = bytes.iter().map(|b| split.feed(&[*b])).collect();
        assert_eq!(tripped.iter().filter(|&&t| t).count(), 1);
        assert!(tripped[bytes.len() - 1], "at the line's end");
    }

    #[test]
    fn bodies_within_the_limit_and_keep_alive_requests_are_followed() {
        let mut f = Framing::new(10);
        // A 10-byte chunked body in two chunks, a trailer, then a body by length, then a
        // chunked body whose chunks together pass the limit.
        let stream = [
            head("Transfer-Encoding: chunked"),
            b"4;ext=1\r\nabcd\r\n6\r\nefghij\r\n0\r\nX-T: 1\r\n\r\n".to_vec(),
            head("Content-Length: 5"),
            b"12345".to_vec(),
            head("Transfer-Encoding: gzip, chunked"),
            b"8\r\n12345678\r\n".to_vec(),
        ]
        .concat();
        assert!(!f.feed(&stream));
        assert!(f.feed(b"3\r\n"), "8 + 3 > 10");
        // HTTP/2 and a malformed size line are hyper's to refuse: no longer followed.
        let mut h2 = Framing::new(10);
        assert!(!h2.feed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nffffffffff\r\n"));
        let mut bad = Framing::new(10);
        assert!(!bad.feed(
            &[
                head("Transfer-Encoding: chunked"),
                b"zz\r\nffff\r\n".to_vec()
            ]
            .concat()
        ));
    }
}
