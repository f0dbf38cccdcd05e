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
//! Only measured while statistics are written: each measurement is a few
//! `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` system calls.

use rustix::time::{clock_gettime, ClockId};
use std::cell::Cell;

thread_local! {
    /// Thread CPU nanoseconds this thread has spent in driver calls made
    /// through [`driver`], ever.
    static IN_DRIVER_NS: Cell<u64> = const { Cell::new(0) };
    /// Thread CPU nanoseconds this thread has spent going to sleep and
    /// waking up in blocking waits made through [`blocking`], ever.
    static IN_WAIT_NS: Cell<u64> = const { Cell::new(0) };
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

/// Runs `f`, a call into the driver below, keeping its CPU time out of the
/// layer's.
pub fn driver<T>(f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let t0 = thread_cpu_ns();
    let r = f();
    let spent = thread_cpu_ns().saturating_sub(t0);
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
    let t0 = thread_cpu_ns();
    let r = f();
    let spent = thread_cpu_ns().saturating_sub(t0);
    IN_WAIT_NS.with(|c| c.set(c.get().wrapping_add(spent)));
    r
}

/// The layer's CPU time in one entry point, from [`LayerTime::begin`] on.
pub struct LayerTime {
    start_ns: u64,
    driver_at_start_ns: u64,
    wait_at_start_ns: u64,
}

/// What one entry point cost the application's thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    /// The layer's own code, driver calls and blocking waits excluded.
    pub layer_ns: u64,
    /// Going to sleep and waking up in blocking waits.
    pub wait_ns: u64,
}

impl std::ops::Add for Spent {
    type Output = Spent;
    fn add(self, o: Spent) -> Spent {
        Spent {
            layer_ns: self.layer_ns + o.layer_ns,
            wait_ns: self.wait_ns + o.wait_ns,
        }
    }
}

impl LayerTime {
    /// Starts measuring, or `None` when no statistics are written.
    pub fn begin() -> Option<Self> {
        enabled().then(|| Self {
            start_ns: thread_cpu_ns(),
            driver_at_start_ns: IN_DRIVER_NS.with(Cell::get),
            wait_at_start_ns: IN_WAIT_NS.with(Cell::get),
        })
    }

    /// What the entry point cost since `begin`: the layer's own CPU time
    /// (driver calls and blocking waits excluded) and the waits'.
    pub fn elapsed(&self) -> Spent {
        let total = thread_cpu_ns().saturating_sub(self.start_ns);
        let in_driver = IN_DRIVER_NS
            .with(Cell::get)
            .wrapping_sub(self.driver_at_start_ns);
        let in_wait = IN_WAIT_NS
            .with(Cell::get)
            .wrapping_sub(self.wait_at_start_ns);
        Spent {
            layer_ns: total.saturating_sub(in_driver).saturating_sub(in_wait),
            wait_ns: in_wait,
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
}
