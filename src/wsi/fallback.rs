//! A swapchain's sync path, stepped down while it runs.
//!
//! The plan (`sync::plan`) is made from what the kernel, the driver and
//! the window system say they can do. A call on that path can still fail
//! later: the driver cannot export a render semaphore, the kernel refuses
//! a sync_file or a dma-buf, the driver refuses a release sync_file. The
//! swapchain then takes the next path down for the rest of its life, with
//! one error line, rather than failing the application's present or
//! acquire:
//!
//! - present: the frame (and every later one) goes the worker-wait way
//!   (the GPU waiter hands the buffer over once rendering is done; on
//!   explicit sync it signals the acquire points instead), and the render
//!   semaphore is no longer signalled (one whose export failed stays
//!   signalled until the swapchain goes, never signalled twice);
//! - acquire: the compositor's reads are waited for on the CPU (bounded
//!   by `SYNCBRIDGE_RELEASE_TIMEOUT_MS`) and what is left of the
//!   application's semaphore and fence is signalled by a queue submission.
//!
//! Stepping down for good keeps a broken piece from costing a failed call
//! and a log line every frame.

use std::sync::OnceLock;

/// Why each side of a swapchain stepped down, once it has.
#[derive(Default)]
pub struct SyncFallback {
    present: OnceLock<String>,
    acquire: OnceLock<String>,
}

impl SyncFallback {
    /// The present side failed (`why`): logged the first time only.
    pub fn present_failed(&self, why: String) {
        if self.present.set(why).is_ok() {
            log::error!(
                "the sync_file path failed at present ({}); this swapchain's frames now wait for the GPU on a worker thread",
                self.present.get().map_or("", String::as_str)
            );
        }
    }

    /// The acquire side failed (`why`): logged the first time only.
    pub fn acquire_failed(&self, why: String) {
        if self.acquire.set(why).is_ok() {
            log::error!(
                "the sync_file path failed at acquire ({}); this swapchain's acquires now wait for the compositor's reads on the CPU",
                self.acquire.get().map_or("", String::as_str)
            );
        }
    }

    /// Why the present side stepped down, if it did.
    pub fn present(&self) -> Option<&str> {
        self.present.get().map(String::as_str)
    }

    /// Why the acquire side stepped down, if it did.
    pub fn acquire(&self) -> Option<&str> {
        self.acquire.get().map(String::as_str)
    }

    /// For the statistics: both sides' reasons, or an empty string.
    pub fn describe(&self) -> String {
        [("present", self.present()), ("acquire", self.acquire())]
            .iter()
            .filter_map(|(side, why)| why.map(|w| format!("{side}: {w}")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_stays() {
        let f = SyncFallback::default();
        assert_eq!(
            (f.present(), f.acquire(), f.describe().as_str()),
            (None, None, "")
        );
        f.acquire_failed("one".into());
        f.acquire_failed("two".into());
        assert_eq!(f.acquire(), Some("one"));
        f.present_failed("three".into());
        assert_eq!(f.describe(), "present: three; acquire: one");
    }
}
