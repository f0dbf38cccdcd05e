//! `Config::from_vars` on arbitrary environments: lines of `NAME=VALUE`
//! (any bytes, lossily decoded). Never panics; every warning is short
//! and on one line; without `SYNCBRIDGE_` names the configuration is the
//! default.
#![no_main]

use libfuzzer_sys::fuzz_target;
use VkLayer_syncbridge::config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let vars: Vec<(String, String)> = text
        .split('\0')
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    let cfg = Config::from_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let ours = vars.iter().filter(|(k, _)| k.starts_with("SYNCBRIDGE_")).count();
    assert!(cfg.warnings.len() <= ours);
    for w in &cfg.warnings {
        assert!(w.len() < 1000, "warning of {} bytes", w.len());
        assert!(!w.contains('\n'), "a warning spans lines: {w:?}");
    }
    if ours == 0 {
        assert_eq!(cfg, Config::default());
    }
});
