//! Logging to stderr, one `syncbridge:` prefix per line, level from
//! `SYNCBRIDGE_LOG` (`error|warn|info|debug|trace|off`, default `warn`).

use log::{Level, Log, Metadata, Record};
use std::io::Write;
use std::sync::OnceLock;

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        // One write per line so lines from several threads never interleave.
        let line = format!("syncbridge: {level}: {}\n", record.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;
static INIT: OnceLock<()> = OnceLock::new();

/// Installs the logger once per process. Safe to call from every entry point.
pub fn init() {
    INIT.get_or_init(|| {
        let filter = crate::config::get().log_level;
        // Another `log` user in the same image (the layer is a cdylib, so its
        // `log` is private) cannot have set it; ignore a double init anyway.
        let _ = log::set_logger(&LOGGER);
        log::set_max_level(filter);
    });
}

/// Logs a message at `warn` level the first time the call site is reached.
#[macro_export]
macro_rules! warn_once {
    ($($arg:tt)*) => {{
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| log::warn!($($arg)*));
    }};
}

/// Logs a message at `info` level the first time the call site is reached.
#[macro_export]
macro_rules! info_once {
    ($($arg:tt)*) => {{
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| log::info!($($arg)*));
    }};
}
