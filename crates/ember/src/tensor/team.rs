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
//!
//! Sharing the machine. Spinning pays only while each thread has a core. When another
//! process takes one (a second job, a build), a spinning thread uses up its share of that
//! core waiting, the scheduler preempts it, often while it holds a task, and the whole loop
//! waits milliseconds for it: two threads then run slower than one. So every thread of the
//! team watches its own involuntary context switches (the kernel's count of times it was
//! preempted, `getrusage`): when they keep rising, the team turns *polite* for a while. A polite
//! worker sleeps as soon as a loop is done instead of spinning, so the scheduler sees a
//! thread that asks for little and runs it promptly when it wakes; a polite caller yields
//! its core while it waits. Tasks are claimed one at a time, so a late worker takes only
//! what is left. After [`POLITE`] the team spins again, and backs off again if it must.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// How long the team stays polite once a thread of it was preempted.
const POLITE: Duration = Duration::from_millis(250);

/// How often a thread reads its count of involuntary context switches.
const CHECK_EVERY: Duration = Duration::from_millis(2);

/// How many contended looks in a row turn the team polite: a neighbour that keeps a core
/// busy is seen at every look, while a short burst (a command starting, the kernel's own
/// work) is seen once and should not cost 250 ms of spinning.
const CONTENDED_LOOKS: u32 = 2;

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
    /// When the team was created: the origin of `polite_until`.
    epoch: Instant,
    /// Until when (microseconds after `epoch`) the team is polite; 0 when it never was.
    polite_until: AtomicU64,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn polite(&self) -> bool {
        let until = self.polite_until.load(Relaxed);
        until != 0 && self.now_us() < until
    }

    fn turn_polite(&self) {
        self.polite_until
            .store(self.now_us() + POLITE.as_micros() as u64, Relaxed);
    }
}

/// One thread's watch on how often the scheduler preempts it.
struct Preemptions {
    checked: Instant,
    seen: u64,
    /// Contended looks in a row.
    streak: u32,
}

impl Preemptions {
    fn new() -> Preemptions {
        Preemptions {
            checked: Instant::now(),
            seen: involuntary_switches(),
            streak: 0,
        }
    }

    /// Turns the team polite if this thread was preempted at [`CONTENDED_LOOKS`] looks in a
    /// row (it looks at most every [`CHECK_EVERY`]).
    fn check(&mut self, s: &Shared) {
        if self.checked.elapsed() < CHECK_EVERY {
            return;
        }
        self.checked = Instant::now();
        let now = involuntary_switches();
        if contended(self.seen, now) {
            self.streak += 1;
            if self.streak >= CONTENDED_LOOKS {
                s.turn_polite();
            }
        } else {
            self.streak = 0;
        }
        self.seen = now;
    }
}

/// Whether a thread's involuntary switch count moving from `before` to `after` means
/// another process competes for its core. One switch in a few milliseconds is the
/// kernel's own housekeeping; two or more is a neighbour taking turns.
fn contended(before: u64, after: u64) -> bool {
    after.saturating_sub(before) >= 2
}

/// This thread's involuntary context switches so far (0 where the count is unknown).
fn involuntary_switches() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage fills in the zeroed struct it is given.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            if libc::getrusage(libc::RUSAGE_THREAD, &mut usage) == 0 {
                return usage.ru_nivcsw as u64;
            }
        }
    }
    0
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
            epoch: Instant::now(),
            polite_until: AtomicU64::new(0),
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
    let mut preemptions = Preemptions::new();
    loop {
        // Wait for a new generation: spin, then sleep (at once when polite).
        preemptions.check(s);
        let spin = if s.polite() { Duration::ZERO } else { SPIN };
        let started = Instant::now();
        let mut spins = 0u32;
        while s.generation.load(SeqCst) == seen {
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(64) && started.elapsed() > spin {
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

thread_local! {
    /// The calling thread's watch on its preemptions.
    static CALLER: std::cell::RefCell<Preemptions> = std::cell::RefCell::new(Preemptions::new());
}

/// Runs `body(i)` for every `i < tasks` on the team's threads and this one; returns when all
/// are done. Calls from inside a body, or from two threads at once, run inline. A panic in a
/// task is raised again here once every task has finished.
pub fn parallel_for(tasks: usize, body: &(dyn Fn(usize) + Sync)) {
    let s = shared();
    if tasks <= 1 || s.workers == 0 || s.busy.swap(true, SeqCst) {
        // Inline, with the team's rule for panics: every task runs, then the first panic.
        let mut panic = None;
        for i in 0..tasks {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| body(i))) {
                panic.get_or_insert(p);
            }
        }
        if let Some(p) = panic {
            resume_unwind(p);
        }
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
    CALLER.with(|p| p.borrow_mut().check(s));
    let wait: fn() = if s.polite() {
        std::thread::yield_now
    } else {
        std::hint::spin_loop
    };
    while job.done.load(SeqCst) < tasks {
        wait();
    }
    s.job.store(std::ptr::null_mut(), SeqCst);
    while s.active.load(SeqCst) > 0 {
        wait();
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
    fn a_polite_team_still_runs_every_task_once() {
        let s = shared();
        for round in 0..500 {
            if round % 100 == 0 {
                s.turn_polite();
            }
            let n = 1 + round % 23;
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            parallel_for(n, &|i| {
                hits[i].fetch_add(1, SeqCst);
            });
            assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "round {round}");
        }
        assert!(s.polite_until.load(Relaxed) > 0);
    }

    #[test]
    fn two_preemptions_in_a_look_are_a_neighbour() {
        assert!(!contended(10, 10));
        assert!(
            !contended(10, 11),
            "one switch is the kernel's housekeeping"
        );
        assert!(contended(10, 12));
        assert!(!contended(12, 10), "a count never goes back; no underflow");
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
