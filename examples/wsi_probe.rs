//! A small Vulkan client that drives a swapchain through scenarios the
//! integration tests need (acquire timeouts, recreation, destruction with
//! frames in flight, known colours). It opens its own Wayland window and
//! goes through the real loader, so the layer under test is whatever the
//! environment enables (`VK_INSTANCE_LAYERS`, `VK_LAYER_PATH`).
//!
//! `wsi_probe <scenario> [--frames N] [--mode fifo|mailbox|immediate]
//!  [--color R,G,B] [--size WxH] [--validation] [--threads N]`
//!
//! Reliability scenarios (module `rely`): `threads`, `resize-storm`,
//! `destroy-device-alive`, `bad-input`, `leak`, `leak-recreate`.
//!
//! Prints `probe: key=value` lines and exits non-zero on failure.

#[path = "../tests/common/vkapp.rs"]
mod vkapp;

use ash::vk;
use std::time::{Duration, Instant};
use wayland_client::protocol::{wl_compositor, wl_registry, wl_surface};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

#[derive(Default)]
struct Win {
    compositor: Option<wl_compositor::WlCompositor>,
    wm: Option<xdg_wm_base::XdgWmBase>,
    configured: bool,
}

impl Dispatch<wl_registry::WlRegistry, ()> for Win {
    fn event(
        s: &mut Self,
        r: &wl_registry::WlRegistry,
        ev: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = ev
        {
            match interface.as_str() {
                "wl_compositor" => s.compositor = Some(r.bind(name, version.min(4), qh, ())),
                "xdg_wm_base" => s.wm = Some(r.bind(name, version.min(3), qh, ())),
                _ => {}
            }
        }
    }
}

// Objects whose events the probe has no use for.
wayland_client::delegate_noop!(Win: ignore wl_compositor::WlCompositor);
wayland_client::delegate_noop!(Win: ignore wl_surface::WlSurface);
wayland_client::delegate_noop!(Win: ignore xdg_toplevel::XdgToplevel);

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for Win {
    fn event(
        _: &mut Self,
        wm: &xdg_wm_base::XdgWmBase,
        ev: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = ev {
            wm.pong(serial);
        }
    }
}
impl Dispatch<xdg_surface::XdgSurface, ()> for Win {
    fn event(
        s: &mut Self,
        x: &xdg_surface::XdgSurface,
        ev: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = ev {
            x.ack_configure(serial);
            s.configured = true;
        }
    }
}

struct Opts {
    scenario: String,
    frames: u32,
    mode: vk::PresentModeKHR,
    color: [f32; 3],
    size: (u32, u32),
    validation: bool,
    /// `threads`: how many presenting threads.
    threads: u32,
    /// `slow`: how many clears of a large image precede the last frame.
    slow_clears: u32,
    /// `early-acquire`: the compositor's process, stopped and continued.
    stop_pid: Option<i32>,
    /// `leak-recreate --stop-pid`: for how many of the last recreations.
    stop_last: Option<u32>,
    /// `early-acquire`: `present` (continue the compositor and go on) or
    /// `destroy` (destroy the swapchain with the compositor still stopped).
    then: String,
    /// `--extra-usage BITS`: image usage bits added to the swapchain's
    /// (to ask for what the surface does not offer).
    extra_usage: vk::ImageUsageFlags,
    /// `bench --pace-fps N`: the client starts a frame every 1/N s and
    /// sleeps in between, as a game's frame limiter does (0: flat out).
    pace_fps: u32,
    /// `--minimize`: the window asks to be minimized before the first
    /// frame (`xdg_toplevel.set_minimized`), so the compositor stops
    /// drawing it.
    minimize: bool,
}

fn parse() -> Opts {
    let mut a = std::env::args().skip(1);
    let mut o = Opts {
        scenario: a.next().unwrap_or_else(|| "frames".into()),
        frames: 60,
        mode: vk::PresentModeKHR::FIFO,
        color: [1.0, 0.0, 0.0],
        size: (320, 240),
        validation: false,
        threads: 4,
        slow_clears: 100,
        stop_pid: None,
        stop_last: None,
        then: "present".into(),
        extra_usage: vk::ImageUsageFlags::empty(),
        pace_fps: 0,
        minimize: false,
    };
    while let Some(k) = a.next() {
        match k.as_str() {
            "--frames" => o.frames = a.next().and_then(|v| v.parse().ok()).expect("--frames N"),
            "--mode" => {
                o.mode = match a.next().as_deref() {
                    Some("mailbox") => vk::PresentModeKHR::MAILBOX,
                    Some("immediate") => vk::PresentModeKHR::IMMEDIATE,
                    // VK_EXT_present_mode_fifo_latest_ready (enabled below).
                    Some("fifo_latest_ready") => vk::PresentModeKHR::from_raw(1_000_361_000),
                    _ => vk::PresentModeKHR::FIFO,
                }
            }
            "--color" => {
                let v: Vec<f32> = a
                    .next()
                    .expect("--color R,G,B")
                    .split(',')
                    .map(|x| x.parse().expect("number"))
                    .collect();
                o.color = [v[0], v[1], v[2]];
            }
            "--size" => {
                let v: Vec<u32> = a
                    .next()
                    .expect("--size WxH")
                    .split('x')
                    .map(|x| x.parse().expect("number"))
                    .collect();
                o.size = (v[0], v[1]);
            }
            "--validation" => o.validation = true,
            "--threads" => o.threads = a.next().and_then(|v| v.parse().ok()).expect("--threads N"),
            "--slow-clears" => {
                o.slow_clears = a
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--slow-clears N")
            }
            "--stop-pid" => o.stop_pid = a.next().and_then(|v| v.parse().ok()),
            "--stop-last" => o.stop_last = a.next().and_then(|v| v.parse().ok()),
            "--then" => o.then = a.next().expect("--then present|destroy"),
            "--minimize" => o.minimize = true,
            "--pace-fps" => {
                o.pace_fps = a.next().and_then(|v| v.parse().ok()).expect("--pace-fps N")
            }
            "--extra-usage" => {
                o.extra_usage = vk::ImageUsageFlags::from_raw(
                    a.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--extra-usage BITS"),
                )
            }
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// Validation findings, printed as `probe: validation_message=…`.
static MESSAGES: vkapp::Listener = vkapp::Listener::new("probe: validation_message=", false);

struct Gpu {
    entry: ash::Entry,
    /// `VK_EXT_surface_maintenance1` is enabled.
    maintenance1: bool,
    instance: ash::Instance,
    pd: vk::PhysicalDevice,
    device: ash::Device,
    queue: vk::Queue,
    surface_fn: ash::khr::surface::Instance,
    swapchain_fn: ash::khr::swapchain::Device,
    surface: vk::SurfaceKHR,
    pool: vk::CommandPool,
}

struct Chain {
    handle: vk::SwapchainKHR,
    /// The surface's `minImageCount`, which the swapchain asked for.
    min_image_count: u32,
    images: Vec<vk::Image>,
    cmds: Vec<vk::CommandBuffer>,
}

/// A toplevel window on the probe's display, with its own queue.
struct Window {
    queue: EventQueue<Win>,
    win: Win,
    surface: wl_surface::WlSurface,
    _xdg: xdg_surface::XdgSurface,
    top: xdg_toplevel::XdgToplevel,
}

fn open_window(conn: &Connection, title: &str) -> Window {
    let mut queue: EventQueue<Win> = conn.new_event_queue();
    let qh = queue.handle();
    let _reg = conn.display().get_registry(&qh, ());
    let mut win = Win::default();
    queue.roundtrip(&mut win).expect("roundtrip");
    let surface = win
        .compositor
        .as_ref()
        .expect("wl_compositor")
        .create_surface(&qh, ());
    let xdg = win
        .wm
        .as_ref()
        .expect("xdg_wm_base")
        .get_xdg_surface(&surface, &qh, ());
    let top = xdg.get_toplevel(&qh, ());
    top.set_title(title.into());
    surface.commit();
    while !win.configured {
        queue.blocking_dispatch(&mut win).expect("dispatch");
    }
    Window {
        queue,
        win,
        surface,
        _xdg: xdg,
        top,
    }
}

fn main() {
    let o = parse();
    let conn = Connection::connect_to_env().expect("WAYLAND_DISPLAY");
    let mut window = open_window(&conn, "syncbridge probe");
    if o.minimize {
        window.top.set_minimized();
        window.surface.commit();
        window.queue.roundtrip(&mut window.win).expect("roundtrip");
    }

    // SAFETY: plain Vulkan setup against the real loader.
    let (gpu, app) = unsafe { setup(&conn, &window.surface, o.validation, &o.scenario) };
    let t0 = Instant::now();
    // SAFETY: scenarios use valid handles created above.
    let ok = unsafe { run(&o, &gpu, &mut window.queue, &mut window.win) };
    println!("probe: seconds={:.3}", t0.elapsed().as_secs_f64());
    // SAFETY: teardown in reverse order; the scenario left the device idle
    // unless it tests the opposite.
    unsafe {
        if o.scenario != "destroy-in-flight" {
            gpu.device.device_wait_idle().expect("idle");
        }
        gpu.device.destroy_command_pool(gpu.pool, None);
        gpu.device.destroy_device(None);
        gpu.surface_fn.destroy_surface(gpu.surface, None);
        app.destroy();
    }
    println!("probe: validation_messages={}", MESSAGES.count());
    println!("probe: result={}", if ok { "ok" } else { "fail" });
    std::process::exit(if ok { 0 } else { 1 });
}

unsafe fn setup(
    conn: &Connection,
    surface: &wl_surface::WlSurface,
    validation: bool,
    scenario: &str,
) -> (Gpu, vkapp::App) {
    let present_wait = scenario == "present-wait";
    let maintenance = scenario == "swapchain-maintenance1";
    let mut exts = vec![vk::KHR_SURFACE_NAME, vk::KHR_WAYLAND_SURFACE_NAME];
    // Per-present-mode surface queries, where offered (by the layer, or
    // by the driver).
    let entry = unsafe { ash::Entry::load() }.expect("libvulkan");
    let offered = |name: &std::ffi::CStr| {
        [None, Some(c"VK_LAYER_SYNCBRIDGE_wsi")]
            .iter()
            .any(|layer| vkapp::App::instance_extension_offered(&entry, *layer, name))
    };
    let maintenance1 = offered(vk::EXT_SURFACE_MAINTENANCE1_NAME)
        && offered(vk::KHR_GET_SURFACE_CAPABILITIES2_NAME);
    if maintenance1 {
        exts.push(vk::KHR_GET_SURFACE_CAPABILITIES2_NAME);
        exts.push(vk::EXT_SURFACE_MAINTENANCE1_NAME);
    }
    let mut layers = vec![];
    // PROBE_VALIDATION_IN_ENV: validation is enabled by the environment (to
    // place it above the layer under test); only listen here.
    if validation && std::env::var_os("PROBE_VALIDATION_IN_ENV").is_none() {
        layers.push(c"VK_LAYER_KHRONOS_validation");
    }
    let app = unsafe {
        vkapp::App::new(
            c"wsi_probe",
            vk::API_VERSION_1_2,
            &exts,
            &layers,
            validation.then_some(&MESSAGES),
        )
    }
    .expect("instance");
    let (entry, instance) = (app.entry.clone(), app.instance.clone());
    let pd = unsafe { instance.enumerate_physical_devices() }.expect("devices")[0];
    let surface_fn = ash::khr::surface::Instance::new(&entry, &instance);
    let wl_fn = ash::khr::wayland_surface::Instance::new(&entry, &instance);
    let display = conn.backend().display_ptr();
    let sci = vk::WaylandSurfaceCreateInfoKHR::default()
        .display(display.cast())
        .surface(surface.id().as_ptr().cast());
    let vk_surface = unsafe { wl_fn.create_wayland_surface(&sci, None) }.expect("surface");
    assert!(
        unsafe { surface_fn.get_physical_device_surface_support(pd, 0, vk_surface) }
            .expect("support")
    );
    let mut dexts = vec![vk::KHR_SWAPCHAIN_NAME];
    if std::env::args().any(|a| a == "fifo_latest_ready") {
        dexts.push(c"VK_EXT_present_mode_fifo_latest_ready");
    }
    let mut id_features = vk::PhysicalDevicePresentIdFeaturesKHR::default().present_id(true);
    let mut wait_features = vk::PhysicalDevicePresentWaitFeaturesKHR::default().present_wait(true);
    let mut dci = vk::DeviceCreateInfo::default();
    if present_wait {
        // Ask the implementation (the layer, when enabled) first.
        let mut id_q = vk::PhysicalDevicePresentIdFeaturesKHR::default();
        let mut wait_q = vk::PhysicalDevicePresentWaitFeaturesKHR::default();
        let mut f2 = vk::PhysicalDeviceFeatures2::default()
            .push_next(&mut id_q)
            .push_next(&mut wait_q);
        unsafe { instance.get_physical_device_features2(pd, &mut f2) };
        println!(
            "probe: features present_id={} present_wait={}",
            id_q.present_id, wait_q.present_wait
        );
        dexts.push(vk::KHR_PRESENT_ID_NAME);
        dexts.push(vk::KHR_PRESENT_WAIT_NAME);
        dci = dci
            .push_next(&mut id_features)
            .push_next(&mut wait_features);
    }
    let mut maint_features =
        vk::PhysicalDeviceSwapchainMaintenance1FeaturesEXT::default().swapchain_maintenance1(true);
    if maintenance {
        let mut q = vk::PhysicalDeviceSwapchainMaintenance1FeaturesEXT::default();
        let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut q);
        unsafe { instance.get_physical_device_features2(pd, &mut f2) };
        println!(
            "probe: features swapchain_maintenance1={}",
            q.swapchain_maintenance1
        );
        dexts.push(vk::EXT_SWAPCHAIN_MAINTENANCE1_NAME);
        dci = dci.push_next(&mut maint_features);
    }
    let mut timeline =
        vk::PhysicalDeviceTimelineSemaphoreFeatures::default().timeline_semaphore(true);
    dci = dci.push_next(&mut timeline);
    let (device, queue) = unsafe { app.device(pd, &dexts, dci.p_next) }.expect("device");
    let swapchain_fn = ash::khr::swapchain::Device::new(&instance, &device);
    let pool = unsafe { vkapp::command_pool(&device) };
    let gpu = Gpu {
        entry,
        maintenance1,
        instance,
        pd,
        device,
        queue,
        surface_fn,
        swapchain_fn,
        surface: vk_surface,
        pool,
    };
    (gpu, app)
}

unsafe fn create_chain(
    g: &Gpu,
    o: &Opts,
    size: (u32, u32),
    old: vk::SwapchainKHR,
) -> Result<Chain, vk::Result> {
    let caps = unsafe {
        g.surface_fn
            .get_physical_device_surface_capabilities(g.pd, g.surface)
    }?;
    let formats = unsafe {
        g.surface_fn
            .get_physical_device_surface_formats(g.pd, g.surface)
    }?;
    let format = formats
        .iter()
        .find(|f| f.format == vk::Format::B8G8R8A8_UNORM)
        .copied()
        .unwrap_or(formats[0]);
    let extent = vk::Extent2D {
        width: size.0,
        height: size.1,
    };
    let ci = vk::SwapchainCreateInfoKHR::default()
        .surface(g.surface)
        .min_image_count(caps.min_image_count)
        .image_format(format.format)
        .image_color_space(format.color_space)
        .image_extent(extent)
        .image_array_layers(1)
        .image_usage(
            vk::ImageUsageFlags::COLOR_ATTACHMENT
                | vk::ImageUsageFlags::TRANSFER_DST
                | o.extra_usage,
        )
        .pre_transform(vk::SurfaceTransformFlagsKHR::IDENTITY)
        .composite_alpha(vk::CompositeAlphaFlagsKHR::OPAQUE)
        .present_mode(o.mode)
        .clipped(true)
        .old_swapchain(old);
    let handle = unsafe { g.swapchain_fn.create_swapchain(&ci, None) }?;
    let images = unsafe { g.swapchain_fn.get_swapchain_images(handle) }?;
    let cmds = unsafe {
        g.device.allocate_command_buffers(
            &vk::CommandBufferAllocateInfo::default()
                .command_pool(g.pool)
                .command_buffer_count(images.len() as u32),
        )
    }?;
    Ok(Chain {
        handle,
        min_image_count: caps.min_image_count,
        images,
        cmds,
    })
}

unsafe fn record_clear(g: &Gpu, c: &Chain, i: usize, color: [f32; 3]) {
    // SAFETY: the caller's promise: the command buffer is not in use.
    unsafe {
        vkapp::record_clear(
            &g.device,
            c.cmds[i],
            c.images[i],
            [color[0], color[1], color[2], 1.0],
        )
    };
}

/// Per-frame synchronization objects.
struct FrameSync {
    acquired: vk::Semaphore,
    rendered: vk::Semaphore,
    done: vk::Fence,
    /// Passed to each acquire besides the semaphore, and waited for, with
    /// `PROBE_ACQUIRE_FENCE=1` (null otherwise).
    acquire_fence: vk::Fence,
}

unsafe fn frame_sync(g: &Gpu) -> FrameSync {
    let d = &g.device;
    unsafe {
        FrameSync {
            acquired: d
                .create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
                .expect("sem"),
            rendered: d
                .create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
                .expect("sem"),
            done: d
                .create_fence(
                    &vk::FenceCreateInfo::default().flags(vk::FenceCreateFlags::SIGNALED),
                    None,
                )
                .expect("fence"),
            acquire_fence: if std::env::var_os("PROBE_ACQUIRE_FENCE").is_some() {
                d.create_fence(&vk::FenceCreateInfo::default(), None)
                    .expect("fence")
            } else {
                vk::Fence::null()
            },
        }
    }
}

unsafe fn destroy_sync(g: &Gpu, s: FrameSync) {
    unsafe {
        g.device.destroy_semaphore(s.acquired, None);
        g.device.destroy_semaphore(s.rendered, None);
        g.device.destroy_fence(s.done, None);
        g.device.destroy_fence(s.acquire_fence, None);
    }
}

/// Destroys `old`, just replaced by a swapchain made with it as
/// `oldSwapchain`, after checking that the retired swapchain answers
/// `VK_ERROR_OUT_OF_DATE_KHR` and waiting for its last frame. False (and a
/// `probe:` line) when it did not answer so.
unsafe fn retire_chain(g: &Gpu, s: &FrameSync, old: Chain) -> bool {
    unsafe {
        // An acquire on the retired swapchain (with neither semaphore nor
        // fence) must answer OUT_OF_DATE; it is invalid use, so not while
        // validation above the layer checks the probe's own calls.
        let ok = std::env::var_os("PROBE_VALIDATION_IN_ENV").is_some() || {
            let r = g.swapchain_fn.acquire_next_image(
                old.handle,
                0,
                vk::Semaphore::null(),
                vk::Fence::null(),
            );
            if r.err() != Some(vk::Result::ERROR_OUT_OF_DATE_KHR) {
                println!("probe: retired_acquire={r:?}");
                false
            } else {
                true
            }
        };
        g.device
            .wait_for_fences(&[s.done], true, 5_000_000_000)
            .expect("wait");
        g.device.free_command_buffers(g.pool, &old.cmds);
        g.swapchain_fn.destroy_swapchain(old.handle, None);
        ok
    }
}

/// Acquires, clears and presents one frame. Returns the present result.
unsafe fn one_frame(
    g: &Gpu,
    c: &Chain,
    s: &FrameSync,
    color: [f32; 3],
) -> Result<vk::Result, vk::Result> {
    unsafe { one_frame_slow(g, c, s, color, None) }
}

/// [`one_frame`] whose rendering first runs `slow` (a command buffer of
/// long GPU work), so the frame is still being rendered when presented.
unsafe fn one_frame_slow(
    g: &Gpu,
    c: &Chain,
    s: &FrameSync,
    color: [f32; 3],
    slow: Option<(vk::CommandBuffer, vk::Semaphore)>,
) -> Result<vk::Result, vk::Result> {
    let d = &g.device;
    unsafe {
        d.wait_for_fences(&[s.done], true, 5_000_000_000)?;
        // Long enough for a compositor's first repaint of a new kind of
        // buffer under TCG on a loaded machine (weston 14 GL compiling its
        // shaders on llvmpipe took over 5 s once): an acquire with a
        // semaphore waits for the compositor's release.
        let (i, _sub) = g.swapchain_fn.acquire_next_image(
            c.handle,
            20_000_000_000,
            s.acquired,
            s.acquire_fence,
        )?;
        if s.acquire_fence != vk::Fence::null() {
            d.wait_for_fences(&[s.acquire_fence], true, 5_000_000_000)?;
            d.reset_fences(&[s.acquire_fence])?;
        }
        d.reset_fences(&[s.done])?;
        record_clear(g, c, i as usize, color);
        // With slow work, the batch also waits for a timeline gate (value
        // 1) another thread opens: lavapipe then runs the batch on its queue
        // thread, after vkQueueSubmit returned, as a GPU would.
        let mut waits = vec![s.acquired];
        let mut stages = vec![vk::PipelineStageFlags::TRANSFER];
        let mut values = vec![0u64];
        if let Some((_, gate)) = slow {
            waits.push(gate);
            stages.push(vk::PipelineStageFlags::TRANSFER);
            values.push(1);
        }
        let cbs: Vec<vk::CommandBuffer> = slow
            .map(|(cb, _)| cb)
            .into_iter()
            .chain([c.cmds[i as usize]])
            .collect();
        let sigs = [s.rendered];
        let sig_values = [0u64];
        let mut timeline = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(&values)
            .signal_semaphore_values(&sig_values);
        let mut submit = vk::SubmitInfo::default()
            .wait_semaphores(&waits)
            .wait_dst_stage_mask(&stages)
            .command_buffers(&cbs)
            .signal_semaphores(&sigs);
        if slow.is_some() {
            submit = submit.push_next(&mut timeline);
        }
        d.queue_submit(g.queue, &[submit], s.done)?;
        match present_one(g, c, i, &sigs) {
            Ok(false) => Ok(vk::Result::SUCCESS),
            Ok(true) => Ok(vk::Result::SUBOPTIMAL_KHR),
            Err(e) => Err(e),
        }
    }
}

/// `vkQueuePresentKHR` of image `i` of `c` after `wait`; `Ok(true)` is
/// `VK_SUBOPTIMAL_KHR`.
unsafe fn present_one(
    g: &Gpu,
    c: &Chain,
    i: u32,
    wait: &[vk::Semaphore],
) -> Result<bool, vk::Result> {
    let chains = [c.handle];
    let idx = [i];
    let pi = vk::PresentInfoKHR::default()
        .wait_semaphores(wait)
        .swapchains(&chains)
        .image_indices(&idx);
    // SAFETY: the caller's swapchain, image and semaphores.
    unsafe { g.swapchain_fn.queue_present(g.queue, &pi) }
}

/// Clears image `i` of `c` after `wait` (the acquire semaphore, or
/// nothing), signalling `s.rendered` and `s.done` (waited for and reset
/// first). Returns the semaphore to present after.
unsafe fn render(
    g: &Gpu,
    c: &Chain,
    s: &FrameSync,
    i: u32,
    color: [f32; 3],
    wait: &[vk::Semaphore],
) -> [vk::Semaphore; 1] {
    let d = &g.device;
    // SAFETY: the caller's swapchain, image and per-frame objects.
    unsafe {
        d.wait_for_fences(&[s.done], true, 5_000_000_000)
            .expect("wait");
        d.reset_fences(&[s.done]).expect("reset");
        record_clear(g, c, i as usize, color);
        let stages = vec![vk::PipelineStageFlags::TRANSFER; wait.len()];
        let cbs = [c.cmds[i as usize]];
        let sigs = [s.rendered];
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(wait)
            .wait_dst_stage_mask(&stages)
            .command_buffers(&cbs)
            .signal_semaphores(&sigs);
        d.queue_submit(g.queue, &[submit], s.done).expect("submit");
        sigs
    }
}

fn pump(q: &mut EventQueue<Win>, w: &mut Win) {
    let _ = q.dispatch_pending(w);
    let _ = q.flush();
}

unsafe fn run(o: &Opts, g: &Gpu, q: &mut EventQueue<Win>, w: &mut Win) -> bool {
    match o.scenario.as_str() {
        // Present N frames of one colour; report the rate.
        "frames" => unsafe {
            let fds_before = rely::fd_targets();
            let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            println!("probe: images={}", c.images.len());
            let s = frame_sync(g);
            let t = Instant::now();
            for n in 0..o.frames {
                if let Err(e) = one_frame(g, &c, &s, o.color) {
                    println!("probe: error={e:?} frame={n}");
                    // The swapchain is destroyed after the error as
                    // after any frame: whatever the layer opened for it
                    // must be closed.
                    let _ = g.device.device_wait_idle();
                    destroy_sync(g, s);
                    g.device.free_command_buffers(g.pool, &c.cmds);
                    g.swapchain_fn.destroy_swapchain(c.handle, None);
                    println!(
                        "probe: new_fds_after_error={}",
                        rely::new_fds(&fds_before, &rely::fd_targets())
                    );
                    return false;
                }
                pump(q, w);
            }
            g.device.device_wait_idle().expect("idle");
            println!(
                "probe: fps={:.1}",
                o.frames as f64 / t.elapsed().as_secs_f64()
            );
            // Leave the last frame up for a screenshot.
            if std::env::var_os("PROBE_HOLD_MS").is_some() {
                hold_last_frame();
            }
            destroy_sync(g, s);
            g.device.free_command_buffers(g.pool, &c.cmds);
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            println!(
                "probe: new_fds={}",
                rely::new_fds(&fds_before, &rely::fd_targets())
            );
            true
        },
        // Acquire every image without presenting: timeout 0 answers
        // NOT_READY at once, a finite timeout answers TIMEOUT after it.
        "acquire-timeouts" => unsafe {
            let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            let mut ok = true;
            let mut fences = Vec::new();
            for _ in 0..c.images.len() {
                let f = g
                    .device
                    .create_fence(&vk::FenceCreateInfo::default(), None)
                    .expect("fence");
                match g
                    .swapchain_fn
                    .acquire_next_image(c.handle, 0, vk::Semaphore::null(), f)
                {
                    Ok(_) => {}
                    Err(e) => {
                        println!("probe: unexpected={e:?}");
                        ok = false;
                    }
                }
                fences.push(f);
            }
            // The acquire fences signal without any presentation.
            let r = g.device.wait_for_fences(&fences, true, 2_000_000_000);
            println!("probe: acquire_fences={r:?}");
            ok &= r.is_ok();
            let t = Instant::now();
            let r0 = g.swapchain_fn.acquire_next_image(
                c.handle,
                0,
                vk::Semaphore::null(),
                vk::Fence::null(),
            );
            println!(
                "probe: timeout0={:?} micros={}",
                r0.err(),
                t.elapsed().as_micros()
            );
            ok &=
                r0.err() == Some(vk::Result::NOT_READY) && t.elapsed() < Duration::from_millis(50);
            let t = Instant::now();
            let r1 = g.swapchain_fn.acquire_next_image(
                c.handle,
                100_000_000,
                vk::Semaphore::null(),
                vk::Fence::null(),
            );
            let ms = t.elapsed().as_millis();
            println!("probe: timeout100ms={:?} millis={ms}", r1.err());
            ok &= r1.err() == Some(vk::Result::TIMEOUT) && (90..1000).contains(&ms);
            for f in fences {
                g.device.destroy_fence(f, None);
            }
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            ok
        },
        // Recreate the swapchain with oldSwapchain and a new size every
        // frame; the retired one answers OUT_OF_DATE.
        "recreate" => unsafe {
            let s = frame_sync(g);
            let mut c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            let mut ok = true;
            for n in 0..o.frames {
                if let Err(e) = one_frame(g, &c, &s, o.color) {
                    println!("probe: error={e:?} frame={n}");
                    ok = false;
                    break;
                }
                pump(q, w);
                let size = (o.size.0 + (n % 7) * 16, o.size.1 + (n % 5) * 16);
                let new = create_chain(g, o, size, c.handle).expect("recreate");
                ok &= retire_chain(g, &s, std::mem::replace(&mut c, new));
            }
            g.device.device_wait_idle().expect("idle");
            destroy_sync(g, s);
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            println!("probe: recreated={}", o.frames);
            ok
        },
        // Present frames and destroy the swapchain right away, with the
        // GPU and the compositor still holding them.
        "destroy-in-flight" => unsafe {
            let s = frame_sync(g);
            let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            for _ in 0..o.frames {
                let _ = one_frame(g, &c, &s, o.color).expect("frame");
            }
            let t = Instant::now();
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            println!("probe: destroy_millis={}", t.elapsed().as_millis());
            g.device.device_wait_idle().expect("idle");
            destroy_sync(g, s);
            true
        },
        // Frames of blue, then one frame of `--color` whose rendering takes
        // long (`--slow-clears` clears of a 2048x2048 scratch image first).
        // The window system must not show it before the GPU is done, and
        // must show it after: the test looks at the marks printed.
        "slow" => unsafe {
            use std::io::Write;
            let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            let s = frame_sync(g);
            for _ in 0..o.frames {
                if let Err(e) = one_frame(g, &c, &s, [0.0, 0.0, 1.0]) {
                    println!("probe: error={e:?}");
                    return false;
                }
                pump(q, w);
            }
            g.device.device_wait_idle().expect("idle");
            let hold = Duration::from_millis(hold_ms());
            std::thread::sleep(hold);
            let (scratch, memory, slow) = slow_work(g, o.slow_clears);
            let mut tci =
                vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
            let gate = g
                .device
                .create_semaphore(
                    &vk::SemaphoreCreateInfo::default().push_next(&mut tci),
                    None,
                )
                .expect("gate");
            let t0 = Instant::now();
            // The gate opens from another thread: lavapipe holds a submission
            // that waits for a binary semaphore whose signal is not yet
            // submitted (here: the present's) until it is.
            let opener = {
                let device = g.device.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(200));
                    let info = vk::SemaphoreSignalInfo::default().semaphore(gate).value(1);
                    device.signal_semaphore(&info).expect("open the gate");
                })
            };
            let r = one_frame_slow(g, &c, &s, o.color, Some((slow, gate)));
            println!(
                "probe: slow_present={:?} ms={}",
                r,
                t0.elapsed().as_millis()
            );
            let _ = std::io::stdout().flush();
            g.device
                .wait_for_fences(&[s.done], true, 60_000_000_000)
                .expect("render");
            println!("probe: slow_rendered ms={}", t0.elapsed().as_millis());
            let _ = std::io::stdout().flush();
            g.device.device_wait_idle().expect("idle");
            std::thread::sleep(hold);
            println!("probe: done");
            opener.join().expect("gate thread");
            g.device.destroy_semaphore(gate, None);
            g.device.free_command_buffers(g.pool, &[slow]);
            g.device.destroy_image(scratch, None);
            g.device.free_memory(memory, None);
            destroy_sync(g, s);
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            r.is_ok()
        },
        // Present with VK_KHR_present_id and wait for each frame with
        // VK_KHR_present_wait.
        "present-wait" => unsafe {
            let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            let s = frame_sync(g);
            let wait_fn = ash::khr::present_wait::Device::new(&g.instance, &g.device);
            let mut ok = true;
            let mut waits_us = Vec::new();
            for id in 1..=o.frames as u64 {
                let d = &g.device;
                d.wait_for_fences(&[s.done], true, 5_000_000_000)
                    .expect("fence");
                let (i, _) = g
                    .swapchain_fn
                    .acquire_next_image(c.handle, 5_000_000_000, s.acquired, vk::Fence::null())
                    .expect("acquire");
                let sigs = render(g, &c, &s, i, o.color, &[s.acquired]);
                let chains = [c.handle];
                let idx = [i];
                let ids = [id];
                let mut present_id = vk::PresentIdKHR::default().present_ids(&ids);
                let pi = vk::PresentInfoKHR::default()
                    .wait_semaphores(&sigs)
                    .swapchains(&chains)
                    .image_indices(&idx)
                    .push_next(&mut present_id);
                g.swapchain_fn.queue_present(g.queue, &pi).expect("present");
                let t = Instant::now();
                match wait_fn.wait_for_present(c.handle, id, 2_000_000_000) {
                    Ok(()) => waits_us.push(t.elapsed().as_micros() as u64),
                    Err(e) => {
                        println!("probe: wait_error={e:?} id={id}");
                        ok = false;
                        break;
                    }
                }
                pump(q, w);
            }
            // A wait for a frame never presented times out on time.
            let t = Instant::now();
            let r = wait_fn.wait_for_present(c.handle, o.frames as u64 + 10, 50_000_000);
            let ms = t.elapsed().as_millis();
            println!("probe: future_wait={:?} millis={ms}", r.err());
            ok &= r.err() == Some(vk::Result::TIMEOUT) && (45..1000).contains(&ms);
            waits_us.sort_unstable();
            if !waits_us.is_empty() {
                println!(
                    "probe: present_wait_us_p50={}",
                    waits_us[waits_us.len() / 2]
                );
            }
            println!("probe: waited={}", waits_us.len());
            g.device.device_wait_idle().expect("idle");
            destroy_sync(g, s);
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            ok
        },
        // The benchmark (benches/present.rs): N frames, several in
        // flight, each image's clear recorded once. Times the application
        // thread spends in vkAcquireNextImageKHR and vkQueuePresentKHR,
        // the interval between presents, and fds/RSS after a checkpoint
        // frame (PROBE_CHECKPOINT, default 1000) and at the end.
        // PROBE_TIMES_OUT: a file for the per-frame samples.
        "bench" => unsafe { bench(o, g, q, w) },
        "early-acquire" => unsafe { early_acquire(o, g) },
        "stuck-compositor" => unsafe { stuck_compositor(o, g) },
        "early-acquire-queued" => unsafe { early_acquire_queued(o, g) },
        "swapchain-maintenance1" => unsafe { swapchain_maintenance1(o, g) },
        // VK_EXT_surface_maintenance1: the capabilities of each present
        // mode, one `probe: caps_<mode> …` line each.
        "mode-caps" => unsafe { mode_caps(g) },
        "threads" => unsafe { rely::threads(o, g, w) },
        "resize-storm" => unsafe { rely::resize_storm(o, g, q, w) },
        "destroy-device-alive" => unsafe { rely::destroy_device_alive(o, g, q, w) },
        "bad-input" => unsafe { rely::bad_input(o, g, q, w) },
        "leak" => unsafe { rely::leak(o, g, q, w) },
        "leak-recreate" => unsafe { rely::leak_recreate(o, g, q, w) },
        other => {
            println!("probe: unknown scenario {other}");
            false
        }
    }
}

/// Prints `probe: caps_<mode> min_image_count=N compatible=M,… scaling=S`
/// for every present mode, asked with `VkSurfacePresentModeEXT`.
/// Stops a process (the compositor) and continues it when dropped.
struct Stopped(rustix::process::Pid);

impl Stopped {
    fn new(pid: i32) -> Self {
        let pid = rustix::process::Pid::from_raw(pid).expect("--stop-pid");
        rustix::process::kill_process(pid, rustix::process::Signal::STOP).expect("SIGSTOP");
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(self.0, rustix::process::Signal::CONT);
    }
}

/// With the compositor stopped (so it releases nothing), presents one frame
/// from every image, then acquires once more with a zero timeout and an
/// acquire fence. Reports whether the acquire handed out an image, whether
/// its fence stayed unsignalled while the compositor was stopped, and what
/// happened after (`--then`): the compositor continued and the frame
/// presented, or the swapchain destroyed with the compositor still stopped.
unsafe fn early_acquire(o: &Opts, g: &Gpu) -> bool {
    let d = &g.device;
    unsafe {
        let s = frame_sync(g);
        let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
        let fence = d
            .create_fence(&vk::FenceCreateInfo::default(), None)
            .expect("fence");
        let mut stopped = Some(Stopped::new(o.stop_pid.expect("--stop-pid PID")));
        let mut ok = true;
        for n in 0..c.images.len() {
            if let Err(e) = one_frame(g, &c, &s, o.color) {
                println!("probe: error={e:?} frame={n}");
                ok = false;
            }
        }
        d.wait_for_fences(&[s.done], true, 5_000_000_000)
            .expect("wait");
        // Time for the layer to hand every frame to the (stopped) compositor.
        std::thread::sleep(Duration::from_millis(300));
        let r = g
            .swapchain_fn
            .acquire_next_image(c.handle, 0, vk::Semaphore::null(), fence);
        println!("probe: early_acquire={:?}", r.map(|(i, _)| i));
        if let Ok((i, _)) = r {
            std::thread::sleep(Duration::from_millis(300));
            let st = d.get_fence_status(fence);
            println!("probe: fence_while_stopped={st:?}");
            if o.then == "destroy" {
                let t = Instant::now();
                g.swapchain_fn.destroy_swapchain(c.handle, None);
                println!("probe: destroy_millis={}", t.elapsed().as_millis());
                let r = d.wait_for_fences(&[fence], true, 5_000_000_000);
                println!("probe: fence_after_destroy={r:?}");
                ok &= r.is_ok();
                drop(stopped.take());
                d.destroy_fence(fence, None);
                destroy_sync(g, s);
                return ok;
            }
            let t = Instant::now();
            drop(stopped.take());
            let r = d.wait_for_fences(&[fence], true, 5_000_000_000);
            println!(
                "probe: fence_after_continue={r:?} millis={}",
                t.elapsed().as_millis()
            );
            ok &= r.is_ok();
            ok &= present_early(g, o, &c, &s, i);
        }
        drop(stopped.take());
        ok & frames_then_teardown(g, o, c, s, fence)
    }
}

/// With the compositor stopped (so it releases nothing), `--frames`
/// ordinary frames (acquire with a semaphore, 20 s timeout): past the
/// swapchain's images, each acquire waits for a replaced image's release,
/// which the layer's release timeout gives up on. Reports every frame's
/// result and the slowest frame's time.
unsafe fn stuck_compositor(o: &Opts, g: &Gpu) -> bool {
    unsafe {
        let s = frame_sync(g);
        let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
        println!("probe: images={}", c.images.len());
        let stopped = Stopped::new(o.stop_pid.expect("--stop-pid PID"));
        let mut ok = true;
        let mut slowest = Duration::ZERO;
        let mut done = 0;
        for n in 0..o.frames {
            let t = Instant::now();
            if let Err(e) = one_frame(g, &c, &s, o.color) {
                println!("probe: error={e:?} frame={n}");
                ok = false;
                break;
            }
            slowest = slowest.max(t.elapsed());
            done += 1;
        }
        println!(
            "probe: stuck_frames={done} slowest_frame_millis={}",
            slowest.as_millis()
        );
        drop(stopped);
        g.device.device_wait_idle().expect("idle");
        destroy_sync(g, s);
        g.device.free_command_buffers(g.pool, &c.cmds);
        g.swapchain_fn.destroy_swapchain(c.handle, None);
        ok
    }
}

/// Renders into image `i`, handed out early and now released, and presents
/// it: the compositor must show this frame and the ones after.
unsafe fn present_early(g: &Gpu, o: &Opts, c: &Chain, s: &FrameSync, i: u32) -> bool {
    unsafe {
        let sigs = render(g, c, s, i, o.color, &[]);
        let r = present_one(g, c, i, &sigs);
        println!("probe: early_present={r:?}");
        r.is_ok()
    }
}

/// `--frames` more frames, then the swapchain, `s` and `fence` destroyed.
unsafe fn frames_then_teardown(
    g: &Gpu,
    o: &Opts,
    c: Chain,
    s: FrameSync,
    fence: vk::Fence,
) -> bool {
    let d = &g.device;
    let mut ok = true;
    unsafe {
        for n in 0..o.frames {
            if let Err(e) = one_frame(g, &c, &s, o.color) {
                println!("probe: error={e:?} frame={n}");
                ok = false;
                break;
            }
        }
        d.device_wait_idle().expect("idle");
        d.destroy_fence(fence, None);
        destroy_sync(g, s);
        g.swapchain_fn.destroy_swapchain(c.handle, None);
    }
    ok
}

/// With the compositor running and `SYNCBRIDGE_DEBUG_FENCE_DELAY_MS` set
/// (the layer passes each frame on that long after its rendering is done):
/// one frame shown, then one frame from every other image presented, which
/// stay queued in the layer for a while. Acquires once more with a zero
/// timeout and an acquire fence, and reports whether the image on screen
/// was handed out early, and whether its fence was still unsignalled well
/// within the delay; then presents into it and goes on for `--frames`.
unsafe fn early_acquire_queued(o: &Opts, g: &Gpu) -> bool {
    let d = &g.device;
    let delay = std::env::var("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u64);
    unsafe {
        let s = frame_sync(g);
        let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
        let mut ok = one_frame(g, &c, &s, o.color).is_ok();
        d.wait_for_fences(&[s.done], true, 5_000_000_000)
            .expect("wait");
        // Time for the layer to hand the frame to the compositor.
        std::thread::sleep(Duration::from_millis(delay + 300));
        for n in 1..c.images.len() {
            if let Err(e) = one_frame(g, &c, &s, o.color) {
                println!("probe: error={e:?} frame={n}");
                ok = false;
            }
        }
        let fence = d
            .create_fence(&vk::FenceCreateInfo::default(), None)
            .expect("fence");
        let t = Instant::now();
        let r = g
            .swapchain_fn
            .acquire_next_image(c.handle, 0, vk::Semaphore::null(), fence);
        println!("probe: early_acquire={:?}", r.map(|(i, _)| i));
        std::thread::sleep(Duration::from_millis(delay / 4));
        let st = d.get_fence_status(fence);
        println!(
            "probe: fence_while_queued={st:?} millis={}",
            t.elapsed().as_millis()
        );
        if let Ok((i, _)) = r {
            let r = d.wait_for_fences(&[fence], true, 5_000_000_000);
            println!(
                "probe: fence_after={r:?} millis={}",
                t.elapsed().as_millis()
            );
            ok &= r.is_ok();
            ok &= present_early(g, o, &c, &s, i);
        }
        ok & frames_then_teardown(g, o, c, s, fence)
    }
}

/// `VK_EXT_swapchain_maintenance1`: acquires every image, gives them all
/// back with `vkReleaseSwapchainImagesEXT` and acquires again; then presents
/// `--frames` frames, each with a present fence, waiting on the fence and
/// making a new wait semaphore for the next frame once it signalled (what
/// the fence allows).
unsafe fn swapchain_maintenance1(o: &Opts, g: &Gpu) -> bool {
    let d = &g.device;
    let maint = ash::ext::swapchain_maintenance1::Device::new(&g.instance, d);
    unsafe {
        let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
        let fence = d
            .create_fence(&vk::FenceCreateInfo::default(), None)
            .expect("fence");
        let mut acquired = Vec::new();
        for _ in 0..c.images.len() {
            match g.swapchain_fn.acquire_next_image(
                c.handle,
                1_000_000_000,
                vk::Semaphore::null(),
                fence,
            ) {
                Ok((i, _)) => acquired.push(i),
                Err(e) => println!("probe: error={e:?}"),
            }
            d.wait_for_fences(&[fence], true, 5_000_000_000)
                .expect("acquire fence");
            d.reset_fences(&[fence]).expect("reset");
        }
        let r = g
            .swapchain_fn
            .acquire_next_image(c.handle, 0, vk::Semaphore::null(), fence);
        println!("probe: acquired={}", acquired.len());
        println!("probe: acquire_when_all_acquired={:?}", r.map(|(i, _)| i));
        let info = vk::ReleaseSwapchainImagesInfoEXT::default()
            .swapchain(c.handle)
            .image_indices(&acquired);
        println!("probe: release={:?}", maint.release_swapchain_images(&info));
        let r = g
            .swapchain_fn
            .acquire_next_image(c.handle, 0, vk::Semaphore::null(), fence);
        println!("probe: acquire_after_release={:?}", r.map(|(i, _)| i));
        let mut ok = r.is_ok();
        if let Ok((i, _)) = r {
            d.wait_for_fences(&[fence], true, 5_000_000_000)
                .expect("acquire fence");
            d.reset_fences(&[fence]).expect("reset");
            let info = vk::ReleaseSwapchainImagesInfoEXT::default()
                .swapchain(c.handle)
                .image_indices(std::slice::from_ref(&i));
            ok &= maint.release_swapchain_images(&info).is_ok();
        }
        let mut s = frame_sync(g);
        let present_fence = d
            .create_fence(&vk::FenceCreateInfo::default(), None)
            .expect("fence");
        let mut signalled = 0;
        for n in 0..o.frames {
            d.wait_for_fences(&[s.done], true, 5_000_000_000)
                .expect("wait");
            let (i, _) = match g.swapchain_fn.acquire_next_image(
                c.handle,
                5_000_000_000,
                s.acquired,
                vk::Fence::null(),
            ) {
                Ok(r) => r,
                Err(e) => {
                    println!("probe: error={e:?} frame={n}");
                    ok = false;
                    break;
                }
            };
            let sigs = render(g, &c, &s, i, o.color, &[s.acquired]);
            let chains = [c.handle];
            let idx = [i];
            let fences = [present_fence];
            let mut pf = vk::SwapchainPresentFenceInfoEXT::default().fences(&fences);
            let pi = vk::PresentInfoKHR::default()
                .wait_semaphores(&sigs)
                .swapchains(&chains)
                .image_indices(&idx)
                .push_next(&mut pf);
            if let Err(e) = g.swapchain_fn.queue_present(g.queue, &pi) {
                println!("probe: error={e:?} frame={n}");
                ok = false;
                break;
            }
            if d.wait_for_fences(&[present_fence], true, 5_000_000_000)
                .is_ok()
            {
                signalled += 1;
            }
            d.reset_fences(&[present_fence]).expect("reset");
            // The present no longer uses its wait semaphore: it may go.
            d.destroy_semaphore(s.rendered, None);
            s.rendered = d
                .create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
                .expect("sem");
        }
        println!("probe: present_fences_signalled={signalled}");
        ok &= signalled == o.frames;
        // One more frame with a per-present mode: the swapchain's own when
        // validation watches the application (above the layer), another
        // one otherwise, which the layer must refuse to switch to (every
        // mode is compatible only with itself) and say so.
        let mode = if std::env::var_os("PROBE_VALIDATION_IN_ENV").is_some() {
            o.mode
        } else if o.mode == vk::PresentModeKHR::IMMEDIATE {
            vk::PresentModeKHR::FIFO
        } else {
            vk::PresentModeKHR::IMMEDIATE
        };
        match g.swapchain_fn.acquire_next_image(
            c.handle,
            5_000_000_000,
            vk::Semaphore::null(),
            fence,
        ) {
            Ok((i, _)) => {
                d.wait_for_fences(&[fence], true, 5_000_000_000)
                    .expect("acquire fence");
                let sigs = render(g, &c, &s, i, o.color, &[]);
                let chains = [c.handle];
                let idx = [i];
                let modes = [mode];
                let mut pm = vk::SwapchainPresentModeInfoEXT::default().present_modes(&modes);
                let pi = vk::PresentInfoKHR::default()
                    .wait_semaphores(&sigs)
                    .swapchains(&chains)
                    .image_indices(&idx)
                    .push_next(&mut pm);
                let r = g.swapchain_fn.queue_present(g.queue, &pi);
                println!("probe: present_with_mode={mode:?} result={r:?}");
                ok &= r.is_ok();
            }
            Err(e) => {
                println!("probe: error={e:?}");
                ok = false;
            }
        }
        d.device_wait_idle().expect("idle");
        d.destroy_fence(present_fence, None);
        d.destroy_fence(fence, None);
        destroy_sync(g, s);
        g.swapchain_fn.destroy_swapchain(c.handle, None);
        ok
    }
}

unsafe fn mode_caps(g: &Gpu) -> bool {
    if !g.maintenance1 {
        println!("probe: error=no VK_EXT_surface_maintenance1");
        return false;
    }
    let caps2 = ash::khr::get_surface_capabilities2::Instance::new(&g.entry, &g.instance);
    let modes = unsafe {
        g.surface_fn
            .get_physical_device_surface_present_modes(g.pd, g.surface)
    }
    .expect("present modes");
    for mode in modes {
        let mut ask = vk::SurfacePresentModeEXT::default().present_mode(mode);
        let info = vk::PhysicalDeviceSurfaceInfo2KHR::default()
            .surface(g.surface)
            .push_next(&mut ask);
        // Count first, then fetch, as an application does.
        let mut compat = vk::SurfacePresentModeCompatibilityEXT::default();
        let mut out = vk::SurfaceCapabilities2KHR::default().push_next(&mut compat);
        if let Err(e) =
            unsafe { caps2.get_physical_device_surface_capabilities2(g.pd, &info, &mut out) }
        {
            println!("probe: error={e:?}");
            return false;
        }
        let mut list = vec![vk::PresentModeKHR::from_raw(-1); compat.present_mode_count as usize];
        let mut compat = vk::SurfacePresentModeCompatibilityEXT::default().present_modes(&mut list);
        let mut scaling = vk::SurfacePresentScalingCapabilitiesEXT::default();
        let mut out = vk::SurfaceCapabilities2KHR::default()
            .push_next(&mut compat)
            .push_next(&mut scaling);
        if let Err(e) =
            unsafe { caps2.get_physical_device_surface_capabilities2(g.pd, &info, &mut out) }
        {
            println!("probe: error={e:?}");
            return false;
        }
        let min = out.surface_capabilities.min_image_count;
        let n = compat.present_mode_count as usize;
        let name = |m: vk::PresentModeKHR| format!("{m:?}").to_lowercase();
        println!(
            "probe: caps_{} min_image_count={} compatible={} scaling={}",
            name(mode),
            min,
            list[..n]
                .iter()
                .map(|m| name(*m))
                .collect::<Vec<_>>()
                .join(","),
            scaling.supported_present_scaling.as_raw()
        );
    }
    true
}

/// Keeps the last frame up for `PROBE_HOLD_MS`; with
/// `PROBE_HOLD_UNTIL_EOF=1`, only until stdin is closed (the caller has
/// taken its screenshots) if that comes first.
fn hold_last_frame() {
    let hold = Duration::from_millis(hold_ms());
    if std::env::var_os("PROBE_HOLD_UNTIL_EOF").is_none() {
        std::thread::sleep(hold);
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(hold);
}

/// `PROBE_HOLD_MS`: how long the probe keeps a frame up for screenshots.
fn hold_ms() -> u64 {
    std::env::var("PROBE_HOLD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// A command buffer of long GPU work: `clears` clears of a 2048x2048 image.
unsafe fn slow_work(g: &Gpu, clears: u32) -> (vk::Image, vk::DeviceMemory, vk::CommandBuffer) {
    let d = &g.device;
    unsafe {
        let image = d
            .create_image(
                &vk::ImageCreateInfo::default()
                    .image_type(vk::ImageType::TYPE_2D)
                    .format(vk::Format::R8G8B8A8_UNORM)
                    .extent(vk::Extent3D {
                        width: 2048,
                        height: 2048,
                        depth: 1,
                    })
                    .mip_levels(1)
                    .array_layers(1)
                    .samples(vk::SampleCountFlags::TYPE_1)
                    .tiling(vk::ImageTiling::OPTIMAL)
                    .usage(vk::ImageUsageFlags::TRANSFER_DST),
                None,
            )
            .expect("scratch image");
        let req = d.get_image_memory_requirements(image);
        let ty = req.memory_type_bits.trailing_zeros();
        let memory = d
            .allocate_memory(
                &vk::MemoryAllocateInfo::default()
                    .allocation_size(req.size)
                    .memory_type_index(ty),
                None,
            )
            .expect("scratch memory");
        d.bind_image_memory(image, memory, 0).expect("bind");
        let cb = d
            .allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(g.pool)
                    .command_buffer_count(1),
            )
            .expect("cb")[0];
        d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
            .expect("begin");
        let range = vk::ImageSubresourceRange::default()
            .aspect_mask(vk::ImageAspectFlags::COLOR)
            .level_count(1)
            .layer_count(1);
        let to_dst = vk::ImageMemoryBarrier::default()
            .old_layout(vk::ImageLayout::UNDEFINED)
            .new_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .image(image)
            .subresource_range(range)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED);
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[to_dst],
        );
        for n in 0..clears {
            let v = vk::ClearColorValue {
                float32: [(n % 7) as f32 / 7.0, 0.5, 0.5, 1.0],
            };
            d.cmd_clear_color_image(
                cb,
                image,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                &v,
                &[range],
            );
            let wait = vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE);
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::TRANSFER,
                vk::DependencyFlags::empty(),
                &[wait],
                &[],
                &[],
            );
        }
        d.end_command_buffer(cb).expect("end");
        (image, memory, cb)
    }
}

/// Open file descriptors and resident memory (kB) of this process.
fn fds_and_rss() -> (usize, u64) {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    (fds, rss)
}

/// The `p`-th percentile (nearest rank) of `v`, sorted in place.
fn bench_percentile(v: &mut [u32], p: f64) -> u32 {
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v.get(rank.min(v.len()).max(1) - 1).copied().unwrap_or(0)
}

unsafe fn bench(o: &Opts, g: &Gpu, q: &mut EventQueue<Win>, w: &mut Win) -> bool {
    const IN_FLIGHT: usize = 2;
    let checkpoint: u32 = std::env::var("PROBE_CHECKPOINT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let n = o.frames as usize;
    // The samples are allocated and touched before the first frame, so
    // they do not show as growth between the checkpoints.
    let touched = |n: usize| {
        let mut v = vec![0u32; n];
        v.iter_mut().for_each(|x| *x = u32::MAX);
        v
    };
    let (mut acq_ns, mut pres_ns, mut interval_ns) = (touched(n), touched(n), touched(n));
    // The application thread's CPU time inside vkAcquireNextImageKHR and
    // vkQueuePresentKHR (whoever implements them, driver calls included):
    // what the WSI costs the application, comparable between the driver's
    // own WSI and the layer.
    let mut wsi_cpu_ns = touched(n);
    let thread_cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
    };
    let d = &g.device;
    unsafe {
        let props = g.instance.get_physical_device_properties(g.pd);
        let v = props.driver_version;
        println!(
            "probe: device={} driver_version={}.{}.{}",
            props
                .device_name_as_c_str()
                .unwrap_or_default()
                .to_string_lossy()
                .replace(' ', "_"),
            vk::api_version_major(v),
            vk::api_version_minor(v),
            vk::api_version_patch(v)
        );
        let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
        println!(
            "probe: images={} min_image_count={}",
            c.images.len(),
            c.min_image_count
        );
        for i in 0..c.images.len() {
            record_clear(g, &c, i, o.color);
        }
        let slots: Vec<FrameSync> = (0..IN_FLIGHT).map(|_| frame_sync(g)).collect();
        // Present waits on a semaphore per image: it is reused only once
        // the image comes back.
        let rendered: Vec<vk::Semaphore> = c
            .images
            .iter()
            .map(|_| {
                d.create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
                    .expect("sem")
            })
            .collect();
        let mut at_checkpoint = None;
        let (mut slow_acquires, mut slow_presents) = (0u32, 0u32);
        let mut prev: Option<Instant> = None;
        let start = Instant::now();
        let period = (o.pace_fps > 0).then(|| Duration::from_secs(1) / o.pace_fps);
        for f in 0..n {
            if let Some(p) = period {
                let slot = start + p * f as u32;
                std::thread::sleep(slot.saturating_duration_since(Instant::now()));
            }
            let s = &slots[f % IN_FLIGHT];
            if let Err(e) = d.wait_for_fences(&[s.done], true, 5_000_000_000) {
                println!("probe: error={e:?} frame={f}");
                return false;
            }
            let (c0, t0) = (thread_cpu(), Instant::now());
            let r = g.swapchain_fn.acquire_next_image(
                c.handle,
                5_000_000_000,
                s.acquired,
                vk::Fence::null(),
            );
            let (t1, c1) = (Instant::now(), thread_cpu());
            let i = match r {
                Ok((i, _)) => i as usize,
                Err(e) => {
                    println!("probe: error={e:?} frame={f}");
                    return false;
                }
            };
            d.reset_fences(&[s.done]).expect("reset");
            let waits = [s.acquired];
            let stages = [vk::PipelineStageFlags::TRANSFER];
            let cbs = [c.cmds[i]];
            let sigs = [rendered[i]];
            let submit = vk::SubmitInfo::default()
                .wait_semaphores(&waits)
                .wait_dst_stage_mask(&stages)
                .command_buffers(&cbs)
                .signal_semaphores(&sigs);
            d.queue_submit(g.queue, &[submit], s.done).expect("submit");
            let (c2, t2) = (thread_cpu(), Instant::now());
            let r = present_one(g, &c, i as u32, &sigs);
            let (t3, c3) = (Instant::now(), thread_cpu());
            wsi_cpu_ns[f] = (c1 - c0 + c3 - c2).min(u64::from(u32::MAX)) as u32;
            if let Err(e) = r {
                println!("probe: error={e:?} frame={f}");
                return false;
            }
            let ns = |d: Duration| d.as_nanos().min(u32::MAX as u128) as u32;
            acq_ns[f] = ns(t1 - t0);
            pres_ns[f] = ns(t3 - t2);
            interval_ns[f] = prev.map_or(0, |p| ns(t3 - p));
            prev = Some(t3);
            if t1 - t0 > Duration::from_millis(1) {
                slow_acquires += 1;
            }
            if t3 - t2 > Duration::from_millis(1) {
                slow_presents += 1;
            }
            pump(q, w);
            if f + 1 == checkpoint as usize {
                at_checkpoint = Some(fds_and_rss());
            }
        }
        d.device_wait_idle().expect("idle");
        let secs = start.elapsed().as_secs_f64();
        let (fds_end, rss_end) = fds_and_rss();
        println!("probe: fps={:.1}", n as f64 / secs);
        if let Some((fds, rss)) = at_checkpoint {
            println!("probe: checkpoint={checkpoint} fds={fds} rss_kb={rss}");
        }
        println!("probe: end={n} fds={fds_end} rss_kb={rss_end}");
        println!("probe: slow_acquires={slow_acquires}");
        println!("probe: slow_presents={slow_presents}");
        let wsi_mean =
            wsi_cpu_ns.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / n.max(1) as f64;
        println!(
            "probe: wsi_cpu_us mean={:.1} p50={:.1} p99={:.1}",
            wsi_mean / 1000.0,
            f64::from(bench_percentile(&mut wsi_cpu_ns, 50.0)) / 1000.0,
            f64::from(bench_percentile(&mut wsi_cpu_ns, 99.0)) / 1000.0
        );
        if let Ok(path) = std::env::var("PROBE_TIMES_OUT") {
            // One line per frame: acquire, present, interval (ns).
            let mut text = String::with_capacity(n * 24);
            for f in 0..n {
                use std::fmt::Write;
                let _ = writeln!(text, "{} {} {}", acq_ns[f], pres_ns[f], interval_ns[f]);
            }
            std::fs::write(&path, text).expect("PROBE_TIMES_OUT");
        }
        let mut both: Vec<u32> = acq_ns
            .iter()
            .zip(&pres_ns)
            .map(|(a, p)| a.saturating_add(*p))
            .collect();
        for (name, v) in [
            ("acquire", &mut acq_ns),
            ("present", &mut pres_ns),
            ("acquire_present", &mut both),
        ] {
            println!(
                "probe: {name}_ns p50={} p99={} max={}",
                bench_percentile(v, 50.0),
                bench_percentile(v, 99.0),
                v.iter().max().copied().unwrap_or(0)
            );
        }
        for s in slots {
            destroy_sync(g, s);
        }
        for s in rendered {
            d.destroy_semaphore(s, None);
        }
        g.swapchain_fn.destroy_swapchain(c.handle, None);
        true
    }
}

/// Reliability scenarios: several threads on one queue, resize storms, a
/// device destroyed under live swapchains, bad input, leaks.
mod rely {
    use super::*;
    use ash::vk::Handle;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;

    /// Open file descriptors of this process.
    pub fn fd_count() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Sends every request still in libwayland's buffer (waiting, bounded,
    /// while the socket is full) and waits for the compositor to answer a
    /// round trip: it has then read every request sent before, and
    /// libwayland has closed its dups of the fds they carried. Then 500 ms
    /// more: the compositor may apply the last commit (and release the
    /// buffer it replaced) just after its answer, and the layer closes a
    /// release point's eventfd when the point comes (measured: 36 fds
    /// after 1,000 explicit frames, 35 after 10,000, without the pause).
    pub fn settle(q: &mut EventQueue<Win>, w: &mut Win) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = q.flush().map_err(wayland_client::DispatchError::from);
            let r = r.and_then(|()| q.roundtrip(w).map(|_| ()));
            match r {
                Ok(()) => {
                    std::thread::sleep(Duration::from_millis(500));
                    return true;
                }
                Err(wayland_client::DispatchError::Backend(
                    wayland_client::backend::WaylandError::Io(e),
                )) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    println!("probe: settle_error={e}");
                    return false;
                }
            }
        }
    }

    /// What each open file descriptor points at (`/proc/self/fd`), by fd.
    pub fn fd_targets() -> std::collections::BTreeMap<u32, String> {
        std::fs::read_dir("/proc/self/fd")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let fd = e.file_name().to_str()?.parse().ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                Some((fd, target.to_string_lossy().into_owned()))
            })
            .collect()
    }

    /// The fds open in `after` that were not open (to the same target) in
    /// `before`, as `fd:target` words.
    pub fn new_fds(
        before: &std::collections::BTreeMap<u32, String>,
        after: &std::collections::BTreeMap<u32, String>,
    ) -> String {
        let new: Vec<String> = after
            .iter()
            // The directory handle that listed them.
            .filter(|(fd, t)| before.get(fd) != Some(t) && !t.ends_with("/fd"))
            .map(|(fd, t)| format!("{fd}:{t}"))
            .collect();
        if new.is_empty() {
            "none".into()
        } else {
            new.join(",")
        }
    }

    /// The kinds of fd (targets, the fd numbers aside) of which more are
    /// open in `after` than in `before`, as `target×N` (N more), or `none`:
    /// for a long run, where the layer opens and closes fds all along
    /// (an fd number seen first with one target may later hold another).
    pub fn grown_fds(
        before: &std::collections::BTreeMap<u32, String>,
        after: &std::collections::BTreeMap<u32, String>,
    ) -> String {
        let kinds = |m: &std::collections::BTreeMap<u32, String>| {
            let mut k = std::collections::BTreeMap::<String, usize>::new();
            for t in m.values().filter(|t| !t.ends_with("/fd")) {
                *k.entry(t.clone()).or_default() += 1;
            }
            k
        };
        let (b, a) = (kinds(before), kinds(after));
        let grown: Vec<String> = a
            .iter()
            .filter_map(|(t, &n)| {
                let m = b.get(t).copied().unwrap_or(0);
                (n > m).then(|| format!("{t}×{}", n - m))
            })
            .collect();
        if grown.is_empty() {
            "none".into()
        } else {
            grown.join(",")
        }
    }

    /// A `/proc/self/status` field in KiB (`VmRSS`, `RssAnon`, ...).
    fn status_kib(field: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Resident set size of this process in KiB.
    pub fn rss_kib() -> u64 {
        status_kib("VmRSS")
    }

    /// What the process holds, in KiB: resident, resident anonymous, and
    /// the bytes malloc has handed out and not had back (glibc's
    /// `mallinfo2`: arena chunks in use plus mmapped blocks). RSS alone
    /// cannot tell a leak from an allocator's step (an arena grown, a
    /// freed chunk not trimmed); the heap in use can.
    pub fn memory_sample() -> (u64, u64, u64) {
        (rss_kib(), status_kib("RssAnon"), heap_kib())
    }

    /// The bytes malloc has handed out and not had back, in KiB.
    pub fn heap_kib() -> u64 {
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let m = unsafe { libc::mallinfo2() };
        (m.uordblks + m.hblkhd) as u64 / 1024
    }

    /// How many mappings the process has (a buffer mapped and never
    /// unmapped shows here even when its fd was closed).
    pub fn map_count() -> usize {
        std::fs::read_to_string("/proc/self/maps")
            .map(|m| m.lines().count())
            .unwrap_or(0)
    }

    /// The probe's connection, from one of its objects.
    fn connection(w: &Win) -> Connection {
        let backend = w
            .compositor
            .as_ref()
            .expect("wl_compositor")
            .backend()
            .upgrade()
            .expect("a live connection");
        Connection::from_backend(backend)
    }

    unsafe fn vk_surface(g: &Gpu, conn: &Connection, s: &wl_surface::WlSurface) -> vk::SurfaceKHR {
        let wl_fn = ash::khr::wayland_surface::Instance::new(&g.entry, &g.instance);
        let sci = vk::WaylandSurfaceCreateInfoKHR::default()
            .display(conn.backend().display_ptr().cast())
            .surface(s.id().as_ptr().cast());
        unsafe { wl_fn.create_wayland_surface(&sci, None) }.expect("surface")
    }

    /// The probe's device seen through another surface, with its own
    /// command pool (pools are externally synchronized).
    unsafe fn gpu_for(g: &Gpu, surface: vk::SurfaceKHR) -> Gpu {
        let pool = unsafe {
            g.device.create_command_pool(
                &vk::CommandPoolCreateInfo::default()
                    .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER),
                None,
            )
        }
        .expect("pool");
        Gpu {
            entry: g.entry.clone(),
            maintenance1: g.maintenance1,
            instance: g.instance.clone(),
            pd: g.pd,
            device: g.device.clone(),
            queue: g.queue,
            surface_fn: g.surface_fn.clone(),
            swapchain_fn: g.swapchain_fn.clone(),
            surface,
            pool,
        }
    }

    /// Like `one_frame`, with every use of the shared queue under `lock`.
    unsafe fn locked_frame(
        g: &Gpu,
        c: &Chain,
        s: &FrameSync,
        color: [f32; 3],
        lock: &Mutex<()>,
    ) -> Result<vk::Result, vk::Result> {
        let d = &g.device;
        unsafe {
            d.wait_for_fences(&[s.done], true, 5_000_000_000)?;
            let (i, _) = g.swapchain_fn.acquire_next_image(
                c.handle,
                5_000_000_000,
                s.acquired,
                vk::Fence::null(),
            )?;
            d.reset_fences(&[s.done])?;
            record_clear(g, c, i as usize, color);
            let waits = [s.acquired];
            let stages = [vk::PipelineStageFlags::TRANSFER];
            let cbs = [c.cmds[i as usize]];
            let sigs = [s.rendered];
            let submit = vk::SubmitInfo::default()
                .wait_semaphores(&waits)
                .wait_dst_stage_mask(&stages)
                .command_buffers(&cbs)
                .signal_semaphores(&sigs);
            let chains = [c.handle];
            let idx = [i];
            let pi = vk::PresentInfoKHR::default()
                .wait_semaphores(&sigs)
                .swapchains(&chains)
                .image_indices(&idx);
            let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
            d.queue_submit(g.queue, &[submit], s.done)?;
            match g.swapchain_fn.queue_present(g.queue, &pi) {
                Ok(false) => Ok(vk::Result::SUCCESS),
                Ok(true) => Ok(vk::Result::SUBOPTIMAL_KHR),
                Err(e) => Err(e),
            }
        }
    }

    unsafe fn teardown(g: Gpu, c: Chain, s: FrameSync) {
        unsafe {
            let _ = g.device.wait_for_fences(&[s.done], true, 5_000_000_000);
            destroy_sync(&g, s);
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            g.device.destroy_command_pool(g.pool, None);
            g.surface_fn.destroy_surface(g.surface, None);
        }
    }

    /// `--threads` threads, each with its own window and swapchain, present
    /// `--frames` frames each on the one shared queue (under the
    /// application's lock), while another thread polls its own swapchain
    /// with `vkAcquireNextImageKHR(timeout 0)` and presents what it gets.
    pub unsafe fn threads(o: &Opts, g: &Gpu, w: &Win) -> bool {
        let conn = connection(w);
        let queue_lock = Mutex::new(());
        let done = AtomicBool::new(false);
        let errors = AtomicU64::new(0);
        let presented = AtomicU64::new(0);
        let (acquired, not_ready) = std::thread::scope(|sc| {
            let mut workers = Vec::new();
            for n in 0..o.threads {
                let (conn, lock, errors, presented) = (&conn, &queue_lock, &errors, &presented);
                workers.push(sc.spawn(move || unsafe {
                    let mut win = open_window(conn, &format!("probe thread {n}"));
                    let tg = gpu_for(g, vk_surface(g, conn, &win.surface));
                    let size = (64 + 16 * n, 48 + 16 * n);
                    let c =
                        create_chain(&tg, o, size, vk::SwapchainKHR::null()).expect("swapchain");
                    let s = frame_sync(&tg);
                    let color = [(n % 2) as f32, ((n / 2) % 2) as f32, 1.0];
                    for f in 0..o.frames {
                        match locked_frame(&tg, &c, &s, color, lock) {
                            Ok(_) => {
                                presented.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                println!("probe: thread={n} frame={f} error={e:?}");
                                errors.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                        pump(&mut win.queue, &mut win.win);
                    }
                    teardown(tg, c, s);
                }));
            }
            let (conn, lock, errors, done) = (&conn, &queue_lock, &errors, &done);
            let poller = sc.spawn(move || unsafe {
                let mut win = open_window(conn, "probe acquire poller");
                let tg = gpu_for(g, vk_surface(g, conn, &win.surface));
                let c =
                    create_chain(&tg, o, (48, 48), vk::SwapchainKHR::null()).expect("swapchain");
                let s = frame_sync(&tg);
                let fence = tg
                    .device
                    .create_fence(&vk::FenceCreateInfo::default(), None)
                    .expect("fence");
                let (mut acquired, mut not_ready) = (0u64, 0u64);
                while !done.load(Ordering::Relaxed) {
                    match tg.swapchain_fn.acquire_next_image(
                        c.handle,
                        0,
                        vk::Semaphore::null(),
                        fence,
                    ) {
                        Ok((i, _)) => {
                            acquired += 1;
                            let d = &tg.device;
                            let r = d
                                .wait_for_fences(&[fence, s.done], true, 5_000_000_000)
                                .and_then(|_| d.reset_fences(&[fence, s.done]));
                            if let Err(e) = r {
                                println!("probe: poller error={e:?}");
                                errors.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            record_clear(&tg, &c, i as usize, [1.0, 1.0, 0.0]);
                            let cbs = [c.cmds[i as usize]];
                            let sigs = [s.rendered];
                            let submit = vk::SubmitInfo::default()
                                .command_buffers(&cbs)
                                .signal_semaphores(&sigs);
                            let chains = [c.handle];
                            let idx = [i];
                            let pi = vk::PresentInfoKHR::default()
                                .wait_semaphores(&sigs)
                                .swapchains(&chains)
                                .image_indices(&idx);
                            let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
                            let r = d
                                .queue_submit(tg.queue, &[submit], s.done)
                                .and_then(|_| tg.swapchain_fn.queue_present(tg.queue, &pi));
                            if let Err(e) = r {
                                println!("probe: poller present error={e:?}");
                                errors.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                        Err(vk::Result::NOT_READY) => {
                            not_ready += 1;
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        Err(e) => {
                            println!("probe: poller acquire error={e:?}");
                            errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    pump(&mut win.queue, &mut win.win);
                }
                let _ = tg.device.wait_for_fences(&[s.done], true, 5_000_000_000);
                tg.device.destroy_fence(fence, None);
                teardown(tg, c, s);
                (acquired, not_ready)
            });
            for t in workers {
                if t.join().is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            done.store(true, Ordering::Relaxed);
            poller.join().unwrap_or_else(|_| {
                errors.fetch_add(1, Ordering::Relaxed);
                (0, 0)
            })
        });
        let presented = presented.load(Ordering::Relaxed);
        let errors = errors.load(Ordering::Relaxed);
        println!(
            "probe: threads={} presented={presented} errors={errors}",
            o.threads
        );
        println!("probe: poller_acquired={acquired} poller_not_ready={not_ready}");
        presented == u64::from(o.threads) * u64::from(o.frames) && errors == 0 && acquired > 0
    }

    /// A small deterministic pseudo-random sequence (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn range(&mut self, lo: u32, hi: u32) -> u32 {
            lo + (self.next() % u64::from(hi - lo + 1)) as u32
        }
    }

    /// `--frames` recreations with oldSwapchain, each with a new size (1x1
    /// to 1024x768) and the next present mode, presenting 1–3 frames on
    /// each.
    pub unsafe fn resize_storm(o: &Opts, g: &Gpu, q: &mut EventQueue<Win>, w: &mut Win) -> bool {
        let modes = [
            vk::PresentModeKHR::FIFO,
            vk::PresentModeKHR::MAILBOX,
            vk::PresentModeKHR::IMMEDIATE,
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        unsafe {
            let s = frame_sync(g);
            let mut c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            let (mut frames, mut ok) = (0u64, true);
            for n in 0..o.frames {
                for _ in 0..=(n % 3) {
                    if let Err(e) = one_frame(g, &c, &s, o.color) {
                        println!("probe: error={e:?} recreation={n}");
                        ok = false;
                    }
                    frames += 1;
                }
                pump(q, w);
                if !ok {
                    break;
                }
                let size = if n % 10 == 9 {
                    (1, 1)
                } else {
                    (rng.range(1, 1024), rng.range(1, 768))
                };
                let next = Opts {
                    scenario: o.scenario.clone(),
                    then: o.then.clone(),
                    mode: modes[(n as usize + 1) % modes.len()],
                    ..*o
                };
                let new = match create_chain(g, &next, size, c.handle) {
                    Ok(new) => new,
                    Err(e) => {
                        println!("probe: recreate_error={e:?} size={size:?} recreation={n}");
                        ok = false;
                        break;
                    }
                };
                ok &= retire_chain(g, &s, std::mem::replace(&mut c, new));
            }
            g.device.device_wait_idle().expect("idle");
            destroy_sync(g, s);
            g.device.free_command_buffers(g.pool, &c.cmds);
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            println!(
                "probe: storm_recreations={} storm_frames={frames}",
                o.frames
            );
            ok
        }
    }

    /// A second device presents on the probe's surface (and retires one
    /// swapchain into another), then is destroyed with both swapchains
    /// alive: the layer must tear them down. The surface is then usable by
    /// the probe's own device.
    pub unsafe fn destroy_device_alive(
        o: &Opts,
        g: &Gpu,
        q: &mut EventQueue<Win>,
        w: &mut Win,
    ) -> bool {
        unsafe {
            let fds_before = fd_count();
            let prio = [1.0];
            let qci = [vk::DeviceQueueCreateInfo::default()
                .queue_family_index(0)
                .queue_priorities(&prio)];
            let dexts = [vk::KHR_SWAPCHAIN_NAME.as_ptr()];
            let dci = vk::DeviceCreateInfo::default()
                .queue_create_infos(&qci)
                .enabled_extension_names(&dexts);
            let device = g.instance.create_device(g.pd, &dci, None).expect("device");
            let pool = device
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default()
                        .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER),
                    None,
                )
                .expect("pool");
            let dg = Gpu {
                entry: g.entry.clone(),
                maintenance1: g.maintenance1,
                instance: g.instance.clone(),
                pd: g.pd,
                queue: device.get_device_queue(0, 0),
                surface_fn: g.surface_fn.clone(),
                swapchain_fn: ash::khr::swapchain::Device::new(&g.instance, &device),
                surface: g.surface,
                pool,
                device,
            };
            let s = frame_sync(&dg);
            let c1 = create_chain(&dg, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            for _ in 0..o.frames {
                let _ = one_frame(&dg, &c1, &s, o.color).expect("frame");
                pump(q, w);
            }
            let c2 =
                create_chain(&dg, o, (o.size.0 / 2, o.size.1 / 2), c1.handle).expect("swapchain");
            for _ in 0..o.frames {
                let _ = one_frame(&dg, &c2, &s, o.color).expect("frame");
                pump(q, w);
            }
            let fds_alive = fd_count();
            dg.device.device_wait_idle().expect("idle");
            destroy_sync(&dg, s);
            dg.device.destroy_command_pool(dg.pool, None);
            // Both swapchains are still alive here.
            dg.device.destroy_device(None);
            let fds_after = fd_count();
            println!("probe: fds_before={fds_before} fds_alive={fds_alive} fds_after={fds_after}");
            // The surface is free again for the probe's own device.
            let s = frame_sync(g);
            let c = match create_chain(g, o, o.size, vk::SwapchainKHR::null()) {
                Ok(c) => c,
                Err(e) => {
                    println!("probe: reuse_error={e:?}");
                    return false;
                }
            };
            let mut ok = fds_after == fds_before && fds_alive > fds_before;
            for _ in 0..o.frames {
                if let Err(e) = one_frame(g, &c, &s, o.color) {
                    println!("probe: reuse_frame_error={e:?}");
                    ok = false;
                    break;
                }
                pump(q, w);
            }
            g.device.device_wait_idle().expect("idle");
            destroy_sync(g, s);
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            println!("probe: reused=ok");
            ok
        }
    }

    fn check(name: &str, ok: bool, detail: impl std::fmt::Debug) -> bool {
        println!(
            "probe: check_{name}={} {detail:?}",
            if ok { "ok" } else { "fail" }
        );
        ok
    }

    /// Calls the specification allows to fail, with handles and arguments
    /// that are wrong: each must give an error (not success, not a crash),
    /// and the swapchain must work afterwards.
    pub unsafe fn bad_input(o: &Opts, g: &Gpu, q: &mut EventQueue<Win>, w: &mut Win) -> bool {
        let mut ok = true;
        let fds_before = fd_count();
        let targets_before = fd_targets();
        unsafe {
            let sf = &g.swapchain_fn;
            // 1. Swapchain handles the layer never made, or destroyed.
            for (name, raw) in [
                ("null", 0u64),
                ("garbage", 0xdead_beef_0000_u64),
                ("layer_range", 0x5b5b_0000_dead_0000_u64),
            ] {
                let h = vk::SwapchainKHR::from_raw(raw);
                let r = sf.acquire_next_image(h, 0, vk::Semaphore::null(), vk::Fence::null());
                ok &= check(&format!("acquire_{name}_swapchain"), r.is_err(), r);
                let r = sf.get_swapchain_images(h);
                ok &= check(&format!("images_{name}_swapchain"), r.is_err(), r);
            }
            let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            let stale = create_chain(g, o, o.size, c.handle).expect("swapchain");
            sf.destroy_swapchain(stale.handle, None);
            g.device.free_command_buffers(g.pool, &stale.cmds);
            let r =
                sf.acquire_next_image(stale.handle, 0, vk::Semaphore::null(), vk::Fence::null());
            ok &= check("acquire_destroyed_swapchain", r.is_err(), r);
            // Destroying it again is ignored, not passed to the driver.
            sf.destroy_swapchain(stale.handle, None);
            ok &= check("destroy_destroyed_swapchain", true, ());
            g.device.free_command_buffers(g.pool, &c.cmds);
            sf.destroy_swapchain(c.handle, None);

            // 2. Presenting an image that was not acquired.
            let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            for index in [0u32, 1, 99, u32::MAX] {
                let chains = [c.handle];
                let idx = [index];
                let pi = vk::PresentInfoKHR::default()
                    .swapchains(&chains)
                    .image_indices(&idx);
                let r = sf.queue_present(g.queue, &pi);
                ok &= check(&format!("present_unacquired_{index}"), r.is_err(), r);
            }
            // Presenting the same image twice.
            let s = frame_sync(g);
            ok &= check(
                "frame_after_bad_presents",
                true,
                one_frame(g, &c, &s, o.color),
            );
            g.device
                .wait_for_fences(&[s.done], true, 5_000_000_000)
                .expect("wait");
            // The swapchain still works.
            let mut frames_ok = true;
            for _ in 0..o.frames {
                frames_ok &= one_frame(g, &c, &s, o.color).is_ok();
                pump(q, w);
            }
            ok &= check("frames_after_bad_input", frames_ok, o.frames);
            g.device.device_wait_idle().expect("idle");
            destroy_sync(g, s);
            g.device.free_command_buffers(g.pool, &c.cmds);
            sf.destroy_swapchain(c.handle, None);

            // 3. Surfaces: a destroyed one and one from the layer's range
            // that was never made, in every query and in swapchain
            // creation.
            let conn = connection(w);
            let win = open_window(&conn, "probe bad input");
            let destroyed = vk_surface(g, &conn, &win.surface);
            g.surface_fn.destroy_surface(destroyed, None);
            for (name, s) in [
                ("destroyed", destroyed),
                (
                    "layer_range",
                    vk::SurfaceKHR::from_raw(0x5b5b_0000_dead_0001),
                ),
            ] {
                let sfn = &g.surface_fn;
                let r = sfn.get_physical_device_surface_capabilities(g.pd, s);
                ok &= check(&format!("capabilities_{name}_surface"), r.is_err(), r);
                let r = sfn.get_physical_device_surface_formats(g.pd, s);
                ok &= check(&format!("formats_{name}_surface"), r.is_err(), r);
                let r = sfn.get_physical_device_surface_present_modes(g.pd, s);
                ok &= check(&format!("present_modes_{name}_surface"), r.is_err(), r);
                let r = sfn.get_physical_device_surface_support(g.pd, 0, s);
                ok &= check(&format!("support_{name}_surface"), r.is_err(), r);
                let stale_g = Gpu {
                    entry: g.entry.clone(),
                    instance: g.instance.clone(),
                    device: g.device.clone(),
                    surface_fn: g.surface_fn.clone(),
                    swapchain_fn: g.swapchain_fn.clone(),
                    surface: s,
                    ..*g
                };
                let r = create_chain(&stale_g, o, o.size, vk::SwapchainKHR::null());
                ok &= check(
                    &format!("create_swapchain_{name}_surface"),
                    r.is_err(),
                    r.as_ref().err(),
                );
                sfn.destroy_surface(s, None);
                ok &= check(&format!("destroy_{name}_surface"), true, ());
            }

            // 4. vkCreateWaylandSurfaceKHR without a display or surface.
            let wl_fn = ash::khr::wayland_surface::Instance::new(&g.entry, &g.instance);
            let display = conn.backend().display_ptr();
            for (name, d, s) in [
                (
                    "null_display",
                    std::ptr::null_mut(),
                    win.surface.id().as_ptr(),
                ),
                ("null_surface", display, std::ptr::null_mut()),
            ] {
                let sci = vk::WaylandSurfaceCreateInfoKHR::default()
                    .display(d.cast())
                    .surface(s.cast());
                let r = wl_fn.create_wayland_surface(&sci, None);
                ok &= check(&format!("create_surface_{name}"), r.is_err(), r);
            }
        }
        let fds_after = fd_count();
        // What any fd opened meanwhile points at (the check's evidence).
        println!("probe: new_fds={}", new_fds(&targets_before, &fd_targets()));
        ok &= check(
            "fds_unchanged",
            fds_after <= fds_before,
            (fds_before, fds_after),
        );
        ok
    }

    /// `--frames` frames on one swapchain; fds and RSS after the first
    /// 1,000 and at the end, each once the compositor has read every
    /// request ([`settle`]), and the kinds of fd of which more are open at
    /// the end than after the 1,000th frame (`new_fds`, [`grown_fds`]).
    pub unsafe fn leak(o: &Opts, g: &Gpu, q: &mut EventQueue<Win>, w: &mut Win) -> bool {
        unsafe {
            let c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            let s = frame_sync(g);
            let (mut fds0, mut rss0) = (0, 0);
            let (mut heap0, mut maps0) = (0, 0);
            let mut targets0 = fd_targets();
            let mut samples = Vec::new();
            for n in 0..o.frames {
                if let Err(e) = one_frame(g, &c, &s, o.color) {
                    println!("probe: error={e:?} frame={n}");
                    return false;
                }
                pump(q, w);
                if n + 1 == 1000.min(o.frames) {
                    g.device.device_wait_idle().expect("idle");
                    settle(q, w);
                    (fds0, rss0) = (fd_count(), rss_kib());
                    (heap0, maps0) = (heap_kib(), map_count());
                    targets0 = fd_targets();
                }
                if (n + 1) % 500 == 0 {
                    let (rss, anon, heap) = memory_sample();
                    samples.push(format!("{}:{rss}:{anon}:{heap}", n + 1));
                }
            }
            g.device.device_wait_idle().expect("idle");
            let settled = settle(q, w);
            let (fds1, rss1) = (fd_count(), rss_kib());
            let (heap1, maps1) = (heap_kib(), map_count());
            println!("probe: leak_frames={} fds_1000={fds0} fds_end={fds1} rss_kib_1000={rss0} rss_kib_end={rss1} settled={settled}", o.frames);
            println!("probe: heap_kib_1000={heap0} heap_kib_end={heap1} maps_1000={maps0} maps_end={maps1}");
            // frame:rss:rss_anon:heap_in_use, KiB, every 500 frames.
            println!("probe: memory_samples={}", samples.join(","));
            println!("probe: new_fds={}", grown_fds(&targets0, &fd_targets()));
            destroy_sync(g, s);
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            true
        }
    }

    /// `--frames` recreations with oldSwapchain (one frame each); fds and
    /// RSS after the first 100 and at the end, and the kinds of fd of which
    /// more are open at the end than at the 100th (`new_fds`,
    /// [`grown_fds`]). The end's count is taken
    /// once every request has reached the compositor ([`settle`]): a
    /// request waiting in libwayland's buffer (the compositor reads
    /// slowly) holds a dup of each fd it carries until it is sent. With
    /// `--stop-pid` the compositor is stopped for the last `--stop-last`
    /// recreations (default a third), so that buffer fills (`fds_stopped`:
    /// the count before it is continued and the requests go).
    pub unsafe fn leak_recreate(o: &Opts, g: &Gpu, q: &mut EventQueue<Win>, w: &mut Win) -> bool {
        unsafe {
            let s = frame_sync(g);
            let mut c = create_chain(g, o, o.size, vk::SwapchainKHR::null()).expect("swapchain");
            let (mut fds0, mut rss0) = (0, 0);
            let (mut heap0, mut maps0) = (0, 0);
            let mut targets0 = fd_targets();
            let stop_at = o
                .stop_pid
                .map(|_| o.frames - o.stop_last.unwrap_or(o.frames / 3).min(o.frames));
            let mut stopped = None;
            for n in 0..o.frames {
                if Some(n) == stop_at {
                    stopped = Some(Stopped::new(o.stop_pid.expect("--stop-pid")));
                }
                if let Err(e) = one_frame(g, &c, &s, o.color) {
                    println!("probe: error={e:?} recreation={n}");
                    return false;
                }
                pump(q, w);
                let size = (o.size.0 + (n % 3) * 8, o.size.1 + (n % 2) * 8);
                let new = create_chain(g, o, size, c.handle).expect("recreate");
                g.device
                    .wait_for_fences(&[s.done], true, 5_000_000_000)
                    .expect("wait");
                g.device.free_command_buffers(g.pool, &c.cmds);
                g.swapchain_fn.destroy_swapchain(c.handle, None);
                c = new;
                if n + 1 == 100.min(o.frames) {
                    settle(q, w);
                    (fds0, rss0) = (fd_count(), rss_kib());
                    (heap0, maps0) = (heap_kib(), map_count());
                    targets0 = fd_targets();
                }
            }
            g.device.device_wait_idle().expect("idle");
            if let Some(stopped) = stopped.take() {
                println!("probe: fds_stopped={}", fd_count());
                drop(stopped);
            }
            let settled = settle(q, w);
            let (fds1, rss1) = (fd_count(), rss_kib());
            let (heap1, maps1) = (heap_kib(), map_count());
            println!("probe: recreations={} fds_100={fds0} fds_end={fds1} rss_kib_100={rss0} rss_kib_end={rss1} settled={settled}", o.frames);
            println!("probe: heap_kib_100={heap0} heap_kib_end={heap1} maps_100={maps0} maps_end={maps1}");
            println!("probe: new_fds={}", grown_fds(&targets0, &fd_targets()));
            destroy_sync(g, s);
            g.device.free_command_buffers(g.pool, &c.cmds);
            g.swapchain_fn.destroy_swapchain(c.handle, None);
            true
        }
    }
}
