//! `ember bench search`: exact cosine search over 100,000 indexed 384-dimensional vectors —
//! queries per second — against the floor for any exact search of one query: reading the
//! index's 154 MB once.

use std::path::PathBuf;
use std::time::Instant;

use ember::tensor::random::{uniform_tensor, Rng};
use ember::text::FaqIndex;
use ember::Tensor;

use super::BenchArgs;

const ENTRIES: usize = 100_000;
const DIM: usize = 384;
const QUERIES: usize = 200;

fn unit_rows(rows: usize, rng: &mut Rng) -> Tensor {
    let mut t = uniform_tensor(&[rows, DIM], -1.0, 1.0, rng);
    t.l2_normalize_rows();
    t
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let mut rng = Rng::seed(args.seed);
    let index = FaqIndex {
        questions: vec![String::new(); ENTRIES],
        answers: vec![String::new(); ENTRIES],
        embeddings: unit_rows(ENTRIES, &mut rng),
        encoder: PathBuf::new(),
        encoder_key: String::new(),
    };
    let queries = unit_rows(QUERIES, &mut rng);
    let started = Instant::now();
    let mut checksum = 0.0f32;
    for q in queries.data().chunks(DIM) {
        checksum += index.search(q, 5)?[0].1;
    }
    let search = started.elapsed().as_secs_f64();
    // Baseline: one read of the whole index per query (a sum with 16 independent lanes,
    // which the compiler vectorises): the memory traffic every exact search must pay.
    let started = Instant::now();
    for _ in 0..QUERIES {
        let mut lanes = [0.0f32; 16];
        for block in index.embeddings.data().chunks_exact(16) {
            for (l, v) in lanes.iter_mut().zip(block) {
                *l += v;
            }
        }
        checksum += lanes.iter().sum::<f32>() * 1e-9;
    }
    let dots = started.elapsed().as_secs_f64();
    println!(
        "{ENTRIES} indexed vectors of {DIM}, {QUERIES} queries, top 5, exact, {} thread(s)",
        args.threads
    );
    println!(
        "search: {:.0} queries/s ({:.2} ms each)",
        QUERIES as f64 / search,
        1e3 * search / QUERIES as f64
    );
    println!(
        "baseline, reading the index once per query: {:.0} per second",
        QUERIES as f64 / dots
    );
    println!(
        "ratio search / baseline time: {:.2} (checksum {checksum:.3})",
        search / dots
    );
    Ok(())
}
