//! The statistics writer with arbitrary field values and latency samples:
//! always one line of valid JSON holding every field with its value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use VkLayer_syncbridge::wsi::stats::Stats;

fuzz_target!(|data: &[u8]| {
    let (head, tail) = data.split_at(data.len().min(64));
    let text = String::from_utf8_lossy(tail);
    let values: Vec<&str> = text.splitn(4, '\u{1f}').collect();
    let mut stats = Stats::default();
    for b in head {
        stats.on_release(Duration::from_micros(u64::from(*b) * 997));
        stats.on_present(std::time::Instant::now());
    }
    let names = ["platform", "present_mode", "sync", "extent"];
    let fields: Vec<(&str, String)> = names
        .iter()
        .zip(&values)
        .map(|(k, v)| (*k, v.to_string()))
        .collect();
    let line = stats.to_json(&fields);
    assert!(!line.contains('\n'), "more than one line: {line:?}");
    let v: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
    for (k, val) in &fields {
        assert_eq!(v[k].as_str(), Some(val.as_str()), "{line}");
    }
    assert_eq!(v["frames_presented"].as_u64(), Some(head.len() as u64));
});
