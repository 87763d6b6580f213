//! The collectives over MPI (the `mpi` crate, rsmpi, on the system's Open MPI or MPICH).
//! MPI is initialised with `MPI_THREAD_SERIALIZED`: the numeric kernels' threads never
//! call it, and a mutex keeps any two calls apart.

use std::sync::Mutex;

use mpi::collective::SystemOperation;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use mpi::Threading;

use super::{Collective, BUCKET_FLOATS};
use crate::error::{Error, Result};

/// MPI_COMM_WORLD. Its handle is a pointer in Open MPI, so not `Send` to Rust; every call
/// goes through the mutex, as `MPI_THREAD_SERIALIZED` asks.
struct World(SimpleCommunicator);
// SAFETY: MPI was initialised for calls from any thread, one at a time; the mutex in `Mpi`
// serialises them.
unsafe impl Send for World {}

pub(super) struct Mpi {
    world: Mutex<World>,
    rank: usize,
    size: usize,
}

/// The MPI environment, finalised by [`finalize`]; kept apart so that the world can be
/// `'static`.
static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);
struct Universe(#[allow(dead_code)] mpi::environment::Universe);
// SAFETY: only dropped (MPI_Finalize), once, under the mutex.
unsafe impl Send for Universe {}

pub(super) fn finalize() {
    if let Ok(mut universe) = UNIVERSE.lock() {
        universe.take();
    }
}

impl Mpi {
    /// MPI_Init_thread: joins the job the launcher started.
    pub(super) fn join() -> Result<Mpi> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| Error::invalid("MPI was already initialised"))?;
        if threading < Threading::Serialized {
            return Err(Error::invalid(format!(
                "the MPI library gives threading level {threading:?}; Ember needs Serialized"
            )));
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        *UNIVERSE
            .lock()
            .map_err(|_| Error::invalid("MPI state poisoned"))? = Some(Universe(universe));
        Ok(Mpi {
            world: Mutex::new(World(world)),
            rank,
            size,
        })
    }

    fn comm(&self) -> Result<std::sync::MutexGuard<'_, World>> {
        self.world
            .lock()
            .map_err(|_| Error::invalid("an earlier MPI call panicked"))
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum_f32(&self, values: &mut [f32]) -> Result<()> {
        let world = self.comm()?;
        let send = values.to_vec();
        // Every bucket's all-reduce is started before the first is waited for: the
        // library pipelines them (and a large gradient is not one giant message).
        mpi::request::multiple_scope(values.len().div_ceil(BUCKET_FLOATS), |scope, requests| {
            for (send, recv) in send
                .chunks(BUCKET_FLOATS)
                .zip(values.chunks_mut(BUCKET_FLOATS))
            {
                requests.add(world.0.immediate_all_reduce_into(
                    scope,
                    send,
                    recv,
                    SystemOperation::sum(),
                ));
            }
            let mut done = Vec::new();
            requests.wait_all(&mut done);
        });
        Ok(())
    }

    fn sum_f64(&self, values: &mut [f64]) -> Result<()> {
        let world = self.comm()?;
        let send = values.to_vec();
        world
            .0
            .all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }

    fn min_max(&self, value: u64) -> Result<(u64, u64)> {
        let world = self.comm()?;
        let (mut min, mut max) = (0u64, 0u64);
        world
            .0
            .all_reduce_into(&value, &mut min, SystemOperation::min());
        world
            .0
            .all_reduce_into(&value, &mut max, SystemOperation::max());
        Ok((min, max))
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<()> {
        let world = self.comm()?;
        let root = world.0.process_at_rank(root as i32);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        let len = usize::try_from(len).map_err(|_| Error::invalid("broadcast too long"))?;
        bytes.resize(len, 0);
        root.broadcast_into(&mut bytes[..]);
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        // Not through the mutex: another thread may hold it, waiting in a collective.
        let world = mpi::topology::SimpleCommunicator::world();
        world.abort(code)
    }

    fn library(&self) -> String {
        mpi::environment::library_version()
            .ok()
            .and_then(|v| v.lines().next().map(|l| l.trim().to_string()))
            .unwrap_or_else(|| "MPI".into())
    }
}
