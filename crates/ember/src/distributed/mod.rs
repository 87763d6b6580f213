//! Data-parallel work across processes: MPI ranks started by `mpirun`, `srun` or a
//! Kubernetes `MPIJob`. This file says who this process is ([`world`]) and holds the few
//! collective operations that `fit`, `evaluate`, `assess` and `tune` call; `mpi.rs` carries
//! them over MPI (cargo feature `mpi`). A process that no launcher started is a world of one,
//! where every collective returns at once and nothing changes.
//!
//! The convention, as Keras's multi-worker strategy: a batch is the *global* batch, each
//! rank computes the gradient of its contiguous share of it ([`share`]), the shares'
//! gradients are summed (each weighted by its share's size), so every rank applies the same
//! update and the result does not depend on the number of ranks beyond summation order.

#[cfg(feature = "mpi")]
mod mpi;

use std::cell::Cell;
use std::ops::Range;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The largest message of one gradient all-reduce, in f32s: 25 MB, PyTorch
/// DistributedDataParallel's default bucket. Larger gradients go as several buckets in
/// flight at once.
pub const BUCKET_FLOATS: usize = 25 * 1024 * 1024 / 4;

/// The collective operations data-parallel training needs. Every rank calls each of them in
/// the same order with buffers of the same length; every rank gets the same result.
pub trait Collective: Send + Sync {
    /// This process's rank, 0 to `size() - 1`; rank 0 prints and writes.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Replaces each value with its sum over all processes. A long buffer goes as
    /// [`BUCKET_FLOATS`]-sized all-reduces, all in flight before the first is waited for.
    fn sum_f32(&self, values: &mut [f32]) -> Result<()>;
    /// Starts summing `values` over all processes, without waiting: every rank starts the
    /// same sums, of the same lengths, in the same order. [`Collective::finish_sums`] waits
    /// for every sum started and returns them in that order.
    fn start_sum(&self, values: Vec<f32>) -> Result<()>;
    /// Lets the sums started make progress (MPI moves a message on only inside its calls).
    fn progress(&self) -> Result<()>;
    /// Waits for every sum started since the last call; the sums, in the order started.
    fn finish_sums(&self) -> Result<Vec<Vec<f32>>>;
    /// As [`Collective::sum_f32`], in f64 (metric sums: sample counts stay exact).
    fn sum_f64(&self, values: &mut [f64]) -> Result<()>;
    /// The smallest and the largest of every process's `value`.
    fn min_max(&self, value: u64) -> Result<(u64, u64)>;
    /// Replaces `bytes` on every rank with rank `root`'s (any length).
    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<()>;
    /// Ends every process of the job at once (after an error on this one, which the others,
    /// waiting in a collective, would otherwise wait for for ever).
    fn abort(&self, code: i32) -> !;
    /// The MPI library's name and version, as a report line gives it.
    fn library(&self) -> String;
}

/// A world of one process (its started sums are their own result).
struct Alone {
    started: std::sync::Mutex<Vec<Vec<f32>>>,
}

static ALONE_WORLD: Alone = Alone {
    started: std::sync::Mutex::new(Vec::new()),
};

impl Collective for Alone {
    fn start_sum(&self, values: Vec<f32>) -> Result<()> {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(values);
        Ok(())
    }
    fn progress(&self) -> Result<()> {
        Ok(())
    }
    fn finish_sums(&self) -> Result<Vec<Vec<f32>>> {
        Ok(std::mem::take(
            &mut *self.started.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn sum_f64(&self, _: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn min_max(&self, value: u64) -> Result<(u64, u64)> {
        Ok((value, value))
    }
    fn broadcast(&self, _: usize, _: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
    fn library(&self) -> String {
        "none".into()
    }
}

static WORLD: OnceLock<Box<dyn Collective>> = OnceLock::new();

thread_local! {
    /// Set inside [`alone`].
    static ALONE: Cell<bool> = const { Cell::new(false) };
}

/// The processes this one works with: a world of one unless [`init`] joined an MPI job
/// (and but for the work inside [`alone`]).
pub fn world() -> &'static dyn Collective {
    match WORLD.get() {
        Some(world) if !ALONE.get() => world.as_ref(),
        _ => &ALONE_WORLD,
    }
}

/// Runs `work` as a world of one, whatever the job: for work each rank does on its own (a
/// tuning trial of its own), where `fit` must not wait for the other ranks.
pub fn alone<R>(work: impl FnOnce() -> R) -> R {
    let before = ALONE.replace(true);
    let result = work();
    ALONE.set(before);
    result
}

/// Whether this process is rank 0, the one that prints and writes files (always, alone).
pub fn is_root() -> bool {
    world().rank() == 0
}

/// How many processes the launcher that started this one says the job has, from the
/// variables Open MPI's `mpirun`, MPICH's Hydra (and Intel MPI) and Slurm's `srun` set: None
/// when no launcher started it.
pub fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
}

/// This process's rank as the launcher gives it (0 when no launcher started it): what
/// decides, before MPI is joined, which process reports a failure to join.
pub fn launched_rank() -> usize {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
        .unwrap_or(0)
}

/// Joins the MPI job that started this process, if it started more than one; a world of one
/// otherwise. Call it once, first thing, and [`finish`] at the end. A job of several
/// processes started with a binary built without the `mpi` feature is an error that says
/// how to rebuild.
pub fn init() -> Result<()> {
    let size = launched_size().unwrap_or(1);
    if size <= 1 {
        return Ok(());
    }
    #[cfg(feature = "mpi")]
    {
        let world = mpi::Mpi::join()?;
        let _ = WORLD.set(Box::new(world));
        Ok(())
    }
    #[cfg(not(feature = "mpi"))]
    Err(Error::invalid(format!(
        "this ember was built without MPI, but was started as one of {size} processes: \
         rebuild it with `cargo build --release --features mpi` (scripts/install-mpi.sh \
         installs Open MPI) and launch that binary"
    )))
}

/// An error when this process is one of several and `command` is not among the commands
/// that share their work among them (`shared`): it would do the same work on each.
pub fn check_shared(command: &str, shared: &[&str]) -> Result<()> {
    let size = world().size();
    match size == 1 || shared.contains(&command) {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "`ember {command}` does not share its work among processes: under mpirun each of \
             the {size} would do it all; run it without mpirun (under mpirun: {})",
            shared.join(", ")
        ))),
    }
}

/// Leaves the MPI job (MPI_Finalize) after a successful run; a no-op alone.
pub fn finish() {
    #[cfg(feature = "mpi")]
    mpi::finalize();
}

/// Rank `rank`'s contiguous share of `len` items split among `size` ranks as evenly as
/// possible (the first `len % size` shares one longer).
pub fn share(len: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let (base, extra) = (len / size, len % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// The rows of a batch one rank computes, out of a batch shared among processes: random
/// layers (dropout, augmentation) draw for the whole batch and keep these rows, so a step's
/// draws, like its gradients, do not depend on how many processes share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The first of this rank's rows, in the batch.
    pub offset: usize,
    /// This rank's rows.
    pub rows: usize,
    /// The whole batch's rows.
    pub batch: usize,
}

/// Sums counters (sample counts, loss sums, correct predictions) over every process.
pub fn sum_counts(values: &mut [f64]) -> Result<()> {
    world().sum_f64(values)
}

/// Every rank's `mine`, in rank order (each rank's bytes broadcast in turn).
pub fn all_gather(mine: Vec<u8>) -> Result<Vec<Vec<u8>>> {
    let world = world();
    (0..world.size())
        .map(|root| {
            let mut bytes = match root == world.rank() {
                true => mine.clone(),
                false => Vec::new(),
            };
            world.broadcast(root, &mut bytes)?;
            Ok(bytes)
        })
        .collect()
}

/// A checksum of values (their bits), equal on every rank only if the values are.
pub fn checksum<'a>(values: impl IntoIterator<Item = &'a [f32]>) -> u64 {
    // FNV-1a over the values' bits.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for chunk in values {
        for v in chunk {
            hash ^= u64::from(v.to_bits());
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// An error unless `values` are bit for bit the same on every rank (`what` names them).
pub fn check_identical<'a>(what: &str, values: impl IntoIterator<Item = &'a [f32]>) -> Result<()> {
    let (min, max) = world().min_max(checksum(values))?;
    match min == max {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "{what} differ between the {} processes (checksums {min:016x} to {max:016x}): \
             the ranks no longer train the same model",
            world().size()
        ))),
    }
}

/// A tensor of `total` rows of which each rank holds its [`share`] (`local`): every rank
/// gets the whole tensor.
pub fn gather_rows(local: &crate::Tensor, total: usize) -> Result<crate::Tensor> {
    let world = world();
    if world.size() == 1 {
        return Ok(local.clone());
    }
    let width = local.row_len();
    let mine = share(total, world.rank(), world.size());
    if local.rows() != mine.len() {
        return Err(Error::invalid(format!(
            "rank {} holds {} rows, its share of {total} is {}",
            world.rank(),
            local.rows(),
            mine.len()
        )));
    }
    let mut all = vec![0.0f32; total * width];
    all[mine.start * width..mine.end * width].copy_from_slice(local.data());
    world.sum_f32(&mut all)?;
    let mut shape = local.shape().to_vec();
    if let Some(rows) = shape.first_mut() {
        *rows = total;
    }
    crate::Tensor::new(&shape, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_in_order_and_differ_by_at_most_one() {
        for len in 0..40 {
            for size in 1..6 {
                let shares: Vec<Range<usize>> = (0..size).map(|r| share(len, r, size)).collect();
                assert_eq!(shares[0].start, 0);
                assert_eq!(shares[size - 1].end, len);
                for pair in shares.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                }
                let (lo, hi) = (
                    shares.iter().map(|s| s.len()).min().unwrap(),
                    shares.iter().map(|s| s.len()).max().unwrap(),
                );
                assert!(hi - lo <= 1, "{len} over {size}: {shares:?}");
            }
        }
        assert_eq!(share(10, 0, 3), 0..4);
        assert_eq!(share(10, 2, 3), 7..10);
        assert_eq!(share(1, 1, 2), 1..1);
    }

    #[test]
    fn alone_every_collective_is_the_identity() {
        let world = world();
        assert_eq!((world.rank(), world.size()), (0, 1));
        let mut v = vec![1.5f32, -2.0];
        world.sum_f32(&mut v).unwrap();
        assert_eq!(v, [1.5, -2.0]);
        assert_eq!(world.min_max(7).unwrap(), (7, 7));
        check_identical("weights", [&v[..]]).unwrap();
        let t = crate::Tensor::new(&[2, 1], vec![1.0, 2.0]).unwrap();
        assert_eq!(gather_rows(&t, 2).unwrap(), t);
    }

    #[test]
    fn checksums_see_every_bit() {
        let a = [1.0f32, 2.0, 3.0];
        let mut b = a;
        assert_eq!(checksum([&a[..]]), checksum([&b[..]]));
        b[1] = f32::from_bits(2.0f32.to_bits() + 1);
        assert_ne!(checksum([&a[..]]), checksum([&b[..]]));
        assert_ne!(checksum([&[0.0f32][..]]), checksum([&[-0.0f32][..]]));
    }
}
