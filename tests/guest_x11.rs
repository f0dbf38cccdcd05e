//! The layer's DRI3 path against a real X server in the test guest.
//!
//! These tests run inside the guest (`tests/guest.rs` starts them with
//! `tests/guest/run.sh tests/guest/compositor.sh --sway --xwayland`): the
//! X server is Xwayland 24.1 on sway, with glamor on llvmpipe on vgem's
//! render node, so it offers DRI3 1.2 and Present and imports dma-bufs as
//! pixmaps. It cannot show them: it dies at the first `PresentPixmap` of
//! one (most likely its GL, llvmpipe through vgem's render node, reading
//! the unmappable import, as weston 14's does; see tests/guest/README.md),
//! so these tests stop before the first present.
//! The client is the X11 test client of `tests/x11.rs` (`SB_MODE=create`).
//! On the host they are ignored.

mod common;

use common::{run, x11_relay, Manifests, Output};
use std::time::Duration;

/// The X11 test client through the layer on the guest's Xwayland: makes a
/// swapchain on a mapped window and destroys it without presenting.
fn create_swapchain(m: &Manifests, buffers: &str) -> Output {
    let display = std::env::var("DISPLAY")
        .expect("DISPLAY is not set: run under tests/guest/compositor.sh --xwayland");
    let cmd = x11_relay::client(m, &display, "create", &[("SYNCBRIDGE_BUFFERS", buffers)]);
    run(cmd, Duration::from_secs(300))
}

#[test]
#[ignore = "needs the test guest with Xwayland (tests/guest.rs runs it)"]
fn dri3_swapchain_images_become_server_pixmaps() {
    let m = Manifests::new();
    let out = create_swapchain(&m, "dmabuf");
    out.assert_success();
    assert!(out.stdout.contains("CREATED"), "{out}");
    // dma-buf images with the implicit fence bridge, and every one of
    // them imported by the server (PixmapFromBuffers is a checked request:
    // an import the server refuses fails swapchain creation).
    assert!(
        out.stderr
            .contains("on xcb: DmaBuf buffers, present ImplicitSoftFence"),
        "the layer did not take the dma-buf path on X11:\n{out}"
    );
    assert!(
        out.stderr
            .contains("DRI3 1.2 pixmaps of the dma-bufs (PixmapFromBuffers, LINEAR)"),
        "the X11 backend did not take DRI3:\n{out}"
    );
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
}

#[test]
#[ignore = "needs the test guest with Xwayland (tests/guest.rs runs it)"]
fn dri3_is_not_taken_unless_asked_for() {
    // MIT-SHM stays the default on X11 until a server here can show a
    // dma-buf; the server's DRI3 is still probed.
    let m = Manifests::new();
    let out = create_swapchain(&m, "auto");
    out.assert_success();
    assert!(
        out.stderr.contains("on xcb: Shm buffers"),
        "auto took dma-bufs on X11:\n{out}"
    );
    assert!(out.stderr.contains("MIT-SHM"), "{out}");
}
