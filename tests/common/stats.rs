//! Reading the layer's statistics (`SYNCBRIDGE_STATS`: one JSON line per
//! swapchain) back in the tests.

use std::path::Path;

/// The statistics lines written to `path` (none if it is missing).
pub fn stats_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The number after the first `"key":` in a statistics line.
pub fn json_number(line: &str, key: &str) -> f64 {
    let at = line
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    let rest = &line[at + key.len() + 3..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {line}"))
}

/// Percentile `p` (`"p50"`, `"p90"`, `"p99"`) of the distribution `key` in a
/// statistics line (`"key":{"p50":…,…}`).
pub fn json_percentile(line: &str, key: &str, p: &str) -> f64 {
    let at = line
        .find(&format!("\"{key}\":{{"))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    let object = &line[at..];
    let object = &object[..object.find('}').unwrap_or(object.len()) + 1];
    json_number(object, p)
}
