//! The process's one Ruby VM, on a thread of its own.
//!
//! CRuby has one VM per process and one lock (the GVL) over it, and it must be set up
//! and called from the thread that initialised it. Worker threads therefore never call
//! Ruby: they send a job (a whole batch for one filter) over a bounded channel to the
//! VM thread and wait for its answer. Ruby starts on first use, so a pipeline without a
//! `ruby` filter never pays for it.

use magnus::Ruby;
use std::cell::RefCell;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;

/// Jobs waiting for the VM. Each worker waits for its own job's answer, so at most one
/// job per worker is queued; the bound only makes more workers than this wait to queue.
const JOB_QUEUE_BOUND: usize = 64;

/// The VM thread's stack: Ruby code recurses on it (deep recursion in a script raises
/// SystemStackError near this limit instead of overflowing).
const VM_STACK_BYTES: usize = 64 << 20;

type Job = Box<dyn FnOnce(&Ruby) + Send>;

/// Why a job got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VmError {
    #[error("the Ruby VM could not start: {0}")]
    Start(String),
    #[error("the Ruby VM thread is gone")]
    Gone,
}

static VM: OnceLock<Result<SyncSender<Job>, VmError>> = OnceLock::new();

/// What the VM thread's entry function (a plain `fn`, as `magnus::Ruby::init` wants)
/// picks up: its job queue, where to say whether Ruby started, and the signal
/// dispositions from before Ruby started.
struct Handoff {
    jobs: Receiver<Job>,
    ready: SyncSender<Result<(), String>>,
    signals: signals::Saved,
}

thread_local! {
    static HANDOFF: RefCell<Option<Handoff>> = const { RefCell::new(None) };
}

/// Runs `f` on the VM thread and returns its result, starting the VM on first use.
pub fn run<R, F>(f: F) -> Result<R, VmError>
where
    R: Send + 'static,
    F: FnOnce(&Ruby) -> R + Send + 'static,
{
    let jobs = VM.get_or_init(start).clone()?;
    let (answer_tx, answer_rx) = sync_channel(1);
    let job: Job = Box::new(move |ruby| {
        // The worker may have gone (shutdown): nothing to tell then.
        let _ = answer_tx.send(f(ruby));
    });
    jobs.send(job).map_err(|_| VmError::Gone)?;
    answer_rx.recv().map_err(|_| VmError::Gone)
}

/// Queues `f` without waiting for it (a filter's clean-up when it is dropped); does
/// nothing when the VM never started or the queue is full.
pub fn spawn<F>(f: F)
where
    F: FnOnce(&Ruby) + Send + 'static,
{
    if let Some(Ok(jobs)) = VM.get() {
        let _ = jobs.try_send(Box::new(f));
    }
}

fn start() -> Result<SyncSender<Job>, VmError> {
    let (jobs_tx, jobs_rx) = sync_channel::<Job>(JOB_QUEUE_BOUND);
    let (ready_tx, ready_rx) = sync_channel(1);
    std::thread::Builder::new()
        .name("sluice-ruby".into())
        .stack_size(VM_STACK_BYTES)
        .spawn(move || {
            let handoff = Handoff {
                jobs: jobs_rx,
                ready: ready_tx,
                signals: signals::save(),
            };
            HANDOFF.with(|h| *h.borrow_mut() = Some(handoff));
            if let Err(e) = Ruby::init(vm_main) {
                tracing::error!(error = %e, "the ruby vm stopped");
            }
        })
        .map_err(|e| VmError::Start(e.to_string()))?;
    // Should Ruby fail to start (even by panicking), the thread's end drops `ready`.
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(jobs_tx),
        Ok(Err(e)) => Err(VmError::Start(e)),
        Err(_) => Err(VmError::Start("the VM thread ended while starting".into())),
    }
}

/// The VM thread, once Ruby is up: install the API, then run jobs until the process
/// ends. A job that panics is contained: its worker gets [`VmError::Gone`] for it.
fn vm_main(ruby: &Ruby) -> Result<(), magnus::Error> {
    let Some(handoff) = HANDOFF.with(|h| h.borrow_mut().take()) else {
        return Ok(());
    };
    signals::restore(&handoff.signals);
    if let Err(e) = super::api::install(ruby) {
        let _ = handoff.ready.send(Err(e.to_string()));
        return Ok(());
    }
    let _ = handoff.ready.send(Ok(()));
    drop(handoff.ready);
    while let Ok(job) = handoff.jobs.recv() {
        let run = std::panic::AssertUnwindSafe(|| job(ruby));
        if std::panic::catch_unwind(run).is_err() {
            // Its worker's answer channel is dropped with the job, so the worker sees
            // `VmError::Gone` and fails the batch back unacknowledged.
            tracing::error!("a ruby filter job panicked");
        }
    }
    Ok(())
}

mod signals {
    //! CRuby takes SIGINT, SIGTERM and a few more for itself when it starts, if nobody
    //! else holds them yet. Sluice handles those signals itself (a first signal drains,
    //! a second gives up), so the dispositions from before Ruby started are put back.

    /// The signals `ruby_setup` installs handlers for.
    const SIGNALS: [libc::c_int; 7] = [
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGALRM,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ];

    pub struct Saved(Vec<(libc::c_int, libc::sigaction)>);

    /// The current dispositions of [`SIGNALS`].
    pub fn save() -> Saved {
        let mut out = Vec::with_capacity(SIGNALS.len());
        for sig in SIGNALS {
            // SAFETY: an all-zero `sigaction` is a valid value of this plain C struct,
            // and sigaction(2) with a null new action only writes the current
            // disposition into `old`, which we own and which outlives the call.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
            if rc == 0 {
                out.push((sig, old));
            }
        }
        Saved(out)
    }

    /// Puts back what [`save`] read.
    pub fn restore(saved: &Saved) {
        for (sig, action) in &saved.0 {
            // SAFETY: `action` is a disposition sigaction(2) itself returned for this
            // signal (a handler that is still installed code, or SIG_DFL/SIG_IGN);
            // reinstalling it is what the process had before Ruby started. A null old
            // action is allowed.
            let rc = unsafe { libc::sigaction(*sig, action, std::ptr::null_mut()) };
            if rc != 0 {
                tracing::warn!(
                    signal = sig,
                    "could not restore a signal handler after starting ruby"
                );
            }
        }
    }
}
