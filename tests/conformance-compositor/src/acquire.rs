//! Waiting for a buffer to be ready before the fixture reads it.
//!
//! A commit with an acquire point must not be applied before the point
//! signals; a dma-buf committed without one carries its writer's fences
//! implicitly in its reservation object, and a reader waits for them (as
//! mutter does) by polling the dma-buf for POLLIN. Both waits are smithay
//! blockers: `add_blocker` holds the surface's new state back until the
//! blocker reports `Released`, and `blocker_cleared` re-evaluates the
//! client's queued transactions. The event sources are smithay's
//! (`DrmSyncPoint::generate_blocker`, an eventfd from
//! `DRM_IOCTL_SYNCOBJ_EVENTFD`; `Dmabuf::generate_blocker`, the dma-buf's
//! fd); the blocker is the fixture's, so that a timer can release it too:
//! a wait that outlives `--acquire-timeout-ms` is an error line, and the
//! commit is then applied without reading the buffer (reading it would
//! wait in the kernel with no bound).

use smithay::reexports::calloop::RegistrationToken;
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::wayland::compositor::{Blocker, BlockerState, Cacheable};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a commit waited on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// The acquire point (explicit sync).
    Point,
    /// The dma-buf's implicit fences.
    Implicit,
}

impl WaitKind {
    pub fn name(self) -> &'static str {
        match self {
            WaitKind::Point => "point",
            WaitKind::Implicit => "implicit",
        }
    }
}

/// One commit's wait, shared by its blocker, its event source's callback
/// and its timeout.
#[derive(Debug)]
pub struct Wait {
    pub kind: WaitKind,
    pub started: Instant,
    /// Set once by whichever comes first: the source or the timeout.
    pub done: AtomicBool,
    pub timed_out: AtomicBool,
    /// The ready source and the timeout timer, removed by the other.
    pub tokens: Mutex<(Option<RegistrationToken>, Option<RegistrationToken>)>,
}

impl Wait {
    pub fn new(kind: WaitKind) -> Arc<Wait> {
        Arc::new(Wait {
            kind,
            started: Instant::now(),
            done: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
            tokens: Mutex::new((None, None)),
        })
    }

    /// Marks the wait over; true for the first caller only.
    pub fn finish(&self) -> bool {
        !self.done.swap(true, Ordering::SeqCst)
    }
}

/// The blocker smithay evaluates on each `blocker_cleared`.
pub struct WaitBlocker(pub Arc<Wait>);

impl Blocker for WaitBlocker {
    fn state(&self) -> BlockerState {
        if self.0.done.load(Ordering::SeqCst) {
            BlockerState::Released
        } else {
            BlockerState::Pending
        }
    }
}

/// A point as the client set it: the timeline's protocol id and the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointValue {
    pub timeline: u32,
    pub value: u64,
}

/// What the fixture records per commit, double-buffered with the surface's
/// state (smithay's cache): the point values the client set (smithay's
/// `DrmSyncPoint` keeps its value private) and the commit's wait.
#[derive(Debug, Default)]
pub struct CommitBook {
    pub acquire: Option<PointValue>,
    pub release: Option<PointValue>,
    pub wait: Option<Arc<Wait>>,
}

impl Cacheable for CommitBook {
    fn commit(&mut self, _dh: &DisplayHandle) -> Self {
        std::mem::take(self)
    }

    fn merge_into(self, into: &mut Self, _dh: &DisplayHandle) {
        // Each applied commit replaces the last one's record; the commit
        // handler takes it, so nothing is carried into a later commit.
        *into = self;
    }
}
