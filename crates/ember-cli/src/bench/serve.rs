//! `ember bench serve`: `ember serve` under load on loopback — throughput and p50 / p99
//! latency at 1, 8 and 64 keep-alive connections for the MNIST MLP (one image per request)
//! and for MiniLM embeddings, the server's memory before and after a soak, and, in the same
//! run, FastAPI + uvicorn serving the same MLP in PyTorch (bench/serve_fastapi.py).
//!
//! The load comes from this process: one thread per connection, each sending its next request
//! as soon as the last is answered (a closed loop, as wrk does). Both servers share the
//! machine's cores with it alike.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ember::Error;

use super::BenchArgs;

const CONNECTIONS: [usize; 3] = [1, 8, 64];

/// A server started for the benchmark, stopped when dropped.
struct Process {
    child: Child,
    addr: String,
}

impl Process {
    /// Starts `command` and waits for its `listening on http://ADDR` line.
    fn start(mut command: Command, what: &str) -> ember::Result<Process> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::invalid(format!("cannot start {what}: {e}")))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(addr) => Ok(Process { child, addr }),
            Err(_) => {
                let _ = child.kill();
                Err(Error::invalid(format!("{what} did not start listening")))
            }
        }
    }

    /// Resident memory, in MiB (Linux's /proc).
    fn rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGTERM first, so that uvicorn's workers stop with their parent.
        #[cfg(unix)]
        // SAFETY: signalling our own child process by its id.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 connection that sends prepared requests and reads whole answers.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    fn open(addr: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(8192),
        })
    }

    /// Sends `request` and reads the answer (its body by Content-Length); its status.
    fn call(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.stream.write_all(request)?;
        self.buffer.clear();
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let mut chunk = [0u8; 16384];
        let (head_end, length) = loop {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(bad("connection closed"));
            }
            self.buffer.extend_from_slice(&chunk[..n]);
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| bad("no content-length"))?;
                break (end + 4, length);
            }
        };
        while self.buffer.len() < head_end + length {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(bad("connection closed"));
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        let status = self
            .buffer
            .get(9..12)
            .and_then(|s| std::str::from_utf8(s).ok());
        status
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status"))
    }
}

fn post(addr: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What one load level measured.
struct Load {
    requests: usize,
    errors: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `connections` closed-loop clients for `seconds`, each cycling through `requests` from its
/// own offset; latencies of answered requests, errors counted (a non-200 or a broken
/// connection, which is then opened again).
fn load(addr: &str, connections: usize, seconds: f64, requests: &[Vec<u8>]) -> Load {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let results: Vec<(Vec<f64>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|c| {
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    let mut connection = Connection::open(addr).ok();
                    let mut i = c * 7;
                    while Instant::now() < deadline {
                        let Some(conn) = connection.as_mut() else {
                            errors += 1;
                            std::thread::sleep(Duration::from_millis(10));
                            connection = Connection::open(addr).ok();
                            continue;
                        };
                        let request = &requests[i % requests.len()];
                        i += 1;
                        let sent = Instant::now();
                        match conn.call(request) {
                            Ok(200) => latencies.push(sent.elapsed().as_secs_f64() * 1000.0),
                            Ok(_) => errors += 1,
                            Err(_) => {
                                errors += 1;
                                connection = Connection::open(addr).ok();
                            }
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = results
        .iter()
        .flat_map(|(l, _)| l.iter().copied())
        .collect();
    latencies.sort_by(f64::total_cmp);
    Load {
        requests: latencies.len(),
        errors: results.iter().map(|(_, e)| e).sum(),
        per_second: latencies.len() as f64 / wall,
        p50_ms: super::predict::percentile(&latencies, 50.0),
        p99_ms: super::predict::percentile(&latencies, 99.0),
    }
}

/// Runs each connection count after a second's warm-up; prints and returns the rows.
fn levels(
    server: &str,
    workload: &str,
    addr: &str,
    seconds: f64,
    requests: &[Vec<u8>],
) -> Vec<Load> {
    CONNECTIONS
        .iter()
        .map(|&connections| {
            load(addr, connections, 1.0, requests);
            let l = load(addr, connections, seconds, requests);
            println!(
                "| {server} | {workload} | {connections} | {:.0} | {:.3} | {:.3} | {} |",
                l.per_second, l.p50_ms, l.p99_ms, l.errors
            );
            l
        })
        .collect()
}

/// MNIST test images as single-instance `:predict` bodies (raw pixels, as both servers take).
fn mnist_bodies(data: &Path) -> ember::Result<Vec<String>> {
    let mnist = ember::Mnist::load(data)?;
    let images = &mnist.test_images;
    Ok((0..200)
        .map(|i| {
            let pixels: Vec<u8> = images.data()[i * 784..(i + 1) * 784]
                .iter()
                .map(|&v| v as u8)
                .collect();
            serde_json::json!({ "instances": [pixels] }).to_string()
        })
        .collect())
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let exe =
        std::env::current_exe().map_err(|e| Error::invalid(format!("cannot find ember: {e}")))?;
    let temp = std::env::temp_dir().join(format!("ember-bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&temp).map_err(|e| Error::io(&temp, e))?;
    let _cleanup = RemoveOnDrop(temp.clone());
    let mlp = match &args.mlp {
        Some(file) => file.clone(),
        None => {
            let file = temp.join("mnist.safetensors");
            let status = Command::new(&exe)
                .args([
                    "train",
                    "models/mnist-mlp.toml",
                    "--verbose",
                    "0",
                    "--output",
                ])
                .arg(&file)
                .stdout(Stdio::null())
                .status()
                .map_err(|e| Error::io(&exe, e))?;
            if !status.success() {
                return Err(Error::invalid("training models/mnist-mlp.toml failed"));
            }
            file
        }
    };
    let encoder: PathBuf = args
        .encoder
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/data/all-minilm-l6-v2"));
    let seconds = args.seconds as f64;
    let threads = args.threads.to_string();

    let mut command = Command::new(&exe);
    command
        .arg("serve")
        .arg(&mlp)
        .arg(&encoder)
        .args(["--port", "0", "--threads", &threads]);
    let ember_server = Process::start(command, "ember serve")?;
    let addr = ember_server.addr.clone();
    let mnist: Vec<Vec<u8>> = mnist_bodies(&args.data)?
        .iter()
        .map(|b| post(&addr, "/v1/models/mnist:predict", b))
        .collect();
    let sentences = [
        "How do I reset my password?",
        "The parcel arrived two days late and the box was damaged.",
        "Can I change the delivery address after ordering?",
        "Refunds are paid back to the card used for the purchase within five working days.",
    ];
    let name = encoder
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("all-minilm-l6-v2")
        .to_string();
    let embeddings: Vec<Vec<u8>> = sentences
        .iter()
        .map(|s| {
            let body = serde_json::json!({"model": name, "input": s}).to_string();
            post(&addr, "/v1/embeddings", &body)
        })
        .collect();
    println!(
        "ember serve {} and {} on {threads} kernel thread(s); {seconds} s per level after 1 s of warm-up; \
         the load from this process on the same {} cores",
        mlp.display(),
        encoder.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!("| server | workload | connections | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|---|");
    let ember_mnist = levels("ember serve", "MNIST MLP", &addr, seconds, &mnist);
    let ember_embed = levels(
        "ember serve",
        "MiniLM embedding",
        &addr,
        seconds,
        &embeddings,
    );

    // The soak: 64 connections of both workloads, memory before it and after each third
    // (growth that stops is the allocator settling; growth that goes on is a leak).
    let mixed: Vec<Vec<u8>> = mnist
        .iter()
        .take(7)
        .chain(embeddings.iter().take(1))
        .cloned()
        .collect();
    let mut rss = vec![ember_server.rss_mib()];
    let mut soak = Vec::new();
    for _ in 0..3 {
        soak.push(load(&addr, 64, args.soak as f64 / 3.0, &mixed));
        rss.push(ember_server.rss_mib());
    }
    drop(ember_server);

    let mut peer_mnist = None;
    if let Some(python) = &args.python {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        // uvicorn prints the port it was given: give it a free one.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::invalid(format!("no free port: {e}")))?
            .port()
            .to_string();
        let mut command = Command::new(python);
        command
            .arg("bench/serve_fastapi.py")
            .arg("--model")
            .arg(&mlp)
            .args([
                "--port",
                &port,
                "--workers",
                &workers.to_string(),
                "--threads",
                "1",
            ]);
        let peer = Process::start(command, "bench/serve_fastapi.py")?;
        let peer_requests: Vec<Vec<u8>> = mnist_bodies(&args.data)?
            .iter()
            .map(|b| post(&peer.addr, "/v1/models/mnist:predict", b))
            .collect();
        let label = format!("FastAPI + uvicorn ({workers} workers) + PyTorch");
        peer_mnist = Some(levels(
            &label,
            "MNIST MLP",
            &peer.addr,
            seconds,
            &peer_requests,
        ));
    }
    println!();
    let soak_requests: usize = soak.iter().map(|l| l.requests).sum();
    let soak_errors: usize = soak.iter().map(|l| l.errors).sum();
    println!(
        "soak: 64 connections for {} s (7 MNIST requests to 1 embedding): {soak_requests} \
         requests, {soak_errors} errors, {:.0} requests/s",
        args.soak,
        soak_requests as f64 / args.soak as f64
    );
    if let Some(rss) = rss.iter().copied().collect::<Option<Vec<f64>>>() {
        let thirds: Vec<String> = rss[1..]
            .iter()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "{r:.1} MiB after {:.0} s",
                    args.soak as f64 * (i + 1) as f64 / 3.0
                )
            })
            .collect();
        println!(
            "ember serve's resident memory: {:.1} MiB before the soak, {}; {:+.1} MiB over the \
             last two thirds",
            rss[0],
            thirds.join(", "),
            rss[3] - rss[1]
        );
    }
    let errors: usize = ember_mnist
        .iter()
        .chain(&ember_embed)
        .map(|l| l.errors)
        .sum::<usize>()
        + soak_errors;
    println!("ember serve errors in all: {errors}");
    if let Some(peer) = &peer_mnist {
        let (ours, theirs) = (&ember_mnist[2], &peer[2]);
        println!(
            "at 64 connections, MNIST MLP: ember serve's throughput {:.1}× FastAPI's, its p99 {:.3}× FastAPI's",
            ours.per_second / theirs.per_second,
            ours.p99_ms / theirs.p99_ms
        );
    }
    Ok(())
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
