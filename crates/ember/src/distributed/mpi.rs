//! The collectives over MPI (the `mpi` crate, rsmpi, on the system's Open MPI or MPICH).
//! MPI is initialised with `MPI_THREAD_SERIALIZED`: the numeric kernels' threads never
//! call it, and a mutex keeps any two calls apart.

use std::sync::Mutex;

use std::os::raw::c_int;

use mpi::collective::SystemOperation;
use mpi::ffi;
use mpi::raw::AsRaw;
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

/// A sum started by `start_sum`: its buffers and its MPI request.
struct Started {
    send: Vec<f32>,
    recv: Vec<f32>,
    request: ffi::MPI_Request,
}
// SAFETY: the request is a handle used only under the mutex.
unsafe impl Send for Started {}

pub(super) struct Mpi {
    world: Mutex<World>,
    started: Mutex<Vec<Started>>,
    rank: usize,
    size: usize,
}

/// The MPI environment, finalised by [`finalize`]; kept apart so that the world can be
/// `'static`.
static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);
struct Universe(#[allow(dead_code)] mpi::environment::Universe);
// SAFETY: only dropped (MPI_Finalize), once, under the mutex.
unsafe impl Send for Universe {}

/// An error naming the MPI call unless it returned MPI_SUCCESS.
fn check(code: c_int, call: &str) -> Result<()> {
    match code as u32 == ffi::MPI_SUCCESS {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "{call} failed with MPI error {code}"
        ))),
    }
}

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
            started: Mutex::new(Vec::new()),
            rank,
            size,
        })
    }

    fn started(&self) -> Result<std::sync::MutexGuard<'_, Vec<Started>>> {
        self.started
            .lock()
            .map_err(|_| Error::invalid("an earlier MPI call panicked"))
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
        // The sums land in `values` itself (one copy of it is sent): no buffer to allocate,
        // which for tens of MB would cost more page faults than the transfer. Every
        // bucket's all-reduce is started before the first is waited for: the library
        // pipelines them (and a large buffer is not one giant message).
        let send = values.to_vec();
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

    fn start_sum(&self, values: Vec<f32>) -> Result<()> {
        let world = self.comm()?;
        let count = c_int::try_from(values.len()).map_err(|_| {
            Error::invalid(format!(
                "a sum of {} values is too long for MPI",
                values.len()
            ))
        })?;
        let mut sum = Started {
            recv: vec![0.0; values.len()],
            send: values,
            // SAFETY: a null request, filled in below.
            request: unsafe { ffi::RSMPI_REQUEST_NULL },
        };
        // SAFETY: both buffers hold `count` f32s and stay where they are (their heap blocks
        // do not move when `Started` does) until MPI_Waitall in finish_sums; the request
        // is written by MPI_Iallreduce.
        let code = unsafe {
            ffi::MPI_Iallreduce(
                sum.send.as_ptr().cast(),
                sum.recv.as_mut_ptr().cast(),
                count,
                ffi::RSMPI_FLOAT,
                ffi::RSMPI_SUM,
                world.0.as_raw(),
                &mut sum.request,
            )
        };
        check(code, "MPI_Iallreduce")?;
        self.started()?.push(sum);
        Ok(())
    }

    fn progress(&self) -> Result<()> {
        let _world = self.comm()?;
        let mut started = self.started()?;
        if started.is_empty() {
            return Ok(());
        }
        let mut requests: Vec<ffi::MPI_Request> = started.iter().map(|s| s.request).collect();
        let mut done: c_int = 0;
        // SAFETY: the requests are live (or already null); statuses are ignored.
        let code = unsafe {
            ffi::MPI_Testall(
                requests.len() as c_int,
                requests.as_mut_ptr(),
                &mut done,
                ffi::RSMPI_STATUSES_IGNORE,
            )
        };
        for (sum, request) in started.iter_mut().zip(requests) {
            sum.request = request;
        }
        check(code, "MPI_Testall")
    }

    fn finish_sums(&self) -> Result<Vec<Vec<f32>>> {
        let _world = self.comm()?;
        let started = std::mem::take(&mut *self.started()?);
        if started.is_empty() {
            return Ok(Vec::new());
        }
        let mut requests: Vec<ffi::MPI_Request> = started.iter().map(|s| s.request).collect();
        // SAFETY: the requests are live (or null); their buffers are in `started`, alive.
        let code = unsafe {
            ffi::MPI_Waitall(
                requests.len() as c_int,
                requests.as_mut_ptr(),
                ffi::RSMPI_STATUSES_IGNORE,
            )
        };
        check(code, "MPI_Waitall")?;
        Ok(started.into_iter().map(|s| s.recv).collect())
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
