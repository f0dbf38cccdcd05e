//! The slots of `SYNCBRIDGE_FPS_LIMIT`: one frame every `interval`, each
//! no sooner than one interval after the one before, or at once when the
//! application has fallen behind that. One rule for the three places that
//! keep it: a backend whose window system holds commits until their time
//! (`wayland/commit_timing.rs` stamps each commit), the presenter letting
//! frames go to such a backend at most [`COMMITS_AHEAD`] slots early
//! ([`paced_allowance`]), and the presenter handing over the frames the
//! layer's own limit still holds when a swapchain goes.

use std::time::{Duration, Instant};

/// Where the window system keeps the frame limit
/// ([`Backend::pace_commits`](super::platform::Backend::pace_commits)): how
/// many slots ahead of now a frame may be handed over before the presenter
/// holds it back itself (a window system may drop the constraint for a
/// window it does not draw, and the application must not spin then).
pub const COMMITS_AHEAD: u32 = 2;

/// The slot a frame handed over at `now` takes when `next` is the earliest
/// one left (`None`: no frame went yet).
fn slot_at(next: Option<Instant>, now: Instant) -> Instant {
    next.map_or(now, |t| t.max(now))
}

/// The slots of one swapchain's frames, one every `interval`.
#[derive(Debug)]
pub struct Slots {
    pub interval: Duration,
    /// The slot of the last frame.
    last: Option<Instant>,
}

impl Slots {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    /// Slots that go on from `next`, the earliest one left (`None`: from
    /// the first frame on).
    pub fn from_next(interval: Duration, next: Option<Instant>) -> Self {
        Self {
            interval,
            last: next.and_then(|t| t.checked_sub(interval)),
        }
    }

    /// The slot the next frame, handed over at `now`, would take.
    pub fn peek(&self, now: Instant) -> Instant {
        slot_at(self.next(), now)
    }

    /// The next frame, handed over at `now`, takes its slot.
    pub fn stamp(&mut self, now: Instant) -> Instant {
        let at = self.peek(now);
        self.last = Some(at);
        at
    }

    /// The earliest slot left (`None`: no frame went yet).
    pub fn next(&self) -> Option<Instant> {
        self.last.map(|t| t + self.interval)
    }

    /// The slot of the last frame.
    pub fn last(&self) -> Option<Instant> {
        self.last
    }
}

/// Where the window system keeps the frame limit: how many queued frames
/// may be handed over at `now`, their slots following on from `next`, so
/// that none is more than [`COMMITS_AHEAD`] intervals ahead of now; and
/// when the first one held back may go.
pub fn paced_allowance(
    next: Option<Instant>,
    interval: Duration,
    now: Instant,
) -> (usize, Instant) {
    let ahead = interval * COMMITS_AHEAD;
    let base = slot_at(next, now);
    let horizon = now + ahead;
    if base > horizon {
        return (0, base - ahead);
    }
    let more = (horizon - base).as_nanos() / interval.as_nanos().max(1);
    let n = more.min(u32::MAX as u128) as u32 + 1;
    (n as usize, base + interval * n - ahead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_the_grid_and_rebase_when_late() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Slots::new(ms(50));
        assert_eq!(s.next(), None);
        assert_eq!(s.stamp(t0), t0);
        // Early frames queue on the grid, ahead of now.
        assert_eq!(s.stamp(t0 + ms(1)), t0 + ms(50));
        assert_eq!(s.stamp(t0 + ms(2)), t0 + ms(100));
        assert_eq!(s.next(), Some(t0 + ms(150)));
        // A frame after its slot goes now, and the grid starts there.
        assert_eq!(s.stamp(t0 + ms(400)), t0 + ms(400));
        assert_eq!(s.stamp(t0 + ms(410)), t0 + ms(450));
        // Going on from a known next slot.
        let mut r = Slots::from_next(ms(50), Some(t0 + ms(500)));
        assert_eq!(r.peek(t0), t0 + ms(500));
        assert_eq!(r.stamp(t0), t0 + ms(500));
        assert_eq!(r.stamp(t0), t0 + ms(550));
        assert_eq!(Slots::from_next(ms(50), None).peek(t0), t0);
    }

    #[test]
    fn the_window_systems_limit_lets_frames_go_up_to_two_slots_ahead() {
        let now = Instant::now();
        let i = Duration::from_millis(100);
        // Nothing committed yet: now, +1, +2 slots.
        assert_eq!(paced_allowance(None, i, now), (3, now + i));
        // The last went long ago: the same.
        assert_eq!(paced_allowance(Some(now - 5 * i), i, now), (3, now + i));
        // The next slot is one ahead: it and the one after it.
        assert_eq!(paced_allowance(Some(now + i), i, now), (2, now + i));
        // Two ahead: one; three ahead: none until a slot has passed.
        assert_eq!(paced_allowance(Some(now + 2 * i), i, now), (1, now + i));
        assert_eq!(paced_allowance(Some(now + 3 * i), i, now), (0, now + i));
    }
}
