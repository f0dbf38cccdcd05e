//! The X11 backend against real programs on a real X server (Xvfb): vkcube
//! through the layer, an xcb and an Xlib client that clear to a known
//! colour, a resize, and the server dying under a running client.
//!
//! Vulkan work runs in child processes (this binary re-executed with one
//! `#[ignore]`d test selected), since the loader reads process-global
//! environment variables and tests run on parallel threads.

mod common;

use ash::vk;
use common::{child_command, clean_command, profile_dir, Manifests, Xvfb};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::xcb_ffi::XCBConnection;

// ---------------------------------------------------------------- helpers

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A child process killed when dropped (a failing assertion must not leave
/// it running).
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A command for `program` through the layer on the X server `x`.
fn through_layer(program: impl AsRef<std::ffi::OsStr>, m: &Manifests, x: &Xvfb) -> Command {
    let mut cmd = clean_command(program, m);
    x11_layer_env(&mut cmd, m, x);
    cmd
}

/// This test binary, running only `child` (an ignored test), through the
/// layer on `x`.
fn child_cmd(child: &str, m: &Manifests, x: &Xvfb) -> Command {
    let mut cmd = child_command(child, m);
    x11_layer_env(&mut cmd, m, x);
    cmd
}

fn x11_layer_env(cmd: &mut Command, m: &Manifests, x: &Xvfb) {
    m.enable_layer(cmd);
    cmd.env("DISPLAY", &x.display).env("SYNCBRIDGE_LOG", "info");
}

fn stats_field(line: &str, key: &str) -> Option<f64> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The tools these tests drive; a missing one fails the test (as in the
/// other suites) rather than letting it pass unrun.
fn require_tools() {
    for tool in ["Xvfb", "vkcube", "import", "convert"] {
        assert!(
            have(tool),
            "{tool} is not installed: run tests/install-deps.sh"
        );
    }
}

// ---------------------------------------------------------------- vkcube

#[test]
fn vkcube_presents_through_the_layer() {
    require_tools();
    let x = Xvfb::start();
    let m = Manifests::new();
    let stats = m.dir.path().join("stats.jsonl");
    let mut cmd = through_layer("vkcube", &m, &x);
    cmd.args(["--c", "200"]);
    cmd.env("SYNCBRIDGE_STATS", &stats);
    let started = Instant::now();
    let out = cmd.output().expect("vkcube runs");
    let secs = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    eprintln!("{log}");
    assert!(out.status.success(), "vkcube failed: {:?}", out.status);
    assert!(
        log.lines()
            .any(|l| l.contains("swapchain") && l.contains(" on xcb")),
        "the layer did not make the swapchain"
    );
    assert!(log.contains("x11: window"), "no X11 path logged");
    let line = std::fs::read_to_string(&stats).expect("stats written");
    let line = line.lines().last().unwrap_or_default();
    eprintln!("stats: {line}  ({secs:.2} s)");
    let frames = stats_field(line, "frames_presented").expect("frames_presented");
    assert!(frames >= 190.0, "only {frames} frames presented");
    assert!(line.contains("\"platform\":\"xcb\""));
}

#[test]
fn vkcube_screenshot_shows_the_cube() {
    cube_on_screen("x11-vkcube", &[]);
}

/// `SYNCBRIDGE_IMAGES=copy`: images in the driver's own layout, copied into
/// the MIT-SHM segment by the layer's present; the cube is on the screen.
#[test]
fn vkcube_on_the_copy_path_shows_the_cube() {
    cube_on_screen("x11-vkcube-copy", &[("SYNCBRIDGE_IMAGES", "copy")]);
}

/// vkcube through the layer with `env`; a screenshot of the root window
/// must show the cube's teal and grey in the middle.
fn cube_on_screen(name: &str, env: &[(&str, &str)]) {
    require_tools();
    let x = Xvfb::start();
    let m = Manifests::new();
    let mut cmd = through_layer("vkcube", &m, &x);
    cmd.args(["--c", "100000"])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let cube = Reaper(Some(cmd.spawn().expect("vkcube runs")));
    std::thread::sleep(Duration::from_secs(3));
    let png = profile_dir().join(format!("{name}.png"));
    let ok = Command::new("import")
        .env("DISPLAY", &x.display)
        .args(["-window", "root"])
        .arg(format!("png:{}", png.display()))
        .status()
        .unwrap();
    assert!(ok.success(), "import failed");
    drop(cube);
    let raw = Command::new("convert")
        .arg(&png)
        .args(["-depth", "8", "rgb:-"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(raw.len(), 640 * 480 * 3, "unexpected screenshot size");
    let (mut teal, mut grey, mut total) = (0, 0, 0);
    for y in 140..340 {
        for x in 220..420 {
            let p = &raw[(y * 640 + x) * 3..][..3];
            let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
            total += 1;
            if g > r + 25 && b > r + 25 {
                teal += 1;
            } else if (r - g).abs() < 12 && (g - b).abs() < 12 && (50..230).contains(&r) {
                grey += 1;
            }
        }
    }
    eprintln!(
        "centre: {teal} teal, {grey} grey of {total} pixels; saved {}",
        png.display()
    );
    assert!(teal * 50 > total, "too few teal pixels: {teal}/{total}");
    assert!(grey * 5 > total, "too few grey pixels: {grey}/{total}");
}

// ---------------------------------------------------------------- own clients

/// Runs a child client and returns (success, stdout, stderr).
fn run_child(child: &str, x: &Xvfb, envs: &[(&str, &str)]) -> (bool, String, String) {
    let m = Manifests::new();
    let mut cmd = child_cmd(child, &m, x);
    cmd.envs(envs.iter().copied());
    let out = cmd.output().unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("--- {child} stdout\n{o}\n--- stderr\n{e}");
    (out.status.success(), o, e)
}

/// A client on `wsi` (xcb or xlib) clears its window to a colour; the
/// window's pixels must be that colour.
fn client_clears_to_a_colour(wsi: &str) {
    require_tools();
    let x = Xvfb::start();
    let (ok, out, err) = run_child("child_client", &x, &[("SB_WSI", wsi), ("SB_MODE", "clear")]);
    assert!(ok, "child failed");
    assert!(out.contains("PIXELS OK"), "window does not show the colour");
    assert!(err.contains(&format!(" on {wsi}")));
}

#[test]
fn xcb_client_clears_to_a_colour() {
    client_clears_to_a_colour("xcb");
}

#[test]
fn xlib_client_clears_to_a_colour() {
    client_clears_to_a_colour("xlib");
}

/// The XCB client on the copy path, with the layer's plan line saying so.
#[test]
fn xcb_client_clears_to_a_colour_on_the_copy_path() {
    require_tools();
    let x = Xvfb::start();
    let (ok, out, err) = run_child(
        "child_client",
        &x,
        &[
            ("SB_WSI", "xcb"),
            ("SB_MODE", "clear"),
            ("SYNCBRIDGE_IMAGES", "copy"),
        ],
    );
    assert!(ok, "child failed");
    assert!(out.contains("PIXELS OK"), "window does not show the colour");
    assert!(err.contains("images copy (SYNCBRIDGE_IMAGES)"), "{err}");
}

/// Present's `CompleteNotify` as presentation feedback: with the statistics
/// on, every frame is followed by a `NotifyMSC` (also in IMMEDIATE, which
/// has no frame events) whose completion at the next vblank is the frame's
/// display time. Each of the client's frames waits for the queue, so
/// nearly all are reported shown (the last may be in flight at teardown),
/// none skipped, with a present-to-display time of milliseconds.
#[test]
fn present_complete_notify_reports_frames_shown() {
    require_tools();
    let x = Xvfb::start();
    let dir = std::env::temp_dir().join(format!("sb-x11-feedback-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // FIFO_RELAXED on shared memory is FIFO whose late frame is put at
    // once (as every frame is: ShmPutImage does not wait for a vblank).
    for mode in ["fifo", "fifo_relaxed", "immediate"] {
        let stats = dir.join(format!("{mode}.jsonl"));
        let _ = std::fs::remove_file(&stats);
        let (ok, _, err) = run_child(
            "child_client",
            &x,
            &[
                ("SB_WSI", "xcb"),
                ("SB_MODE", "clear"),
                ("SYNCBRIDGE_PRESENT_MODE", mode),
                ("SYNCBRIDGE_STATS", stats.to_str().unwrap()),
            ],
        );
        assert!(ok, "child failed ({mode})");
        assert!(err.contains("Present NotifyMSC"), "{err}");
        let line = std::fs::read_to_string(&stats).unwrap();
        println!("{mode}: {line}");
        let f = |k: &str| stats_field(&line, k).unwrap_or_else(|| panic!("{k}: {line}"));
        assert_eq!(f("frames_presented"), 30.0, "{line}");
        assert!(f("frames_displayed") >= 28.0, "{mode}: {line}");
        assert_eq!(f("frames_discarded"), 0.0, "{mode}: {line}");
        let at = line.find("\"display_latency_us\"").expect("latency");
        let p50 = stats_field(&line[at..], "p50").expect("p50");
        assert!(
            (100.0..200_000.0).contains(&p50),
            "{mode}: present-to-display p50 {p50} us: {line}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resize_gives_out_of_date_and_recreation_works() {
    require_tools();
    let x = Xvfb::start();
    let (ok, out, _) = run_child(
        "child_client",
        &x,
        &[("SB_WSI", "xcb"), ("SB_MODE", "resize")],
    );
    assert!(ok, "child failed");
    assert!(
        out.contains("RESIZED ERROR_OUT_OF_DATE_KHR") || out.contains("RESIZED SUBOPTIMAL_KHR"),
        "no OUT_OF_DATE/SUBOPTIMAL after the resize"
    );
    assert!(out.contains("RECREATED 400x300"));
    assert!(out.contains("PIXELS OK"));
}

#[test]
fn server_death_is_an_error_not_a_hang() {
    require_tools();
    let mut x = Xvfb::start();
    let m = Manifests::new();
    let mut cmd = child_cmd("child_client", &m, &x);
    cmd.envs([("SB_WSI", "xcb"), ("SB_MODE", "forever")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut reaper = Reaper(Some(cmd.spawn().unwrap()));
    let child = reaper.0.as_mut().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        seen.push(l.clone());
        if l == "FRAME 30" {
            break;
        }
    }
    assert!(seen.iter().any(|l| l == "FRAME 30"), "child: {seen:?}");
    let killed = Instant::now();
    x.kill();
    let reader = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "the client hangs after the X server died"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest = reader.join().unwrap();
    eprintln!(
        "child ended {:?} after the server died: {status:?}, {:?}",
        killed.elapsed(),
        rest.iter().rev().take(3).collect::<Vec<_>>()
    );
    assert!(
        rest.iter().any(|l| l.starts_with("ERROR")),
        "the client saw no error"
    );
}

// ---------------------------------------------------------------- the child

/// The validation layer's findings (`SB_VALIDATION=1`).
static VALIDATION: common::vkapp::Listener =
    common::vkapp::Listener::new("probe: validation_message=", false);

/// The colour the clients clear to (B8G8R8A8_UNORM, exact in 8 bits).
const COLOUR: [f32; 4] = [1.0, 0.0, 1.0, 1.0];

struct Xlib {
    _lib: libloading::Library,
    dpy: *mut std::ffi::c_void,
}

/// Opens an Xlib display and maps a window on it.
fn xlib_window(w: u32, h: u32) -> (Xlib, u32) {
    type OpenDisplay = unsafe extern "C" fn(*const i8) -> *mut std::ffi::c_void;
    type DefaultRoot = unsafe extern "C" fn(*mut std::ffi::c_void) -> u64;
    type CreateSimple =
        unsafe extern "C" fn(*mut std::ffi::c_void, u64, i32, i32, u32, u32, u32, u64, u64) -> u64;
    type MapWindow = unsafe extern "C" fn(*mut std::ffi::c_void, u64) -> i32;
    type Sync = unsafe extern "C" fn(*mut std::ffi::c_void, i32) -> i32;
    // SAFETY: libX11's documented C signatures.
    unsafe {
        let lib = libloading::Library::new("libX11.so.6").expect("libX11");
        let dpy = lib.get::<OpenDisplay>(b"XOpenDisplay\0").unwrap()(std::ptr::null());
        assert!(!dpy.is_null(), "XOpenDisplay failed");
        let root = lib.get::<DefaultRoot>(b"XDefaultRootWindow\0").unwrap()(dpy);
        let win = lib.get::<CreateSimple>(b"XCreateSimpleWindow\0").unwrap()(
            dpy, root, 0, 0, w, h, 0, 0, 0xffffff,
        );
        lib.get::<MapWindow>(b"XMapWindow\0").unwrap()(dpy, win);
        lib.get::<Sync>(b"XSync\0").unwrap()(dpy, 0);
        (Xlib { _lib: lib, dpy }, win as u32)
    }
}

/// Checks the window's pixels with GetImage on a separate connection.
fn window_has_colour(window: u32, w: u16, h: u16) -> bool {
    let (c, _) = XCBConnection::connect(None).unwrap();
    let img = c
        .get_image(xproto::ImageFormat::Z_PIXMAP, window, 0, 0, w, h, !0)
        .unwrap()
        .reply()
        .unwrap();
    let want = [255u8, 0, 255];
    let bad = img
        .data
        .chunks_exact(4)
        .filter(|p| [p[2], p[1], p[0]] != want)
        .count();
    println!("pixels: {bad} of {} differ", img.data.len() / 4);
    bad == 0
}

struct Gpu {
    app: Option<common::vkapp::App>,
    surface_fn: ash::khr::surface::Instance,
    surface: vk::SurfaceKHR,
    pd: vk::PhysicalDevice,
    device: ash::Device,
    queue: vk::Queue,
    sc_fn: ash::khr::swapchain::Device,
    pool: vk::CommandPool,
}

struct Chain {
    sc: vk::SwapchainKHR,
    extent: vk::Extent2D,
    cmds: Vec<vk::CommandBuffer>,
}

impl Gpu {
    fn new(wsi: &str, conn: *mut std::ffi::c_void, window: u32) -> Gpu {
        // SAFETY: plain Vulkan setup with valid create infos; the connection
        // and window outlive the surface.
        unsafe {
            let exts = [
                ash::khr::surface::NAME,
                if wsi == "xlib" {
                    ash::khr::xlib_surface::NAME
                } else {
                    ash::khr::xcb_surface::NAME
                },
            ];
            // SB_VALIDATION=1: the Khronos validation layer below the
            // layer under test, its findings printed and counted as the
            // probe's are (`probe: validation_message=`).
            let validation = std::env::var_os("SB_VALIDATION").is_some();
            let layers: &[&std::ffi::CStr] = if validation {
                &[c"VK_LAYER_KHRONOS_validation"]
            } else {
                &[]
            };
            let app = common::vkapp::App::new(
                c"x11-test",
                vk::API_VERSION_1_1,
                &exts,
                layers,
                validation.then_some(&VALIDATION),
            )
            .expect("instance");
            let (entry, instance) = (&app.entry, &app.instance);
            let surface = if wsi == "xlib" {
                ash::khr::xlib_surface::Instance::new(entry, instance)
                    .create_xlib_surface(
                        &vk::XlibSurfaceCreateInfoKHR::default()
                            .dpy(conn.cast())
                            .window(u64::from(window)),
                        None,
                    )
                    .expect("xlib surface")
            } else {
                ash::khr::xcb_surface::Instance::new(entry, instance)
                    .create_xcb_surface(
                        &vk::XcbSurfaceCreateInfoKHR::default()
                            .connection(conn)
                            .window(window),
                        None,
                    )
                    .expect("xcb surface")
            };
            let surface_fn = ash::khr::surface::Instance::new(entry, instance);
            let pd = app.physical_device();
            assert!(surface_fn
                .get_physical_device_surface_support(pd, 0, surface)
                .unwrap());
            let (device, queue) = app
                .device(pd, &[ash::khr::swapchain::NAME], std::ptr::null())
                .expect("device");
            let sc_fn = ash::khr::swapchain::Device::new(instance, &device);
            let pool = common::vkapp::command_pool(&device);
            Gpu {
                app: Some(app),
                surface_fn,
                surface,
                pd,
                device,
                queue,
                sc_fn,
                pool,
            }
        }
    }

    fn chain(&self, old: vk::SwapchainKHR) -> Result<Chain, vk::Result> {
        // SAFETY: valid handles and create infos.
        unsafe {
            let caps = self
                .surface_fn
                .get_physical_device_surface_capabilities(self.pd, self.surface)?;
            let formats = self
                .surface_fn
                .get_physical_device_surface_formats(self.pd, self.surface)?;
            assert!(formats
                .iter()
                .any(|f| f.format == vk::Format::B8G8R8A8_UNORM));
            let extent = caps.current_extent;
            let sc = self.sc_fn.create_swapchain(
                &vk::SwapchainCreateInfoKHR::default()
                    .surface(self.surface)
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
                    .present_mode(vk::PresentModeKHR::FIFO)
                    .clipped(true)
                    .old_swapchain(old),
                None,
            )?;
            let images = self.sc_fn.get_swapchain_images(sc)?;
            let cmds = self.device.allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(self.pool)
                    .command_buffer_count(images.len() as u32),
            )?;
            for (&cmd, &image) in cmds.iter().zip(&images) {
                common::vkapp::record_clear(&self.device, cmd, image, COLOUR);
            }
            Ok(Chain { sc, extent, cmds })
        }
    }

    /// Acquires, clears and presents one frame. `Ok(status)` is SUCCESS or
    /// SUBOPTIMAL_KHR.
    fn frame(&self, chain: &Chain) -> Result<vk::Result, vk::Result> {
        // SAFETY: valid handles; every frame waits for the queue to be idle,
        // so the fence and semaphore are free for reuse.
        unsafe {
            let d = &self.device;
            let fence = d.create_fence(&vk::FenceCreateInfo::default(), None)?;
            let sem = d.create_semaphore(&vk::SemaphoreCreateInfo::default(), None)?;
            let r = (|| {
                let (index, sub) = self.sc_fn.acquire_next_image(
                    chain.sc,
                    2_000_000_000,
                    vk::Semaphore::null(),
                    fence,
                )?;
                d.wait_for_fences(&[fence], true, 2_000_000_000)?;
                let cmds = [chain.cmds[index as usize]];
                let sems = [sem];
                d.queue_submit(
                    self.queue,
                    &[vk::SubmitInfo::default()
                        .command_buffers(&cmds)
                        .signal_semaphores(&sems)],
                    vk::Fence::null(),
                )?;
                let scs = [chain.sc];
                let idx = [index];
                let sub2 = self.sc_fn.queue_present(
                    self.queue,
                    &vk::PresentInfoKHR::default()
                        .wait_semaphores(&sems)
                        .swapchains(&scs)
                        .image_indices(&idx),
                )?;
                Ok(if sub || sub2 {
                    vk::Result::SUBOPTIMAL_KHR
                } else {
                    vk::Result::SUCCESS
                })
            })();
            let _ = d.queue_wait_idle(self.queue);
            d.destroy_fence(fence, None);
            d.destroy_semaphore(sem, None);
            r
        }
    }

    /// A new swapchain made from `old` (its `oldSwapchain`), then `old`
    /// destroyed. On failure `old` is destroyed too.
    fn recreate(&self, old: Chain) -> Result<Chain, vk::Result> {
        let new = self.chain(old.sc);
        self.drop_chain(old);
        new
    }

    fn drop_chain(&self, chain: Chain) {
        // SAFETY: the queue is idle; the objects are ours.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.free_command_buffers(self.pool, &chain.cmds);
            self.sc_fn.destroy_swapchain(chain.sc, None);
        }
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: everything is idle and owned here.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_command_pool(self.pool, None);
            self.device.destroy_device(None);
            self.surface_fn.destroy_surface(self.surface, None);
            if let Some(app) = self.app.take() {
                app.destroy();
            }
        }
    }
}

fn child() -> i32 {
    let wsi = std::env::var("SB_WSI").unwrap_or_default();
    let mode = std::env::var("SB_MODE").unwrap_or_default();
    let (w, h) = (320u16, 240u16);
    let mut xlib = None;
    let mut xcb = None;
    let (conn_ptr, window) = if wsi == "xlib" {
        let (x, win) = xlib_window(u32::from(w), u32::from(h));
        let p = x.dpy;
        xlib = Some(x);
        (p, win)
    } else {
        let (c, screen) = XCBConnection::connect(None).expect("X connection");
        let root = c.setup().roots[screen].root;
        let win = c.generate_id().unwrap();
        c.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            win,
            root,
            0,
            0,
            w,
            h,
            0,
            xproto::WindowClass::INPUT_OUTPUT,
            x11rb::COPY_FROM_PARENT,
            &xproto::CreateWindowAux::new().background_pixel(0xffffff),
        )
        .unwrap();
        c.map_window(win).unwrap();
        c.get_input_focus().unwrap().reply().unwrap();
        let p = c.get_raw_xcb_connection();
        xcb = Some(c);
        (p, win)
    };
    let gpu = Gpu::new(&wsi, conn_ptr, window);
    let mut chain = gpu.chain(vk::SwapchainKHR::null()).expect("swapchain");
    let code = match mode.as_str() {
        "clear" => {
            for _ in 0..30 {
                let _ = gpu.frame(&chain).expect("frame");
            }
            std::thread::sleep(Duration::from_millis(100));
            if window_has_colour(window, w, h) {
                println!("PIXELS OK");
                0
            } else {
                1
            }
        }
        "resize" => {
            let c = xcb.as_ref().unwrap();
            let mut got = None;
            for i in 0..300 {
                if i == 10 {
                    c.configure_window(
                        window,
                        &xproto::ConfigureWindowAux::new().width(400).height(300),
                    )
                    .unwrap();
                    c.flush().unwrap();
                }
                match gpu.frame(&chain) {
                    Ok(vk::Result::SUCCESS) => {}
                    Ok(r) | Err(r) => {
                        got = Some(r);
                        break;
                    }
                }
            }
            let Some(r) = got else {
                println!("no OUT_OF_DATE after the resize");
                return 1;
            };
            println!("RESIZED {r:?}");
            chain = match gpu.recreate(chain) {
                Ok(c) => c,
                Err(e) => {
                    println!("recreate failed: {e:?}");
                    return 1;
                }
            };
            println!("RECREATED {}x{}", chain.extent.width, chain.extent.height);
            for _ in 0..20 {
                if let Err(e) = gpu.frame(&chain) {
                    println!("frame after recreation: {e:?}");
                    return 1;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
            if window_has_colour(window, 400, 300) {
                println!("PIXELS OK");
                0
            } else {
                1
            }
        }
        "frames" => {
            // SB_FRAMES frames (default 30), nothing read back (the
            // benchmarks count what the frames cost).
            let n: usize = std::env::var("SB_FRAMES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(30);
            for _ in 0..n {
                let _ = gpu.frame(&chain).expect("frame");
            }
            println!("FRAMES {n}");
            0
        }
        "recreate" => {
            // SB_RECREATE swapchains in turn (default 200), each made from
            // the one before and given a frame; the process's fds counted
            // after the 50th and at the end (every swapchain's images and,
            // on DRI3 1.4, its timelines pass through the server).
            let n: usize = std::env::var("SB_RECREATE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(200);
            // Counted once the presenter has handed the frame over (it
            // holds one eventfd for the release point of the frame on
            // screen): right after a present that is one fd more or less.
            let fds = || {
                std::thread::sleep(Duration::from_millis(200));
                std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
            };
            let mut at_50 = 0;
            let mut failed = None;
            for i in 0..n {
                chain = match gpu.recreate(chain) {
                    Ok(c) => c,
                    Err(e) => {
                        println!("recreate {i} failed: {e:?}");
                        return 1;
                    }
                };
                if let Err(e) = gpu.frame(&chain) {
                    failed = Some(e);
                    break;
                }
                if i + 1 == 50 {
                    at_50 = fds();
                }
            }
            match failed {
                Some(e) => {
                    println!("frame failed: {e:?}");
                    1
                }
                None => {
                    println!("RECREATED {n} fds_50={at_50} fds_end={}", fds());
                    0
                }
            }
        }
        "create" => {
            // The swapchain is made (its images imported by the server, on
            // DRI3) and destroyed without a present.
            // SAFETY: the swapchain just made on this device.
            let n = unsafe { gpu.sc_fn.get_swapchain_images(chain.sc) }.map_or(0, |v| v.len());
            println!("CREATED {n} images");
            i32::from(n == 0)
        }
        "forever" => {
            let started = Instant::now();
            let mut n = 0u64;
            loop {
                match gpu.frame(&chain) {
                    Ok(_) => {
                        n += 1;
                        println!("FRAME {n}");
                    }
                    Err(e) => {
                        println!("ERROR {e:?} after {n} frames");
                        break 0;
                    }
                }
                if started.elapsed() > Duration::from_secs(60) {
                    println!("no error within 60 s");
                    break 1;
                }
            }
        }
        other => {
            println!("unknown mode {other:?}");
            2
        }
    };
    gpu.drop_chain(chain);
    drop(gpu);
    drop(xcb);
    drop(xlib);
    if std::env::var_os("SB_VALIDATION").is_some() {
        println!("probe: validation_messages={}", VALIDATION.count());
    }
    code
}

#[test]
#[ignore = "run as a subprocess by the tests above"]
fn child_client() {
    let code = child();
    // Flush what was printed, and end without running other teardown.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
