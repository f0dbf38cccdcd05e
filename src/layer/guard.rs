//! Panics never cross the FFI boundary: every entry point runs its body
//! through [`guard`], which turns a panic into an error value and a log line.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; on panic logs it and returns `on_panic`.
pub fn guard<R>(entry: &str, on_panic: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            log::error!("internal error in {entry}: {msg}; returning an error to the application");
            on_panic
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ash::vk;

    #[test]
    fn a_panic_becomes_the_error_value() {
        let r = guard("vkTest", vk::Result::ERROR_UNKNOWN, || -> vk::Result {
            panic!("boom")
        });
        assert_eq!(r, vk::Result::ERROR_UNKNOWN);
    }

    #[test]
    fn a_normal_return_passes_through() {
        assert_eq!(guard("vkTest", 0, || 7), 7);
    }
}
