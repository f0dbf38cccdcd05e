//! Per-swapchain frame statistics, written as one JSON line per swapchain
//! to `SYNCBRIDGE_STATS` when the swapchain is destroyed.

use crate::device::cpu_time::Spent;
use std::io::Write;
use std::time::{Duration, Instant};

/// The latency samples are a ring of this many, the most recent ones:
/// percentiles of a steady stream need no more, and the memory is
/// allocated (and touched) once, so a long run does not grow.
const MAX_SAMPLES: usize = 16_384;

/// The most recent `MAX_SAMPLES` values of a measurement, in a ring
/// allocated (and touched) once, so a long run does not grow; empty, and
/// never filled, when the statistics are not written out.
#[derive(Debug)]
pub struct Samples {
    ring: Vec<u32>,
    count: usize,
    next: usize,
}

impl Samples {
    fn new(keep: bool) -> Self {
        Self {
            // A non-zero fill is written, not calloc'ed: the pages are
            // resident from the start (only recorded entries are read).
            ring: if keep {
                vec![u32::MAX; MAX_SAMPLES]
            } else {
                Vec::new()
            },
            count: 0,
            next: 0,
        }
    }

    fn push(&mut self, v: u64) {
        if self.ring.is_empty() {
            return;
        }
        self.ring[self.next] = v.min(u32::MAX as u64) as u32;
        self.next = (self.next + 1) % MAX_SAMPLES;
        self.count = (self.count + 1).min(MAX_SAMPLES);
    }

    fn percentile(&self, p: f64) -> Option<u32> {
        percentile(&self.ring[..self.count], p)
    }
}

/// How much earlier than its commit's time a frame may be reported shown
/// and still count as on time (timestamps converted between clocks).
const SHOWN_EARLY_SLACK: Duration = Duration::from_millis(1);

#[derive(Debug)]
pub struct Stats {
    pub first_present: Option<Instant>,
    pub last_present: Option<Instant>,
    /// Frames handed to the window system.
    pub presented: u64,
    /// Frames replaced before they were shown (MAILBOX).
    pub skipped: u64,
    /// Time from handing a buffer to the window system until it was
    /// released, in microseconds.
    release_latency_us: Samples,
    /// The layer's own CPU time per frame on the application's thread
    /// (acquire + present, driver calls and blocking waits excluded: see
    /// `cpu_time`), in nanoseconds.
    layer_cpu_ns: Samples,
    /// The sum of every frame's layer CPU time and the number of frames,
    /// for the mean over the whole stream (the samples keep the latest).
    layer_cpu_total_ns: u64,
    layer_cpu_frames: u64,
    /// Per frame, the CPU time the application's thread spent going to
    /// sleep and waking up in the layer's blocking waits (what throttling
    /// costs any WSI), in nanoseconds, and its sum.
    wait_cpu_ns: Samples,
    wait_cpu_total_ns: u64,
    /// Per frame, the part of the layer's CPU time spent handing the frame
    /// to another of its threads (a wake-up), in nanoseconds, and its sum.
    handoff_cpu_ns: Samples,
    handoff_cpu_total_ns: u64,
    /// Frames the window system reported shown / discarded (presentation
    /// feedback: `wp_presentation`, Present `CompleteNotify`).
    pub displayed: u64,
    pub discarded: u64,
    /// Time from `vkQueuePresentKHR` until the window system showed the
    /// frame (its presentation timestamp), in microseconds.
    display_latency_us: Samples,
    /// FIFO frames the application's present left for the presenter to
    /// pick up at its frame event, waking no thread.
    pub deferred: u64,
    /// Times the presenter gave up waiting for a frame event.
    pub frame_event_timeouts: u64,
    /// Frames whose presentation feedback did not come in time (counted
    /// as shown for `vkWaitForPresentKHR`).
    pub feedback_timeouts: u64,
    /// Frames shown before the time their commit carried
    /// (`wp_commit_timing_v1`): a window system that does not keep it.
    pub shown_early: u64,
    /// `vkAcquireNextImageKHR` calls that found no free image and blocked
    /// the application thread (a zero timeout never blocks).
    pub acquire_waits: u64,
    /// Acquires that handed out an image the window system had not
    /// released yet (replaced by a newer frame), the GPU waiting for the
    /// release instead of the application's thread.
    pub early_acquires: u64,
    /// Images handed out early whose release did not come within
    /// `SYNCBRIDGE_RELEASE_TIMEOUT_MS` and which were signalled anyway.
    pub release_timeouts: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new(true)
    }
}

impl Stats {
    /// Statistics for a swapchain; samples (rings allocated here) only
    /// when they will be written out, so a long-running swapchain without
    /// `SYNCBRIDGE_STATS` does not grow by them.
    pub fn new(keep_samples: bool) -> Self {
        Self {
            first_present: None,
            last_present: None,
            presented: 0,
            skipped: 0,
            release_latency_us: Samples::new(keep_samples),
            layer_cpu_ns: Samples::new(keep_samples),
            layer_cpu_total_ns: 0,
            layer_cpu_frames: 0,
            wait_cpu_ns: Samples::new(keep_samples),
            wait_cpu_total_ns: 0,
            handoff_cpu_ns: Samples::new(keep_samples),
            handoff_cpu_total_ns: 0,
            displayed: 0,
            discarded: 0,
            display_latency_us: Samples::new(keep_samples),
            deferred: 0,
            frame_event_timeouts: 0,
            feedback_timeouts: 0,
            shown_early: 0,
            acquire_waits: 0,
            early_acquires: 0,
            release_timeouts: 0,
        }
    }
}

/// The `p`-th percentile (0..=100) of `samples` by nearest rank.
pub fn percentile(samples: &[u32], p: f64) -> Option<u32> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

impl Stats {
    pub fn on_present(&mut self, now: Instant) {
        self.first_present.get_or_insert(now);
        self.last_present = Some(now);
        self.presented += 1;
    }

    pub fn on_release(&mut self, latency: Duration) {
        self.release_latency_us
            .push(latency.as_micros().min(u64::MAX as u128) as u64);
    }

    /// A frame's presentation feedback: shown at `shown` (`None`:
    /// discarded), presented by the application at `presented`, its
    /// commit held until `not_before` (commit timing) where it was.
    pub fn on_feedback(
        &mut self,
        presented: Option<Instant>,
        shown: Option<Instant>,
        not_before: Option<Instant>,
    ) {
        let Some(shown) = shown else {
            self.discarded += 1;
            return;
        };
        self.displayed += 1;
        if not_before.is_some_and(|t| shown + SHOWN_EARLY_SLACK < t) {
            self.shown_early += 1;
        }
        if let Some(p) = presented {
            self.display_latency_us
                .push(shown.saturating_duration_since(p).as_micros() as u64);
        }
    }

    /// One frame's layer CPU time on the application's thread.
    pub fn on_layer_cpu(&mut self, spent: Spent) {
        self.layer_cpu_ns.push(spent.layer_ns);
        self.layer_cpu_total_ns = self.layer_cpu_total_ns.saturating_add(spent.layer_ns);
        self.layer_cpu_frames += 1;
        self.wait_cpu_ns.push(spent.wait_ns);
        self.wait_cpu_total_ns = self.wait_cpu_total_ns.saturating_add(spent.wait_ns);
        self.handoff_cpu_ns.push(spent.handoff_ns);
        self.handoff_cpu_total_ns = self.handoff_cpu_total_ns.saturating_add(spent.handoff_ns);
    }

    pub fn fps(&self) -> f64 {
        match (self.first_present, self.last_present) {
            (Some(a), Some(b)) if self.presented > 1 && b > a => {
                (self.presented - 1) as f64 / (b - a).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// A JSON object on one line.
    pub fn to_json(&self, fields: &[(&str, String)]) -> String {
        let mut s = String::from("{");
        for (k, v) in fields {
            // serde_json escapes control characters too, which JSON requires.
            let (k, v) = (
                serde_json::Value::from(*k).to_string(),
                serde_json::Value::from(v.as_str()).to_string(),
            );
            s.push_str(&format!("{k}:{v},"));
        }
        let pct = |p| {
            self.release_latency_us
                .percentile(p)
                .map_or("null".to_string(), |v| v.to_string())
        };
        let us_of = |samples: &Samples, p| {
            samples
                .percentile(p)
                .map_or("null".to_string(), |v| format!("{:.1}", v as f64 / 1000.0))
        };
        let mean = |total: u64| {
            if self.layer_cpu_frames == 0 {
                "null".to_string()
            } else {
                format!(
                    "{:.1}",
                    total as f64 / self.layer_cpu_frames as f64 / 1000.0
                )
            }
        };
        let cpu_mean = mean(self.layer_cpu_total_ns);
        let shown_us = |p| {
            self.display_latency_us
                .percentile(p)
                .map_or("null".to_string(), |v| v.to_string())
        };
        let display = format!(
            "\"frames_displayed\":{},\"frames_discarded\":{},\"display_latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{}}},\"feedback_timeouts\":{},\"frames_shown_early\":{},\"frames_deferred\":{},",
            self.displayed,
            self.discarded,
            shown_us(50.0),
            shown_us(90.0),
            shown_us(99.0),
            self.feedback_timeouts,
            self.shown_early,
            self.deferred
        );
        s.push_str(&display);
        let three = |samples: &Samples, total: u64| {
            format!(
                "{{\"mean\":{},\"p50\":{},\"p99\":{}}}",
                mean(total),
                us_of(samples, 50.0),
                us_of(samples, 99.0)
            )
        };
        let wait = three(&self.wait_cpu_ns, self.wait_cpu_total_ns);
        let handoff = three(&self.handoff_cpu_ns, self.handoff_cpu_total_ns);
        s.push_str(&format!(
            "\"frames_presented\":{},\"frames_skipped\":{},\"fps\":{:.2},\"release_latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{}}},\"layer_cpu_us\":{{\"mean\":{},\"p50\":{},\"p90\":{},\"p99\":{}}},\"wait_cpu_us\":{},\"handoff_cpu_us\":{},\"clock_read_ns\":{},\"frame_event_timeouts\":{},\"acquire_waits\":{},\"early_acquires\":{},\"release_timeouts\":{}}}",
            self.presented,
            self.skipped,
            self.fps(),
            pct(50.0),
            pct(90.0),
            pct(99.0),
            cpu_mean,
            us_of(&self.layer_cpu_ns, 50.0),
            us_of(&self.layer_cpu_ns, 90.0),
            us_of(&self.layer_cpu_ns, 99.0),
            wait,
            handoff,
            if self.layer_cpu_frames > 0 {
                crate::device::cpu_time::clock_read_ns()
            } else {
                0
            },
            self.frame_event_timeouts,
            self.acquire_waits,
            self.early_acquires,
            self.release_timeouts
        ));
        s
    }

    /// Appends the statistics to `SYNCBRIDGE_STATS`, if set.
    pub fn write_out(&self, fields: &[(&str, String)]) {
        let Some(path) = &crate::config::get().stats_path else {
            return;
        };
        let line = self.to_json(fields) + "\n";
        let res = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = res {
            log::warn!("cannot write statistics to {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 1.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latencies_are_kept_only_when_asked() {
        let mut s = Stats::new(false);
        s.on_release(Duration::from_micros(12));
        s.on_layer_cpu(Spent {
            layer_ns: 3_000,
            ..Spent::default()
        });
        assert!(s.release_latency_us.ring.is_empty());
        assert_eq!(s.layer_cpu_ns.percentile(50.0), None);
    }

    #[test]
    fn json_is_one_line_with_escaped_fields() {
        let mut s = Stats::default();
        s.on_release(Duration::from_micros(12));
        let j = s.to_json(&[("platform", "way\"land".into())]);
        assert!(
            j.contains("\"p99\":12"),
            "only the recorded sample counts: {j}"
        );
        assert!(!j.contains('\n'));
        assert!(j.contains("\"platform\":\"way\\\"land\""));
        assert!(j.contains("\"p50\":12"));
        assert!(
            j.contains("\"layer_cpu_us\":{\"mean\":null,\"p50\":null"),
            "{j}"
        );
    }

    #[test]
    fn layer_cpu_time_is_reported_in_microseconds() {
        let mut s = Stats::default();
        for ns in [2_000, 4_000, 6_000, 100_000] {
            s.on_layer_cpu(Spent {
                layer_ns: ns,
                wait_ns: ns / 2,
                handoff_ns: ns / 4,
            });
        }
        let v: serde_json::Value = serde_json::from_str(&s.to_json(&[])).expect("valid JSON");
        assert_eq!(v["layer_cpu_us"]["mean"], 28.0);
        assert_eq!(v["wait_cpu_us"]["mean"], 14.0);
        assert_eq!(v["handoff_cpu_us"]["mean"], 7.0);
        assert_eq!(v["handoff_cpu_us"]["p99"], 25.0);
        assert_eq!(v["wait_cpu_us"]["p50"], 2.0);
        assert_eq!(v["layer_cpu_us"]["p50"], 4.0);
        assert_eq!(v["layer_cpu_us"]["p90"], 100.0);
        assert_eq!(v["layer_cpu_us"]["p99"], 100.0);
    }

    #[test]
    fn presentation_feedback_counts_and_times_frames() {
        let mut s = Stats::default();
        let t0 = Instant::now();
        s.on_feedback(Some(t0), Some(t0 + Duration::from_micros(16_000)), None);
        s.on_feedback(Some(t0), None, None);
        s.on_feedback(None, Some(t0), None);
        // Held until t0 + 20 ms: shown at 19.5 ms is within the slack,
        // at 10 ms is early.
        let ms = Duration::from_micros;
        s.on_feedback(None, Some(t0 + ms(19_500)), Some(t0 + ms(20_000)));
        s.on_feedback(None, Some(t0 + ms(10_000)), Some(t0 + ms(20_000)));
        let v: serde_json::Value = serde_json::from_str(&s.to_json(&[])).expect("valid JSON");
        assert_eq!(v["frames_displayed"], 4);
        assert_eq!(v["frames_discarded"], 1);
        assert_eq!(v["frames_shown_early"], 1);
        assert_eq!(v["display_latency_us"]["p50"], 16_000);
        assert_eq!(v["display_latency_us"]["p99"], 16_000);
    }

    #[test]
    fn the_sample_ring_keeps_the_most_recent() {
        let mut s = Samples::new(true);
        for v in 0..(MAX_SAMPLES as u64 + 10) {
            s.push(v);
        }
        assert_eq!(s.count, MAX_SAMPLES);
        assert_eq!(
            s.percentile(0.0),
            Some(10),
            "the oldest ten were overwritten"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let j = Stats::default().to_json(&[("extent", "a\u{0}b\nc".into())]);
        assert!(!j.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
        assert_eq!(v["extent"], "a\u{0}b\nc");
    }
}
