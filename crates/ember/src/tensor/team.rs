//! A team of worker threads for many small parallel loops in a row, as a decoder's token
//! step runs: 200 matrix–vector products of a few microseconds each. Rayon's workers fall
//! asleep between such loops and take tens of microseconds to wake; the team's workers spin
//! for a while after each loop (as OpenMP's do, and llama.cpp's), so the next loop starts
//! within a fraction of a microsecond, then sleep when no work comes.
//!
//! The protocol: the caller publishes a pointer to a job on its stack. A worker announces
//! itself (`active += 1`) before reading the pointer and reads it after; the caller takes the
//! pointer back, then waits until no worker is active. With sequentially consistent
//! operations a worker either sees the pointer gone, or is counted before the caller returns,
//! so no worker touches a job after `parallel_for` returns. Tasks are claimed from the job's
//! own counter. A panicking task is caught, the loop finishes, and the panic is raised again
//! in the caller.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// One loop: its body and counters, on the caller's stack.
struct Job<'a> {
    body: &'a (dyn Fn(usize) + Sync),
    tasks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Job<'_> {
    fn run(&self) {
        loop {
            let i = self.next.fetch_add(1, SeqCst);
            if i >= self.tasks {
                break;
            }
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| (self.body)(i))) {
                self.panic
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(p);
            }
            self.done.fetch_add(1, SeqCst);
        }
    }
}

struct Shared {
    /// The current job, type-erased (`*const Job`), or null.
    job: AtomicPtr<()>,
    /// Workers that may be reading `job`.
    active: AtomicUsize,
    /// Bumped for every job, to wake the spinners.
    generation: AtomicUsize,
    sleeping: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// Whether a caller is inside `parallel_for` (a nested or concurrent call runs inline).
    busy: AtomicBool,
    workers: usize,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<&'static Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let workers = super::threads::num_threads().saturating_sub(1);
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            job: AtomicPtr::new(std::ptr::null_mut()),
            active: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            busy: AtomicBool::new(false),
            workers,
        }));
        for _ in 0..workers {
            std::thread::Builder::new()
                .name("ember-team".into())
                .spawn(move || work(shared))
                .expect("a worker thread starts");
        }
        shared
    })
}

fn work(s: &'static Shared) {
    let mut seen = s.generation.load(SeqCst);
    loop {
        // Wait for a new generation: spin, then sleep.
        let started = Instant::now();
        let mut spins = 0u32;
        while s.generation.load(SeqCst) == seen {
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(1024) && started.elapsed() > SPIN {
                let guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
                s.sleeping.fetch_add(1, SeqCst);
                let guard = s
                    .wake
                    .wait_while(guard, |_| s.generation.load(SeqCst) == seen)
                    .unwrap_or_else(|e| e.into_inner());
                s.sleeping.fetch_sub(1, SeqCst);
                drop(guard);
            }
        }
        seen = s.generation.load(SeqCst);
        s.active.fetch_add(1, SeqCst);
        let job = s.job.load(SeqCst) as *const Job;
        if !job.is_null() {
            // SAFETY: the caller does not return while this worker is counted active, and
            // the pointer was read after being counted, so the job is alive.
            unsafe { (*job).run() };
        }
        s.active.fetch_sub(1, SeqCst);
    }
}

/// Runs `body(i)` for every `i < tasks` on the team's threads and this one; returns when all
/// are done. Calls from inside a body, or from two threads at once, run inline. A panic in a
/// task is raised again here once every task has finished.
pub fn parallel_for(tasks: usize, body: &(dyn Fn(usize) + Sync)) {
    let s = shared();
    if tasks <= 1 || s.workers == 0 || s.busy.swap(true, SeqCst) {
        (0..tasks).for_each(body);
        return;
    }
    let job = Job {
        body,
        tasks,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panic: Mutex::new(None),
    };
    s.job.store(&job as *const Job as *mut (), SeqCst);
    s.generation.fetch_add(1, SeqCst);
    if s.sleeping.load(SeqCst) > 0 {
        let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
        s.wake.notify_all();
    }
    job.run();
    while job.done.load(SeqCst) < tasks {
        std::hint::spin_loop();
    }
    s.job.store(std::ptr::null_mut(), SeqCst);
    while s.active.load(SeqCst) > 0 {
        std::hint::spin_loop();
    }
    s.busy.store(false, SeqCst);
    if let Some(p) = job.panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
        resume_unwind(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_across_many_jobs() {
        for round in 0..3000 {
            let n = 1 + round % 37;
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            parallel_for(n, &|i| {
                hits[i].fetch_add(1, SeqCst);
            });
            assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "round {round}");
            if round % 500 == 0 {
                // Let the workers fall asleep, and wake them.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Nested calls run inline.
        let total = AtomicUsize::new(0);
        parallel_for(4, &|_| {
            parallel_for(3, &|_| {
                total.fetch_add(1, SeqCst);
            })
        });
        assert_eq!(total.load(SeqCst), 12);
    }

    #[test]
    fn a_panicking_task_is_raised_in_the_caller_after_the_loop() {
        let ran = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            parallel_for(64, &|i| {
                ran.fetch_add(1, SeqCst);
                assert!(i != 17, "task 17 fails");
            })
        }));
        assert!(result.is_err());
        assert_eq!(ran.load(SeqCst), 64, "the other tasks still ran");
        // The team works on afterwards.
        let after = AtomicUsize::new(0);
        parallel_for(10, &|_| {
            after.fetch_add(1, SeqCst);
        });
        assert_eq!(after.load(SeqCst), 10);
    }
}
