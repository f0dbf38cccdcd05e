//! `syncbridge-info`: what this system offers the sync bridge, and which
//! path the layer would take on it, with the reason.
//!
//! `syncbridge-info [--json]`

use ash::vk;
use serde_json::{json, Value};
use std::ffi::CStr;
use VkLayer_syncbridge as sb;

use sb::config::Config;
use sb::device::caps::{probe_caps, sync_fd_missing, DeviceCaps};
use sb::kernel::{self, SyncFileSupport};
use sb::sync::{self, BufferKind, Offer};
use sb::wsi::image::{choose_for_physical_device, Choice, ImageParams, WindowSystemBuffers};

fn kernel_report() -> Value {
    let sources: Vec<String> = kernel::alloc::available_sources()
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    let sync_file = match kernel::dma_buf::sync_file_support() {
        SyncFileSupport::Supported => "supported",
        SyncFileSupport::Unsupported => "not supported (the kernel answers ENOTTY: before 6.0)",
        SyncFileSupport::Unknown => "unknown (no dma-buf could be made to ask)",
    };
    let syncobj = match kernel::SyncobjDevice::shared() {
        Ok(d) => json!(format!("{d:?}")),
        Err(e) => json!(format!("none ({e})")),
    };
    let nodes: Vec<String> = kernel::list_drm_nodes()
        .iter()
        .map(|n| format!("{} ({})", n.path.display(), n.driver))
        .collect();
    json!({
        "release": rustix::system::uname().release().to_string_lossy(),
        "dma_buf_sync_file_ioctls": sync_file,
        "dma_buf_sources": sources,
        "soft_fences_vgem": kernel::SoftFence::is_available(),
        "drm_syncobj_timelines": syncobj,
        "drm_nodes": nodes,
    })
}

struct VkDevice {
    name: String,
    caps: DeviceCaps,
    /// The image path a typical swapchain (B8G8R8A8_UNORM, colour
    /// attachment and transfer destination, 500x500) would take in
    /// shared-memory and in linear dma-buf buffers.
    images_shm: Result<Choice, String>,
    images_dma_buf: Result<Choice, String>,
}

fn image_choice(
    instance: &ash::Instance,
    pd: vk::PhysicalDevice,
    kind: BufferKind,
) -> Result<Choice, String> {
    let params = ImageParams {
        format: vk::Format::B8G8R8A8_UNORM,
        extent: vk::Extent2D {
            width: 500,
            height: 500,
        },
        usage: vk::ImageUsageFlags::COLOR_ATTACHMENT | vk::ImageUsageFlags::TRANSFER_DST,
        flags: vk::ImageCreateFlags::empty(),
        sharing_mode: vk::SharingMode::EXCLUSIVE,
        queue_families: Vec::new(),
    };
    let ws = WindowSystemBuffers {
        modifiers: vec![0],
        main_device: None,
    };
    choose_for_physical_device(instance, pd, &params, kind, &ws, sb::config::get().images)
}

fn choice_json(c: &Result<Choice, String>) -> Value {
    match c {
        Ok(c) => json!({ "path": c.path.name(), "reason": c.reason }),
        Err(e) => json!({ "error": e }),
    }
}

fn vulkan_report() -> (Value, Vec<VkDevice>) {
    // Describe the driver itself, never through this layer.
    std::env::set_var("DISABLE_SYNCBRIDGE", "1");
    let layers = std::env::var("VK_INSTANCE_LAYERS").unwrap_or_default();
    let kept: Vec<&str> = layers
        .split(':')
        .filter(|l| !l.is_empty() && *l != "VK_LAYER_SYNCBRIDGE_wsi")
        .collect();
    std::env::set_var("VK_INSTANCE_LAYERS", kept.join(":"));
    // SAFETY: loading the system's Vulkan loader.
    let entry = match unsafe { ash::Entry::load() } {
        Ok(e) => e,
        Err(e) => {
            return (
                json!({ "error": format!("no Vulkan loader: {e}") }),
                Vec::new(),
            )
        }
    };
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    // SAFETY: a plain instance.
    let instance = match unsafe {
        entry.create_instance(
            &vk::InstanceCreateInfo::default().application_info(&app),
            None,
        )
    } {
        Ok(i) => i,
        Err(e) => {
            return (
                json!({ "error": format!("vkCreateInstance: {e:?}") }),
                Vec::new(),
            )
        }
    };
    let mut list = Vec::new();
    let mut devices = Vec::new();
    // SAFETY: a live instance.
    for pd in unsafe { instance.enumerate_physical_devices() }.unwrap_or_default() {
        // SAFETY: a physical device of this instance.
        let props = unsafe { instance.get_physical_device_properties(pd) };
        let name = props
            .device_name_as_c_str()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        // SAFETY: as above.
        let exts =
            unsafe { instance.enumerate_device_extension_properties(pd) }.unwrap_or_default();
        let has = |n: &CStr| exts.iter().any(|e| e.extension_name_as_c_str() == Ok(n));
        let caps = probe_caps(&instance, pd, &has);
        list.push(json!({
            "name": name,
            "api_version": format!("{}.{}.{}", vk::api_version_major(props.api_version), vk::api_version_minor(props.api_version), vk::api_version_patch(props.api_version)),
            "external_memory_host": caps.host_memory_import.map(|a| json!({ "alignment": a })).unwrap_or(json!(false)),
            "external_memory_dma_buf": caps.dma_buf_memory,
            "drm_format_modifiers": caps.drm_format_modifiers,
            "semaphore_sync_fd_export": caps.semaphore_sync_fd_export,
            "sync_fd_missing": sync_fd_missing(&instance, pd, &has, &caps),
            "semaphore_sync_fd_import": caps.semaphore_sync_fd_import,
            "fence_sync_fd_import": caps.fence_sync_fd_import,
            "timeline_semaphores": caps.timeline_semaphores,
        }));
        devices.push(VkDevice {
            name,
            caps,
            images_shm: image_choice(&instance, pd, BufferKind::Shm),
            images_dma_buf: image_choice(&instance, pd, BufferKind::DmaBuf),
        });
    }
    // SAFETY: nothing else uses the instance.
    unsafe { instance.destroy_instance(None) };
    (json!({ "devices": list }), devices)
}

fn wayland_report() -> (Value, Option<Offer>) {
    let Ok(name) = std::env::var("WAYLAND_DISPLAY") else {
        return (json!({ "error": "WAYLAND_DISPLAY is not set" }), None);
    };
    let conn = match wayland_client::Connection::connect_to_env() {
        Ok(c) => c,
        Err(e) => return (json!({ "display": name, "error": e.to_string() }), None),
    };
    let g = match sb::wsi::wayland::probe_globals(&conn) {
        Ok(g) => g,
        Err(e) => return (json!({ "display": name, "error": format!("{e:?}") }), None),
    };
    let version = |i: &str| g.get(i).map_or(json!(false), |x| json!(x.version));
    let linear: Vec<String> = g
        .dmabuf_formats
        .iter()
        .filter(|(_, m)| *m == sb::wsi::wayland::MOD_LINEAR)
        .map(|(f, _)| fourcc_name(*f))
        .collect();
    let offer = Offer {
        server_shm: g.get("wl_shm").is_some(),
        server_dma_buf: !linear.is_empty(),
        server_explicit: g.get("wp_linux_drm_syncobj_manager_v1").is_some(),
        main_device: g.main_device,
        ..Offer::default()
    };
    let report = json!({
        "display": name,
        "wl_shm_formats": g.shm_formats.iter().map(|f| fourcc_name(sb::wsi::wayland::formats::drm_from_shm(*f))).collect::<Vec<_>>(),
        "zwp_linux_dmabuf_v1": version("zwp_linux_dmabuf_v1"),
        "dmabuf_linear_formats": linear,
        "dmabuf_format_modifier_pairs": g.dmabuf_formats.len(),
        "wp_linux_drm_syncobj_manager_v1": version("wp_linux_drm_syncobj_manager_v1"),
        "explicit_sync": if offer.server_explicit {
            match kernel::SyncobjDevice::preferred(g.main_device) {
                Ok(d) => format!(
                    "timelines on {} ({}){}",
                    d.path().display(),
                    d.driver(),
                    if g.main_device.is_some() { "" } else { "; the compositor names no main device" }
                ),
                Err(e) => format!("offered, but no DRM node with timeline syncobjs ({e})"),
            }
        } else {
            "not offered by the compositor".to_string()
        },
        "zwp_linux_explicit_synchronization_v1": version("zwp_linux_explicit_synchronization_v1"),
        "wp_fifo_manager_v1": version("wp_fifo_manager_v1"),
        "wp_commit_timing_manager_v1": version("wp_commit_timing_manager_v1"),
        "wp_presentation": version("wp_presentation"),
        "layer_uses": sb::wsi::wayland::USED_GLOBALS
            .iter()
            .filter_map(|i| g.get(i).map(|x| format!("{i} v{}", x.version)))
            .collect::<Vec<_>>(),
    });
    (report, Some(offer))
}

fn x11_report() -> (Value, Option<Offer>) {
    use x11rb::connection::RequestConnection;
    let Ok(name) = std::env::var("DISPLAY") else {
        return (json!({ "error": "DISPLAY is not set" }), None);
    };
    let (conn, _) = match x11rb::connect(None) {
        Ok(c) => c,
        Err(e) => return (json!({ "display": name, "error": e.to_string() }), None),
    };
    let present = |ext: &'static str| conn.extension_information(ext).ok().flatten().is_some();
    let version = |v: (u32, u32)| format!("{}.{}", v.0, v.1);
    let dri3 = present("DRI3")
        .then(|| {
            x11rb::protocol::dri3::query_version(&conn, 1, 4)
                .ok()
                .and_then(|c| c.reply().ok())
        })
        .flatten()
        .map(|r| (r.major_version, r.minor_version));
    let pres = present("Present")
        .then(|| {
            x11rb::protocol::present::query_version(&conn, 1, 4)
                .ok()
                .and_then(|c| c.reply().ok())
        })
        .flatten()
        .map(|r| (r.major_version, r.minor_version));
    let shm = present("MIT-SHM")
        .then(|| {
            x11rb::protocol::shm::query_version(&conn)
                .ok()
                .and_then(|c| c.reply().ok())
        })
        .flatten()
        .map(|r| format!("{}.{}", r.major_version, r.minor_version));
    // The capabilities of the first screen's root window (the layer asks
    // for each swapchain's window).
    let root = x11rb::connection::Connection::setup(&conn).roots[0].root;
    let caps = pres
        .and_then(|_| x11rb::protocol::present::query_capabilities(&conn, root).ok())
        .and_then(|c| c.reply().ok())
        .map_or(0, |r| r.capabilities);
    let server_explicit = sb::wsi::x11::speaks_explicit(dri3, pres, caps);
    let offer = Offer {
        server_shm: true,
        server_dma_buf: sb::wsi::x11::takes_dma_bufs(dri3.is_some(), pres.is_some()),
        server_explicit,
        ..Offer::default()
    };
    let report = json!({
        "display": name,
        "dri3": dri3.map(version),
        "present": pres.map(version),
        "present_capabilities": caps,
        "mit_shm": shm,
        "explicit_sync": if server_explicit {
            match kernel::SyncobjDevice::preferred(None) {
                Ok(d) => format!(
                    "DRI3 1.4 syncobjs (PresentPixmapSynced), timelines on {} ({}); taken with SYNCBRIDGE_BUFFERS=dmabuf",
                    d.path().display(),
                    d.driver()
                ),
                Err(e) => format!("offered, but no DRM node with timeline syncobjs ({e})"),
            }
        } else {
            "not offered by the server (DRI3 1.4, Present 1.4 and PresentCapabilitySyncobj needed)".to_string()
        },
    });
    (report, Some(offer))
}

fn fourcc_name(f: u32) -> String {
    let b = f.to_le_bytes();
    if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        String::from_utf8_lossy(&b).trim().to_string()
    } else {
        format!("{f:#x}")
    }
}

fn path_report(offer: Option<Offer>, devices: &[VkDevice], cfg: &Config) -> Value {
    let Some(offer) = offer else {
        return json!(null);
    };
    let per_device: Vec<Value> = devices
        .iter()
        .map(|d| {
            let mut o = offer.clone();
            sync::complete_offer(&mut o, &d.caps);
            match sync::plan(cfg, &d.caps, &o) {
                Some(p) => json!({
                    "device": d.name,
                    "buffers": format!("{:?}", p.buffers),
                    "present": p.present.name(),
                    "acquire": format!("{:?}", p.acquire),
                    "images": choice_json(match p.buffers {
                        BufferKind::Shm => &d.images_shm,
                        BufferKind::DmaBuf => &d.images_dma_buf,
                    }),
                    "early_acquire": if d.caps.early_acquire() {
                        "on: with no free image, acquire hands out one the window system replaced, the GPU waiting for its release"
                    } else if !d.caps.timeline_semaphores {
                        "off: the device has no timeline semaphores"
                    } else {
                        "off: SYNCBRIDGE_EARLY_ACQUIRE"
                    },
                    "reason": p.reason,
                }),
                None => json!({ "device": d.name, "error": "no buffer the window system takes can be made" }),
            }
        })
        .collect();
    json!(per_device)
}

fn print_human(v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::Object(_) | Value::Array(_) if !is_flat(x) => {
                        println!("{pad}{k}:");
                        print_human(x, indent + 2);
                    }
                    _ => println!("{pad}{k:<38} {}", flat(x)),
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                println!("{pad}[{i}]");
                print_human(x, indent + 2);
            }
        }
        other => println!("{pad}{}", flat(other)),
    }
}

fn is_flat(v: &Value) -> bool {
    match v {
        Value::Array(a) => a
            .iter()
            .all(|x| !matches!(x, Value::Object(_) | Value::Array(_))),
        Value::Object(_) => false,
        _ => true,
    }
}

fn flat(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(flat).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn main() {
    let json_out = std::env::args().any(|a| a == "--json");
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        println!("syncbridge-info [--json]: what this system offers the syncbridge layer and the path it would take");
        return;
    }
    let cfg = sb::config::get().clone();
    let kernel = kernel_report();
    let (vulkan, devices) = vulkan_report();
    let (wayland, wl_offer) = wayland_report();
    let (x11, x_offer) = x11_report();
    let report = json!({
        "syncbridge": env!("CARGO_PKG_VERSION"),
        "config": {
            "sync": format!("{:?}", cfg.sync),
            "buffers": format!("{:?}", cfg.buffers),
            "images": format!("{:?}", cfg.images),
            "early_acquire": cfg.early_acquire,
            "present_mode": cfg.present_mode.map_or("the application's".to_string(), |m| format!("{m:?}")),
            "min_image_count": cfg.min_image_count.map_or(json!("the layer's"), |n| json!(n)),
            "fps_limit": cfg.fps_limit.map_or(json!("none"), |n| json!(n)),
        },
        "kernel": kernel,
        "vulkan": vulkan,
        "wayland": wayland,
        "x11": x11,
        "layer_would_take": {
            "wayland": path_report(wl_offer, &devices, &cfg),
            "x11": path_report(x_offer, &devices, &cfg),
        },
    });
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializable")
        );
    } else {
        print_human(&report, 0);
    }
}
