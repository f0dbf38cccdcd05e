//! `VK_EXT_headless_surface` through the layer under the real loader and
//! lavapipe: a swapchain with no window system, paced by the layer's
//! headless clock (60 Hz), validation quiet.

mod common;

use ash::vk;
use common::vkapp::{command_pool, record_clear, App, Listener};
use common::*;
use std::time::Instant;

/// The refresh rate of the layer's headless clock (`src/wsi/headless.rs`).
const REFRESH_HZ: u64 = 60;

static MESSAGES: Listener = Listener::new("validation: ", false);

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Presents `SB_FRAMES` frames on a headless surface in `SB_MODE`
/// (`fifo`, `fifo_relaxed`, `mailbox`, `immediate`), with the validation
/// layer below syncbridge when `SB_VALIDATION` is set; prints the time it
/// took and the validation messages.
#[test]
#[ignore = "run by the headless tests in a child process"]
fn child_headless() {
    if !is_child() {
        return;
    }
    let frames = env_u32("SB_FRAMES", 30);
    let mode = match std::env::var("SB_MODE").as_deref() {
        Ok("immediate") => vk::PresentModeKHR::IMMEDIATE,
        Ok("mailbox") => vk::PresentModeKHR::MAILBOX,
        Ok("fifo_relaxed") => vk::PresentModeKHR::FIFO_RELAXED,
        _ => vk::PresentModeKHR::FIFO,
    };
    let listen = std::env::var_os("SB_VALIDATION").is_some();
    // SAFETY: plain Vulkan use against the real loader; every object is
    // destroyed before its parent.
    unsafe {
        let app = App::new(
            c"syncbridge-headless-test",
            vk::API_VERSION_1_1,
            &[vk::KHR_SURFACE_NAME, vk::EXT_HEADLESS_SURFACE_NAME],
            &[],
            listen.then_some(&MESSAGES),
        )
        .expect("instance");
        let headless = ash::ext::headless_surface::Instance::new(&app.entry, &app.instance);
        let surface_fn = ash::khr::surface::Instance::new(&app.entry, &app.instance);
        let surface = headless
            .create_headless_surface(&vk::HeadlessSurfaceCreateInfoEXT::default(), None)
            .expect("headless surface");
        let pd = app.physical_device();
        assert!(surface_fn
            .get_physical_device_surface_support(pd, 0, surface)
            .unwrap());
        let caps = surface_fn
            .get_physical_device_surface_capabilities(pd, surface)
            .unwrap();
        say("current_extent", caps.current_extent.width);
        let modes = surface_fn
            .get_physical_device_surface_present_modes(pd, surface)
            .unwrap();
        assert!(modes.contains(&mode), "{modes:?}");
        let (device, queue) = app
            .device(pd, &[vk::KHR_SWAPCHAIN_NAME], std::ptr::null())
            .expect("device");
        let sc_fn = ash::khr::swapchain::Device::new(&app.instance, &device);
        let extent = vk::Extent2D {
            width: 256,
            height: 256,
        };
        let sc = sc_fn
            .create_swapchain(
                &vk::SwapchainCreateInfoKHR::default()
                    .surface(surface)
                    .min_image_count(caps.min_image_count)
                    .image_format(vk::Format::B8G8R8A8_UNORM)
                    .image_color_space(vk::ColorSpaceKHR::SRGB_NONLINEAR)
                    .image_extent(extent)
                    .image_array_layers(1)
                    .image_usage(
                        vk::ImageUsageFlags::COLOR_ATTACHMENT | vk::ImageUsageFlags::TRANSFER_DST,
                    )
                    .pre_transform(vk::SurfaceTransformFlagsKHR::IDENTITY)
                    .composite_alpha(vk::CompositeAlphaFlagsKHR::OPAQUE)
                    .present_mode(mode)
                    .clipped(true),
                None,
            )
            .expect("swapchain");
        let images = sc_fn.get_swapchain_images(sc).unwrap();
        say("min_image_count", caps.min_image_count);
        say("images", images.len());
        let pool = command_pool(&device);
        let cmds = device
            .allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(pool)
                    .command_buffer_count(images.len() as u32),
            )
            .unwrap();
        let acquired = device
            .create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
            .unwrap();
        let rendered: Vec<vk::Semaphore> = images
            .iter()
            .map(|_| {
                device
                    .create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
                    .unwrap()
            })
            .collect();
        let done = device
            .create_fence(&vk::FenceCreateInfo::default(), None)
            .unwrap();
        let start = Instant::now();
        for f in 0..frames {
            let (i, _) = sc_fn
                .acquire_next_image(sc, 5_000_000_000, acquired, vk::Fence::null())
                .expect("acquire");
            let i = i as usize;
            let shade = (f % 8) as f32 / 8.0;
            record_clear(&device, cmds[i], images[i], [shade, 0.5, 1.0 - shade, 1.0]);
            let waits = [acquired];
            let stages = [vk::PipelineStageFlags::TRANSFER];
            let cbs = [cmds[i]];
            let sigs = [rendered[i]];
            device
                .queue_submit(
                    queue,
                    &[vk::SubmitInfo::default()
                        .wait_semaphores(&waits)
                        .wait_dst_stage_mask(&stages)
                        .command_buffers(&cbs)
                        .signal_semaphores(&sigs)],
                    done,
                )
                .unwrap();
            let scs = [sc];
            let idx = [i as u32];
            sc_fn
                .queue_present(
                    queue,
                    &vk::PresentInfoKHR::default()
                        .wait_semaphores(&sigs)
                        .swapchains(&scs)
                        .image_indices(&idx),
                )
                .expect("present");
            // One frame at a time: the acquire semaphore and the fence are
            // free again once the frame's work is done.
            device
                .wait_for_fences(&[done], true, 5_000_000_000)
                .unwrap();
            device.reset_fences(&[done]).unwrap();
        }
        say("seconds", format!("{:.3}", start.elapsed().as_secs_f64()));
        device.device_wait_idle().unwrap();
        sc_fn.destroy_swapchain(sc, None);
        device.destroy_fence(done, None);
        device.destroy_semaphore(acquired, None);
        rendered
            .iter()
            .for_each(|s| device.destroy_semaphore(*s, None));
        device.destroy_command_pool(pool, None);
        device.destroy_device(None);
        surface_fn.destroy_surface(surface, None);
        app.destroy();
    }
    say("messages", MESSAGES.count());
}

fn say(key: &str, value: impl std::fmt::Display) {
    println!("{MARK}{key}={value}");
}

fn headless(mode: &str, frames: u32) -> (Output, f64, String) {
    headless_with(mode, frames, &[])
}

fn headless_with(mode: &str, frames: u32, extra: &[(&str, &str)]) -> (Output, f64, String) {
    let m = Manifests::new();
    let tmp = TempDir::new("headless");
    let stats = tmp.path().join("stats.jsonl");
    let frames_s = frames.to_string();
    let layers = format!("{LAYER_NAME}:VK_LAYER_KHRONOS_validation");
    let stats_s = stats.display().to_string();
    let layer_path = m.layer_path();
    let mut env = vec![
        ("VK_LAYER_PATH", layer_path.as_str()),
        ("VK_INSTANCE_LAYERS", &layers),
        ("SB_MODE", mode),
        ("SB_FRAMES", &frames_s),
        ("SB_VALIDATION", "1"),
        ("SYNCBRIDGE_LOG", "info"),
        ("SYNCBRIDGE_STATS", &stats_s),
    ];
    env.extend_from_slice(extra);
    let out = run_child("child_headless", &m, &env);
    out.assert_success();
    assert_eq!(out.value("messages"), "0", "validation spoke:\n{out}");
    assert!(
        out.stderr.contains(" on headless: Shm buffers"),
        "the layer did not make the swapchain:\n{out}"
    );
    assert_eq!(out.value("current_extent"), u32::MAX.to_string());
    let secs: f64 = out.value("seconds").parse().unwrap();
    let line = std::fs::read_to_string(&stats).expect("statistics written");
    (out, secs, line)
}

/// The frames a swapchain showed, from its statistics line.
fn shown(stats: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(stats.trim()).expect("statistics JSON");
    assert_eq!(v["platform"], "headless", "{stats}");
    v["frames_presented"].as_u64().expect("frames_presented")
}

/// FIFO on the headless clock shows one frame per refresh: presenting 30
/// frames takes at least 26 refreshes of 1/60 s (the swapchain's images let
/// the last frames be queued ahead of the display; a lower bound, as a slow
/// machine only takes longer). Frames still queued behind the display when
/// the swapchain is destroyed are not shown.
#[test]
fn headless_fifo_is_paced_by_the_refresh() {
    let (out, secs, stats) = headless("fifo", 30);
    assert!(secs >= 26.0 / 60.0, "30 FIFO frames in {secs} s:\n{out}");
    assert!(shown(&stats) >= 27, "{stats}");
}

/// IMMEDIATE, MAILBOX and FIFO_RELAXED present with no error and a quiet
/// validation layer below the layer: IMMEDIATE shows every frame at once,
/// FIFO_RELAXED all but those queued behind the display at destruction,
/// MAILBOX one at each refresh the run lasted (however fast the machine
/// renders: all 60 frames can fit in one refresh), never more than were
/// presented.
#[test]
fn headless_present_modes_present_their_frames() {
    for (mode, at_least) in [("immediate", 60), ("fifo_relaxed", 57)] {
        let (_, _, stats) = headless(mode, 60);
        let n = shown(&stats);
        assert!(n >= at_least, "{mode}: {n} frames shown: {stats}");
    }
    let (_, secs, stats) = headless("mailbox", 60);
    let n = shown(&stats);
    // At least one at every other refresh the run spanned (a loaded
    // machine can starve the presenter for a refresh or two).
    let refreshes = (secs * REFRESH_HZ as f64).floor() as u64;
    let at_least = (refreshes.min(60) / 2).max(1);
    assert!(
        (at_least..=60).contains(&n),
        "mailbox: {n} frames shown in {secs:.3} s ({refreshes} refreshes): {stats}"
    );
}

/// The users' overrides, each with one line when it changes what the
/// application asked for: `SYNCBRIDGE_PRESENT_MODE` makes a FIFO swapchain
/// IMMEDIATE, `SYNCBRIDGE_MIN_IMAGE_COUNT` raises the image count (and the
/// surface's `minImageCount`), `SYNCBRIDGE_FPS_LIMIT` holds an IMMEDIATE
/// application to the rate (30 frames at 20 a second take at least 1.2 s:
/// the frames the images let run ahead come off the 1.5 s of the limit).
#[test]
fn present_mode_image_count_and_fps_overrides() {
    let (out, _, stats) = headless_with("fifo", 20, &[("SYNCBRIDGE_PRESENT_MODE", "immediate")]);
    assert!(
        out.stderr
            .contains("SYNCBRIDGE_PRESENT_MODE: IMMEDIATE instead of the application's FIFO"),
        "{out}"
    );
    assert!(stats.contains("\"present_mode\":\"IMMEDIATE\""), "{stats}");

    let (out, _, _) = headless_with("fifo", 5, &[("SYNCBRIDGE_MIN_IMAGE_COUNT", "6")]);
    assert_eq!(out.value("min_image_count"), "6", "{out}");
    assert_eq!(out.value("images"), "6", "{out}");

    let (out, secs, stats) = headless_with("immediate", 30, &[("SYNCBRIDGE_FPS_LIMIT", "20")]);
    assert!(
        out.stderr
            .contains("SYNCBRIDGE_FPS_LIMIT: at most 20 frames a second are shown"),
        "{out}"
    );
    assert!(
        secs >= 1.2,
        "30 frames under a 20 fps limit in {secs} s:\n{out}"
    );
    let v: serde_json::Value = serde_json::from_str(stats.trim()).expect("JSON");
    let fps = v["fps"].as_f64().unwrap();
    assert!(fps <= 20.5, "{fps} fps shown under a 20 fps limit: {stats}");
    // The frames still waiting for their slot when the swapchain goes are
    // shown at their slots, not dropped.
    assert_eq!(v["frames_presented"], 30, "{stats}");

    let (out, _, stats) = headless_with("fifo", 5, &[("SYNCBRIDGE_PRESENT_MODE", "vsync")]);
    let warnings = out
        .stderr
        .lines()
        .filter(|l| l.contains("SYNCBRIDGE_PRESENT_MODE"))
        .count();
    assert_eq!(warnings, 1, "{out}");
    assert!(stats.contains("\"present_mode\":\"FIFO\""), "{stats}");
}
