//! `syncbridge-info` against the real system: the driver (lavapipe), a
//! compositor (weston headless) and an X server (Xvfb).

mod common;

use common::weston::Weston;
use common::{clean_command, run, Manifests, Xvfb};
use serde_json::Value;
use std::time::Duration;

fn info(m: &Manifests, w: &Weston, x: &Xvfb, args: &[&str]) -> common::Output {
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_syncbridge-info"), m);
    w.env(&mut cmd);
    cmd.env("DISPLAY", &x.display).args(args);
    run(cmd, Duration::from_secs(60))
}

#[test]
fn json_report_describes_this_system_and_the_path() {
    let m = Manifests::new();
    let w = Weston::start();
    let x = Xvfb::start();
    let out = info(&m, &w, &x, &["--json"]);
    out.assert_success();
    let v: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    // The driver: lavapipe imports host memory and cannot export SYNC_FD.
    let dev = &v["vulkan"]["devices"][0];
    assert!(
        dev["name"].as_str().unwrap_or("").contains("llvmpipe"),
        "{dev}"
    );
    assert!(
        dev["external_memory_host"]["alignment"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{dev}"
    );
    assert_eq!(dev["semaphore_sync_fd_export"], Value::Bool(false), "{dev}");
    // And says why: bookworm's lavapipe predates its SYNC_FD support
    // (trixie's offers it to a process that can open /dev/udmabuf: the
    // guest tests see that side).
    assert_eq!(
        dev["sync_fd_missing"], "lavapipe before Mesa 24.3 has no SYNC_FD",
        "{dev}"
    );
    // The compositor: weston 10 headless offers wl_shm (ARGB/XRGB always)
    // and no linux-dmabuf.
    let wl = &v["wayland"];
    let shm: Vec<&str> = wl["wl_shm_formats"]
        .as_array()
        .expect("formats")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(shm.contains(&"AR24") && shm.contains(&"XR24"), "{wl}");
    assert_eq!(wl["zwp_linux_dmabuf_v1"], Value::Bool(false), "{wl}");
    assert!(wl["wp_presentation"].as_u64().is_some(), "{wl}");
    // Of which the layer uses wl_shm and wp_presentation here.
    assert_eq!(
        wl["layer_uses"],
        serde_json::json!(["wl_shm v1", "wp_presentation v1"]),
        "{wl}"
    );
    // The X server: Xvfb has Present and MIT-SHM, no DRI3.
    let x11 = &v["x11"];
    assert!(
        x11["present"].as_str().is_some_and(|s| s.starts_with("1.")),
        "{x11}"
    );
    assert!(x11["mit_shm"].as_str().is_some(), "{x11}");
    assert_eq!(x11["dri3"], Value::Null, "{x11}");
    assert!(
        x11["explicit_sync"]
            .as_str()
            .is_some_and(|s| s.starts_with("not offered by the server")),
        "{x11}"
    );
    // The host kernel makes no dma-buf.
    assert_eq!(
        v["kernel"]["dma_buf_sources"],
        Value::Array(vec![]),
        "{}",
        v["kernel"]
    );
    // And the path the layer would take on each, with the reason.
    let path = &v["layer_would_take"]["wayland"][0];
    assert_eq!(path["buffers"], "Shm", "{path}");
    assert_eq!(path["present"], "worker-wait", "{path}");
    // lavapipe has timeline semaphores: early acquire is on.
    assert_eq!(v["vulkan"]["devices"][0]["timeline_semaphores"], true);
    assert!(
        path["early_acquire"]
            .as_str()
            .unwrap_or("")
            .starts_with("on:"),
        "{path}"
    );
    assert!(
        path["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no dma-bufs"),
        "{path}"
    );
    assert_eq!(v["layer_would_take"]["x11"][0]["present"], "worker-wait");
}

#[test]
fn human_report_names_the_same_facts() {
    let m = Manifests::new();
    let w = Weston::start();
    let x = Xvfb::start();
    let out = info(&m, &w, &x, &[]);
    out.assert_success();
    for needle in [
        "llvmpipe",
        "wl_shm_formats",
        "AR24",
        "worker-wait",
        "layer_would_take",
    ] {
        assert!(out.stdout.contains(needle), "{needle} missing:\n{out}");
    }
}

#[test]
fn forced_settings_change_the_reported_path() {
    let m = Manifests::new();
    let w = Weston::start();
    let x = Xvfb::start();
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_syncbridge-info"), &m);
    w.env(&mut cmd);
    cmd.env("DISPLAY", &x.display)
        .env("SYNCBRIDGE_SYNC", "cpu")
        .env("SYNCBRIDGE_EARLY_ACQUIRE", "off")
        .arg("--json");
    let out = run(cmd, Duration::from_secs(60));
    out.assert_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["config"]["sync"], "Cpu");
    let reason = v["layer_would_take"]["wayland"][0]["reason"]
        .as_str()
        .unwrap_or("");
    assert!(reason.contains("SYNCBRIDGE_SYNC=cpu"), "{reason}");
    assert_eq!(
        v["layer_would_take"]["wayland"][0]["early_acquire"],
        "off: SYNCBRIDGE_EARLY_ACQUIRE"
    );
}
