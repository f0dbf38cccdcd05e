//! Per-swapchain frame statistics, written as one JSON line per swapchain
//! to `SYNCBRIDGE_STATS` when the swapchain is destroyed.

use std::io::Write;
use std::time::{Duration, Instant};

/// The latency samples are a ring of this many, the most recent ones:
/// percentiles of a steady stream need no more, and the memory is
/// allocated (and touched) once, so a long run does not grow.
const MAX_SAMPLES: usize = 16_384;

#[derive(Debug)]
pub struct Stats {
    pub first_present: Option<Instant>,
    pub last_present: Option<Instant>,
    /// Frames handed to the window system.
    pub presented: u64,
    /// Frames replaced before they were shown (MAILBOX).
    pub skipped: u64,
    /// Time from handing a buffer to the window system until it was
    /// released, in microseconds: the first `latency_count` (at most
    /// `MAX_SAMPLES`) entries of a ring.
    release_latency_us: Vec<u32>,
    latency_count: usize,
    latency_next: usize,
    /// Times the presenter gave up waiting for a frame event.
    pub frame_event_timeouts: u64,
    /// `vkAcquireNextImageKHR` calls that found no free image and blocked
    /// the application thread (a zero timeout never blocks).
    pub acquire_waits: u64,
    /// Whether latency samples are kept: only when they will be written
    /// out, so a long-running swapchain without `SYNCBRIDGE_STATS` does not
    /// grow by up to `MAX_SAMPLES` samples.
    pub record_latency: bool,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            first_present: None,
            last_present: None,
            presented: 0,
            skipped: 0,
            // A non-zero fill is written, not calloc'ed: the pages are
            // resident from the start (only recorded entries are read).
            release_latency_us: vec![u32::MAX; MAX_SAMPLES],
            latency_count: 0,
            latency_next: 0,
            frame_event_timeouts: 0,
            acquire_waits: 0,
            record_latency: true,
        }
    }
}

impl Stats {
    /// Statistics for a swapchain; latency samples (a ring allocated here,
    /// so a long run does not grow) only when they will be written out.
    pub fn new(record_latency: bool) -> Self {
        let mut s = Self {
            record_latency,
            ..Self::default()
        };
        if !record_latency {
            s.release_latency_us = Vec::new();
        }
        s
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
        if !self.record_latency || self.release_latency_us.is_empty() {
            return;
        }
        self.release_latency_us[self.latency_next] =
            latency.as_micros().min(u32::MAX as u128) as u32;
        self.latency_next = (self.latency_next + 1) % MAX_SAMPLES;
        self.latency_count = (self.latency_count + 1).min(MAX_SAMPLES);
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
            percentile(&self.release_latency_us[..self.latency_count], p)
                .map_or("null".to_string(), |v| v.to_string())
        };
        s.push_str(&format!(
            "\"frames_presented\":{},\"frames_skipped\":{},\"fps\":{:.2},\"release_latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{}}},\"frame_event_timeouts\":{},\"acquire_waits\":{}}}",
            self.presented,
            self.skipped,
            self.fps(),
            pct(50.0),
            pct(90.0),
            pct(99.0),
            self.frame_event_timeouts,
            self.acquire_waits
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
        assert!(s.release_latency_us.is_empty());
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
    }

    #[test]
    fn control_characters_are_escaped() {
        let j = Stats::default().to_json(&[("extent", "a\u{0}b\nc".into())]);
        assert!(!j.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
        assert_eq!(v["extent"], "a\u{0}b\nc");
    }
}
