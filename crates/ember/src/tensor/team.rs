//! A team of worker threads for many small parallel loops in a row, as a decoder's token
//! step runs: 200 matrix–vector products of a few microseconds each. Rayon's workers fall
//! asleep between such loops and take tens of microseconds to wake; the team's workers spin
//! for a while after each loop (as OpenMP's do, and llama.cpp's), so the next loop starts
//! within a fraction of a microsecond, then sleep when no work comes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// The loop being run: its body and counters.
struct Job {
    /// The body, `&(dyn Fn(usize) + Sync)` with its lifetime erased; valid while `active`
    /// workers or the caller are inside [`parallel_for`].
    body: std::sync::atomic::AtomicPtr<()>,
    vtable: std::sync::atomic::AtomicPtr<()>,
    tasks: AtomicUsize,
    next: AtomicUsize,
    done: AtomicUsize,
    /// Workers inside the current job.
    active: AtomicUsize,
    /// Bumped for every job.
    generation: AtomicUsize,
    sleeping: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// Whether a caller is inside `parallel_for` (a nested or concurrent call runs inline).
    busy: AtomicBool,
}

struct Team {
    job: &'static Job,
    workers: usize,
}

fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| {
        let job: &'static Job = Box::leak(Box::new(Job {
            body: Default::default(),
            vtable: Default::default(),
            tasks: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            busy: AtomicBool::new(false),
        }));
        let workers = super::threads::num_threads().saturating_sub(1);
        for _ in 0..workers {
            std::thread::Builder::new()
                .name("ember-team".into())
                .spawn(move || work(job))
                .expect("a worker thread starts");
        }
        Team { job, workers }
    })
}

type Body<'a> = &'a (dyn Fn(usize) + Sync);

fn body_of(job: &Job) -> Body<'static> {
    let parts = (
        job.body.load(Ordering::Acquire),
        job.vtable.load(Ordering::Acquire),
    );
    // SAFETY: the pointers were taken from a live `Body` in `parallel_for`, which does not
    // return while a worker is inside the job.
    unsafe { std::mem::transmute::<(*mut (), *mut ()), Body<'static>>(parts) }
}

fn run_tasks(job: &Job, body: Body) {
    let tasks = job.tasks.load(Ordering::Acquire);
    loop {
        let i = job.next.fetch_add(1, Ordering::AcqRel);
        if i >= tasks {
            break;
        }
        body(i);
        job.done.fetch_add(1, Ordering::AcqRel);
    }
}

fn work(job: &'static Job) {
    let mut seen = job.generation.load(Ordering::Acquire);
    loop {
        let started = Instant::now();
        let mut spins = 0u32;
        loop {
            let g = job.generation.load(Ordering::Acquire);
            if g != seen {
                seen = g;
                break;
            }
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(1024) && started.elapsed() > SPIN {
                let guard = job.lock.lock().unwrap_or_else(|e| e.into_inner());
                job.sleeping.fetch_add(1, Ordering::AcqRel);
                let _guard = job
                    .wake
                    .wait_while(guard, |_| job.generation.load(Ordering::Acquire) == seen)
                    .unwrap_or_else(|e| e.into_inner());
                job.sleeping.fetch_sub(1, Ordering::AcqRel);
                seen = job.generation.load(Ordering::Acquire);
                break;
            }
        }
        job.active.fetch_add(1, Ordering::AcqRel);
        // A job may already be over (all its tasks taken) by the time this worker looks.
        if job.next.load(Ordering::Acquire) < job.tasks.load(Ordering::Acquire) {
            run_tasks(job, body_of(job));
        }
        job.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `body(i)` for every `i < tasks` on the team's threads and this one; returns when all
/// are done. Calls from inside a body, or from two threads at once, run inline.
pub fn parallel_for(tasks: usize, body: &(dyn Fn(usize) + Sync)) {
    let team = team();
    let job = team.job;
    if tasks <= 1 || team.workers == 0 || job.busy.swap(true, Ordering::AcqRel) {
        (0..tasks).for_each(body);
        return;
    }
    // SAFETY: only the layout of a fat reference is relied on; `body` outlives the job,
    // since this function waits for every worker to leave it.
    let (data, vtable) = unsafe { std::mem::transmute::<Body, (*mut (), *mut ())>(body) };
    job.body.store(data, Ordering::Release);
    job.vtable.store(vtable, Ordering::Release);
    job.tasks.store(tasks, Ordering::Release);
    job.done.store(0, Ordering::Release);
    job.next.store(0, Ordering::Release);
    job.generation.fetch_add(1, Ordering::AcqRel);
    if job.sleeping.load(Ordering::Acquire) > 0 {
        let _guard = job.lock.lock().unwrap_or_else(|e| e.into_inner());
        job.wake.notify_all();
    }
    run_tasks(job, body);
    while job.done.load(Ordering::Acquire) < tasks || job.active.load(Ordering::Acquire) > 0 {
        std::hint::spin_loop();
    }
    job.busy.store(false, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_across_many_jobs() {
        for round in 0..2000 {
            let n = 1 + round % 37;
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            parallel_for(n, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "round {round}"
            );
            if round % 500 == 0 {
                // Let the workers fall asleep, and wake them.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Nested calls run inline.
        let total = AtomicUsize::new(0);
        parallel_for(4, &|_| {
            parallel_for(3, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            })
        });
        assert_eq!(total.load(Ordering::Relaxed), 12);
    }
}
