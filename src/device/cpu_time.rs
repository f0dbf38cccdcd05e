//! The layer's own CPU time on the application's thread, for the
//! statistics (`layer_cpu_us` in `SYNCBRIDGE_STATS`).
//!
//! A frame's cost is the thread CPU time of its `vkAcquireNextImageKHR`
//! and `vkQueuePresentKHR` calls minus the time spent inside the driver
//! functions the layer calls on the application's behalf (the present
//! submission, semaphore signal or import): what remains is the layer's
//! own code. Driver calls cheaper than the two clock reads that would take
//! them out (a fence status, a fence reset) stay in the layer's figure.
//! Sleeping (an acquire that waits for a release) is not CPU time, but
//! going to sleep and waking up is: the kernel's futex and scheduler work
//! on this thread, which every WSI that throttles the application pays
//! once per frame (tens of microseconds in a virtual machine). That part
//! is measured apart ([`blocking`], `wait_cpu_us`) and kept out of the
//! layer's own figure; the waits are counted as `acquire_waits`.
//!
//! Within the layer's figure, the hand-off of a frame to another thread
//! (the send that wakes the GPU waiter or the presenter, [`handoff`]) is
//! also measured on its own (`handoff_cpu_us`): waking a sleeping thread
//! on another core is a system call and, in a virtual machine, an
//! inter-processor interrupt, which a WSI that shows the frame from
//! another thread or process pays once per frame (Mesa's: the `sendmsg`
//! that wakes the compositor). It stays in the layer's figure.
//!
//! Only measured while statistics are written: each measurement is a few
//! `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` system calls (thread CPU time
//! has no vDSO path), about 0.4 µs each on a warm cache in a virtual
//! machine, and eight a frame. A read's own cost falls partly inside the
//! measured span: the part of the first read after its sample, the part
//! of the last before its sample, and each pair around a driver call or a
//! wait adds one read's worth (the rest of that pair falls inside the
//! excluded span). So the figure would carry one read per entry point and
//! one per excluded call that exist only because it is measured: they are
//! taken out at the cost of one read measured once per process
//! ([`clock_read_ns`]: the least of several back-to-back batches, a lower
//! bound, so the figure keeps the rest of a cold read and never loses
//! the layer's own time).

use rustix::time::{clock_gettime, ClockId};
use std::cell::Cell;
use std::sync::OnceLock;
use std::thread::LocalKey;

thread_local! {
    /// Thread CPU nanoseconds this thread has spent in driver calls made
    /// through [`driver`], ever.
    static IN_DRIVER_NS: Cell<u64> = const { Cell::new(0) };
    /// Thread CPU nanoseconds this thread has spent going to sleep and
    /// waking up in blocking waits made through [`blocking`], ever.
    static IN_WAIT_NS: Cell<u64> = const { Cell::new(0) };
    /// Thread CPU nanoseconds this thread has spent handing frames to the
    /// layer's other threads through [`handoff`], ever.
    static IN_HANDOFF_NS: Cell<u64> = const { Cell::new(0) };
    /// Read pairs this thread has made around driver calls and waits,
    /// ever: each adds one read's cost to the span that measures it.
    static PAIRS: Cell<u64> = const { Cell::new(0) };
    /// Read pairs around hand-offs, ever: both reads fall inside the span.
    static HANDOFF_PAIRS: Cell<u64> = const { Cell::new(0) };
}

fn enabled() -> bool {
    crate::config::get().stats_path.is_some()
}

fn thread_cpu_ns() -> u64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// What one thread CPU time read costs at least, in nanoseconds: the
/// least, over a few batches of back-to-back reads, of a batch's time per
/// read (sample to sample). Measured once, the first time it is needed.
pub fn clock_read_ns() -> u64 {
    static COST: OnceLock<u64> = OnceLock::new();
    *COST.get_or_init(|| {
        const BATCHES: usize = 16;
        const READS: u64 = 8;
        (0..BATCHES)
            .map(|_| {
                let t0 = thread_cpu_ns();
                let mut t = t0;
                for _ in 0..READS {
                    t = thread_cpu_ns();
                }
                (t - t0) / READS
            })
            .min()
            .unwrap_or(0)
    })
}

/// Runs `f` between two reads of the thread's CPU time, counted in
/// `pairs`, and returns its result and the time.
fn timed<T>(pairs: &'static LocalKey<Cell<u64>>, f: impl FnOnce() -> T) -> (T, u64) {
    let t0 = thread_cpu_ns();
    let r = f();
    let spent = thread_cpu_ns().saturating_sub(t0);
    pairs.with(|c| c.set(c.get().wrapping_add(1)));
    (r, spent)
}

/// Runs `f`, a call into the driver below, keeping its CPU time out of the
/// layer's.
pub fn driver<T>(f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let (r, spent) = timed(&PAIRS, f);
    IN_DRIVER_NS.with(|c| c.set(c.get().wrapping_add(spent)));
    r
}

/// Runs `f`, a blocking wait on the application's thread, keeping the CPU
/// time of going to sleep and waking up out of the layer's (it is
/// reported as the wait's).
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let (r, spent) = timed(&PAIRS, f);
    IN_WAIT_NS.with(|c| c.set(c.get().wrapping_add(spent)));
    r
}

/// Runs `f`, the layer's hand-off of a frame to another of its threads
/// (a send that may wake it), measuring its CPU time apart; it stays in
/// the layer's figure.
pub fn handoff<T>(f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    // Its own pair's inner part is the measurement's, not the hand-off's.
    let (r, spent) = timed(&HANDOFF_PAIRS, f);
    let spent = spent.saturating_sub(clock_read_ns());
    IN_HANDOFF_NS.with(|c| c.set(c.get().wrapping_add(spent)));
    r
}

/// The layer's CPU time in one entry point, from [`LayerTime::begin`] on.
pub struct LayerTime {
    start_ns: u64,
    driver_at_start_ns: u64,
    wait_at_start_ns: u64,
    handoff_at_start_ns: u64,
    pairs_at_start: u64,
    handoff_pairs_at_start: u64,
}

/// What one entry point cost the application's thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    /// The layer's own code, driver calls and blocking waits excluded.
    pub layer_ns: u64,
    /// Going to sleep and waking up in blocking waits.
    pub wait_ns: u64,
    /// Of `layer_ns`, handing the frame to another of the layer's threads.
    pub handoff_ns: u64,
}

impl std::ops::Add for Spent {
    type Output = Spent;
    fn add(self, o: Spent) -> Spent {
        Spent {
            layer_ns: self.layer_ns + o.layer_ns,
            wait_ns: self.wait_ns + o.wait_ns,
            handoff_ns: self.handoff_ns + o.handoff_ns,
        }
    }
}

impl LayerTime {
    /// Starts measuring, or `None` when no statistics are written.
    pub fn begin() -> Option<Self> {
        if !enabled() {
            return None;
        }
        // Calibrated before the span starts, not inside it.
        clock_read_ns();
        Some(Self::start())
    }

    /// Starts a span now.
    fn start() -> Self {
        Self {
            driver_at_start_ns: IN_DRIVER_NS.with(Cell::get),
            wait_at_start_ns: IN_WAIT_NS.with(Cell::get),
            handoff_at_start_ns: IN_HANDOFF_NS.with(Cell::get),
            pairs_at_start: PAIRS.with(Cell::get),
            handoff_pairs_at_start: HANDOFF_PAIRS.with(Cell::get),
            start_ns: thread_cpu_ns(),
        }
    }

    /// What the entry point cost since `begin`: the layer's own CPU time
    /// (driver calls, blocking waits and the measurement's own reads
    /// excluded) and the waits'.
    pub fn elapsed(&self) -> Spent {
        let total = thread_cpu_ns().saturating_sub(self.start_ns);
        let in_driver = IN_DRIVER_NS
            .with(Cell::get)
            .wrapping_sub(self.driver_at_start_ns);
        let in_wait = IN_WAIT_NS
            .with(Cell::get)
            .wrapping_sub(self.wait_at_start_ns);
        let in_handoff = IN_HANDOFF_NS
            .with(Cell::get)
            .wrapping_sub(self.handoff_at_start_ns);
        let pairs = PAIRS.with(Cell::get).wrapping_sub(self.pairs_at_start);
        let handoff_pairs = HANDOFF_PAIRS
            .with(Cell::get)
            .wrapping_sub(self.handoff_pairs_at_start);
        let reads = clock_read_ns().saturating_mul(1 + pairs + 2 * handoff_pairs);
        let layer_ns = total
            .saturating_sub(in_driver)
            .saturating_sub(in_wait)
            .saturating_sub(reads);
        Spent {
            layer_ns,
            wait_ns: in_wait,
            handoff_ns: in_handoff.min(layer_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work_and_not_with_sleep() {
        let a = thread_cpu_ns();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = thread_cpu_ns();
        assert!(b - a < 10_000_000, "sleeping is not CPU time: {} ns", b - a);
        let mut x = 0u64;
        while thread_cpu_ns() - b < 2_000_000 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_ns() - b >= 2_000_000);
    }

    #[test]
    fn the_measurements_own_reads_are_taken_out_and_the_work_kept() {
        let r = clock_read_ns();
        assert!(r > 0 && r < 100_000, "one read: {r} ns");
        let span = |work_ns: u64| {
            let t = LayerTime::start();
            for _ in 0..200 {
                let ((), spent) = timed(&PAIRS, || ());
                IN_DRIVER_NS.with(|c| c.set(c.get().wrapping_add(spent)));
            }
            let t0 = thread_cpu_ns();
            let mut x = 0u64;
            while thread_cpu_ns() - t0 < work_ns {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            t.elapsed().layer_ns
        };
        // 200 empty driver calls: without the correction the span would
        // read at least 200 reads; with it, well under half of that (the
        // reads above the least one stay in).
        let idle = (0..5).map(|_| span(0)).min().unwrap();
        assert!(idle < 100 * r, "{idle} ns left of 200 reads of {r} ns");
        // Real work inside the span is kept: 3 ms of it reads at least that
        // minus the reads of the spin loop, which are the work here.
        assert!(span(3_000_000) >= 3_000_000 - 300 * r);
    }
}
