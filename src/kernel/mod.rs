//! Typed, safe wrappers around the kernel objects the bridge is made of.
