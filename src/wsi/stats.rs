//! Per-swapchain frame statistics, written as one JSON line per swapchain
//! to `SYNCBRIDGE_STATS` when the swapchain is destroyed.

use std::io::Write;
use std::time::{Duration, Instant};

/// At most this many latency samples are kept (a long run keeps the first
/// ones; percentiles of a steady stream do not need more).
const MAX_SAMPLES: usize = 200_000;

#[derive(Debug)]
pub struct Stats {
    pub created: Instant,
    pub first_present: Option<Instant>,
    pub last_present: Option<Instant>,
    /// Frames handed to the window system.
    pub presented: u64,
    /// Frames replaced before they were shown (MAILBOX).
    pub skipped: u64,
    /// Time from handing a buffer to the window system until it was
    /// released, in microseconds.
    pub release_latency_us: Vec<u32>,
    /// Times the presenter gave up waiting for a frame event.
    pub frame_event_timeouts: u64,
    /// Whether latency samples are kept: only when they will be written
    /// out, so a long-running swapchain without `SYNCBRIDGE_STATS` does not
    /// grow by up to `MAX_SAMPLES` samples.
    pub record_latency: bool,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            created: Instant::now(),
            first_present: None,
            last_present: None,
            presented: 0,
            skipped: 0,
            release_latency_us: Vec::new(),
            frame_event_timeouts: 0,
            record_latency: true,
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
        if self.record_latency && self.release_latency_us.len() < MAX_SAMPLES {
            self.release_latency_us
                .push(latency.as_micros().min(u32::MAX as u128) as u32);
        }
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
            percentile(&self.release_latency_us, p).map_or("null".to_string(), |v| v.to_string())
        };
        s.push_str(&format!(
            "\"frames_presented\":{},\"frames_skipped\":{},\"fps\":{:.2},\"release_latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{}}},\"frame_event_timeouts\":{}}}",
            self.presented,
            self.skipped,
            self.fps(),
            pct(50.0),
            pct(90.0),
            pct(99.0),
            self.frame_event_timeouts
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
        let mut s = Stats {
            record_latency: false,
            ..Stats::default()
        };
        s.on_release(Duration::from_micros(12));
        assert!(s.release_latency_us.is_empty());
    }

    #[test]
    fn json_is_one_line_with_escaped_fields() {
        let mut s = Stats::default();
        s.on_release(Duration::from_micros(12));
        let j = s.to_json(&[("platform", "way\"land".into())]);
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
