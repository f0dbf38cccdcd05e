//! The layer under the real Khronos Vulkan loader and lavapipe, no mocks.
//!
//! Each scenario runs in a child process (this test binary re-executed for
//! one `child_*` test, see `common`) with its own environment; the parent
//! test checks what the child printed and whether the layer library was
//! mapped into it.

mod common;

use ash::vk;
use common::*;
use std::ffi::{CStr, CString};
use std::time::Duration;
use VkLayer_syncbridge::layer::entry::{DEVICE_EXTENSIONS, INSTANCE_EXTENSIONS};

const VALIDATION: &str = "VK_LAYER_KHRONOS_validation";

fn expected(list: &[(&CStr, u32)]) -> Vec<String> {
    let mut v: Vec<String> = list
        .iter()
        .map(|(n, s)| format!("{}:{s}", n.to_str().unwrap()))
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Child side: runs inside the re-executed test binary.
// ---------------------------------------------------------------------------

fn say(key: &str, value: impl std::fmt::Display) {
    println!("{MARK}{key}={value}");
}

fn ext_strings(props: &[vk::ExtensionProperties]) -> Vec<String> {
    props
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p.extension_name_as_c_str().unwrap().to_str().unwrap(),
                p.spec_version
            )
        })
        .collect()
}

/// Loads the Vulkan loader the way an application linked against it has it:
/// with its symbols global (ash alone would dlopen it RTLD_LOCAL), so the
/// loader's exports can interpose on same-named symbols of the layer.
fn load_vulkan() -> ash::Entry {
    // SAFETY: dlopen of a system library; the handle is kept for the process.
    let global = unsafe {
        libc::dlopen(
            c"libvulkan.so.1".as_ptr(),
            libc::RTLD_NOW | libc::RTLD_GLOBAL,
        )
    };
    assert!(!global.is_null(), "libvulkan.so.1 not found (libvulkan1)");
    // SAFETY: loads the system's Vulkan loader.
    unsafe { ash::Entry::load() }.expect("libvulkan.so.1")
}

/// Reports the library the parent told us to look for as mapped or not.
fn say_mapped() {
    let lib = std::env::var("SB_TEST_LIB").expect("SB_TEST_LIB");
    say("mapped", is_mapped(std::path::Path::new(&lib)) as u8);
}

/// Lists the instance layers and, when syncbridge is among them, the
/// instance extensions its manifest declares.
#[test]
#[ignore = "run by the loader tests in a child process"]
fn child_enumerate() {
    if !is_child() {
        return;
    }
    let entry = load_vulkan();
    // SAFETY: a loaded entry.
    let layers = unsafe { entry.enumerate_instance_layer_properties() }.unwrap();
    for l in &layers {
        let name = l.layer_name_as_c_str().unwrap();
        say("layer", name.to_str().unwrap());
        if name.to_bytes() == LAYER_NAME.as_bytes() {
            // SAFETY: as above.
            let exts =
                unsafe { entry.enumerate_instance_extension_properties(Some(name)) }.unwrap();
            for e in ext_strings(&exts) {
                say("layer_instance_ext", e);
            }
        }
    }
    say_mapped();
}

/// Warnings and errors of every kind, the loader's own included.
static MESSAGES: common::vkapp::Listener = common::vkapp::Listener::new("debug-utils ", true);

/// Creates an instance (with the layers of `CHILD_LAYERS`, and a debug-utils
/// messenger counting warnings and errors when `VK_EXT_debug_utils` is
/// there), a device with `VK_KHR_swapchain` and one queue, submits an empty
/// batch with a fence, waits, and destroys everything.
#[test]
#[ignore = "run by the loader tests in a child process"]
fn child_instance_device() {
    if !is_child() {
        return;
    }
    let entry = load_vulkan();
    let layers: Vec<CString> = std::env::var("CHILD_LAYERS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| CString::new(s).unwrap())
        .collect();
    let layers: Vec<&CStr> = layers.iter().map(CString::as_c_str).collect();
    let has_debug_utils =
        common::vkapp::App::instance_extension_offered(&entry, None, vk::EXT_DEBUG_UTILS_NAME);
    say("debug_utils", has_debug_utils as u8);
    // VK_KHR_swapchain (enabled on the device below) requires
    // VK_KHR_surface. An application that asks for Vulkan 1.0: the layer
    // asks for 1.1 below itself, the application must not notice.
    // SAFETY: plain Vulkan setup.
    let app = unsafe {
        common::vkapp::App::new(
            c"syncbridge-loader-test",
            vk::API_VERSION_1_0,
            &[vk::KHR_SURFACE_NAME],
            &layers,
            has_debug_utils.then_some(&MESSAGES),
        )
    }
    .expect("vkCreateInstance");
    let instance = &app.instance;
    let pd = app.physical_device();

    let layer_name = CString::new(LAYER_NAME).unwrap();
    let enumerate = instance.fp_v1_0().enumerate_device_extension_properties;
    let mut count = 0u32;
    // SAFETY: the two-call idiom with valid pointers.
    let r = unsafe { enumerate(pd, layer_name.as_ptr(), &mut count, std::ptr::null_mut()) };
    say("layer_device_ext_result", format!("{r:?}"));
    if r == vk::Result::SUCCESS {
        let mut props = vec![vk::ExtensionProperties::default(); count as usize];
        // SAFETY: room for `count` elements.
        let r = unsafe { enumerate(pd, layer_name.as_ptr(), &mut count, props.as_mut_ptr()) };
        assert_eq!(r, vk::Result::SUCCESS);
        props.truncate(count as usize);
        for e in ext_strings(&props) {
            say("layer_device_ext", e);
        }
    }
    // SAFETY: a physical device of this instance.
    for l in unsafe { instance.enumerate_device_layer_properties(pd) }.unwrap() {
        say(
            "device_layer",
            l.layer_name_as_c_str().unwrap().to_str().unwrap(),
        );
    }
    // SAFETY: as above.
    let all_exts = unsafe { instance.enumerate_device_extension_properties(pd) }.unwrap();
    let swapchain = all_exts
        .iter()
        .any(|e| e.extension_name_as_c_str() == Ok(vk::KHR_SWAPCHAIN_NAME));
    say("device_has_swapchain", swapchain as u8);

    let exts: &[&CStr] = if swapchain {
        &[vk::KHR_SWAPCHAIN_NAME]
    } else {
        &[]
    };
    // SAFETY: no feature chain.
    let (device, queue) =
        unsafe { app.device(pd, exts, std::ptr::null()) }.expect("vkCreateDevice");
    // SAFETY: a live device and its queue.
    unsafe {
        let fence = device
            .create_fence(&vk::FenceCreateInfo::default(), None)
            .unwrap();
        device.queue_submit(queue, &[], fence).unwrap();
        device
            .wait_for_fences(&[fence], true, 5_000_000_000)
            .unwrap();
        device.queue_wait_idle(queue).unwrap();
        device.destroy_fence(fence, None);
        device.device_wait_idle().unwrap();
        device.destroy_device(None);
    }
    say_mapped();
    // SAFETY: every child object is destroyed.
    unsafe { app.destroy() };
    say("messages", MESSAGES.count());
}

// ---------------------------------------------------------------------------
// Parent side.
// ---------------------------------------------------------------------------

fn lib_env(m: &Manifests) -> String {
    m.library.display().to_string()
}

#[test]
fn explicit_manifest_lists_the_layer_and_its_instance_extensions() {
    let m = Manifests::new();
    let lib = lib_env(&m);
    let out = run_child(
        "child_enumerate",
        &m,
        &[("VK_LAYER_PATH", &m.layer_path()), ("SB_TEST_LIB", &lib)],
    );
    out.assert_success();
    assert!(
        out.values("layer").iter().any(|l| l == LAYER_NAME),
        "{LAYER_NAME} not listed\n{out}"
    );
    assert_eq!(
        sorted(out.values("layer_instance_ext")),
        expected(&INSTANCE_EXTENSIONS),
        "the manifest's instance extensions differ from the layer's\n{out}"
    );
}

#[test]
fn the_layer_is_not_listed_without_its_manifest() {
    let m = Manifests::new();
    let lib = lib_env(&m);
    // The control for the test above: an empty layer path lists nothing of
    // ours (and proves no installed copy leaks into these tests).
    let empty = m.empty_home().display().to_string();
    let out = run_child(
        "child_enumerate",
        &m,
        &[("VK_LAYER_PATH", &empty), ("SB_TEST_LIB", &lib)],
    );
    out.assert_success();
    assert!(
        !out.values("layer").iter().any(|l| l == LAYER_NAME),
        "{LAYER_NAME} listed without its manifest\n{out}"
    );
}

#[test]
fn implicit_manifest_lists_the_layer_and_its_instance_extensions() {
    let m = Manifests::new();
    let lib = lib_env(&m);
    let home = m.implicit_home().display().to_string();
    let out = run_child(
        "child_enumerate",
        &m,
        &[
            ("XDG_CONFIG_HOME", &home),
            ("ENABLE_SYNCBRIDGE", "1"),
            ("SB_TEST_LIB", &lib),
        ],
    );
    out.assert_success();
    assert!(
        out.values("layer").iter().any(|l| l == LAYER_NAME),
        "implicit {LAYER_NAME} not listed\n{out}"
    );
    assert_eq!(
        sorted(out.values("layer_instance_ext")),
        expected(&INSTANCE_EXTENSIONS),
        "the implicit manifest's instance extensions differ from the layer's\n{out}"
    );
}

/// Checks a child that created an instance and a device through the layer.
fn assert_loaded(out: &Output) {
    out.assert_success();
    assert_eq!(out.value("mapped"), "1", "layer library not loaded\n{out}");
    assert!(
        out.layer_created_an_instance(),
        "no 'syncbridge: info: instance created' line\n{out}"
    );
    assert!(
        out.values("device_layer").iter().any(|l| l == LAYER_NAME),
        "{LAYER_NAME} is not among the device's layers\n{out}"
    );
    assert_eq!(
        out.value("layer_device_ext_result"),
        "SUCCESS",
        "vkEnumerateDeviceExtensionProperties(layer) failed\n{out}"
    );
    assert_eq!(
        sorted(out.values("layer_device_ext")),
        expected(&DEVICE_EXTENSIONS),
        "the layer's device extensions (VK_KHR_swapchain) are wrong\n{out}"
    );
    assert_eq!(out.value("device_has_swapchain"), "1", "{out}");
}

fn assert_not_loaded(out: &Output) {
    out.assert_success();
    assert_eq!(out.value("mapped"), "0", "layer library loaded\n{out}");
    assert!(
        !out.layer_created_an_instance(),
        "the layer logged an instance\n{out}"
    );
    assert!(
        !out.values("device_layer").iter().any(|l| l == LAYER_NAME),
        "{LAYER_NAME} is among the device's layers\n{out}"
    );
}

#[test]
fn explicit_layer_loads_with_vk_instance_layers() {
    let m = Manifests::new();
    let lib = lib_env(&m);
    let out = run_child(
        "child_instance_device",
        &m,
        &[
            ("VK_LAYER_PATH", &m.layer_path()),
            ("VK_INSTANCE_LAYERS", LAYER_NAME),
            ("SYNCBRIDGE_LOG", "info"),
            ("SB_TEST_LIB", &lib),
        ],
    );
    assert_loaded(&out);
}

#[test]
fn explicit_layer_is_not_loaded_unless_enabled() {
    let m = Manifests::new();
    let lib = lib_env(&m);
    let out = run_child(
        "child_instance_device",
        &m,
        &[
            ("VK_LAYER_PATH", &m.layer_path()),
            ("SYNCBRIDGE_LOG", "info"),
            ("SB_TEST_LIB", &lib),
        ],
    );
    assert_not_loaded(&out);
}

#[test]
fn implicit_layer_loads_with_enable_syncbridge() {
    let m = Manifests::new();
    let lib = lib_env(&m);
    let home = m.implicit_home().display().to_string();
    let out = run_child(
        "child_instance_device",
        &m,
        &[
            ("XDG_CONFIG_HOME", &home),
            ("ENABLE_SYNCBRIDGE", "1"),
            ("SYNCBRIDGE_LOG", "info"),
            ("SB_TEST_LIB", &lib),
        ],
    );
    assert_loaded(&out);
}

#[test]
fn implicit_layer_stays_out_without_enable_syncbridge() {
    let m = Manifests::new();
    let lib = lib_env(&m);
    let home = m.implicit_home().display().to_string();
    let out = run_child(
        "child_instance_device",
        &m,
        &[
            ("XDG_CONFIG_HOME", &home),
            ("SYNCBRIDGE_LOG", "info"),
            ("SB_TEST_LIB", &lib),
        ],
    );
    assert_not_loaded(&out);
}

#[test]
fn implicit_layer_stays_out_with_disable_syncbridge() {
    let m = Manifests::new();
    let lib = lib_env(&m);
    let home = m.implicit_home().display().to_string();
    let out = run_child(
        "child_instance_device",
        &m,
        &[
            ("XDG_CONFIG_HOME", &home),
            ("ENABLE_SYNCBRIDGE", "1"),
            ("DISABLE_SYNCBRIDGE", "1"),
            ("SYNCBRIDGE_LOG", "info"),
            ("SB_TEST_LIB", &lib),
        ],
    );
    assert_not_loaded(&out);
}

/// Instance and device life cycle with the validation layer in `layers`
/// order (the first is closest to the application): no validation message.
fn with_validation(layers: &str) {
    assert!(
        validation_layer_dir().is_some(),
        "VK_LAYER_KHRONOS_validation is not installed (vulkan-validationlayers)"
    );
    let m = Manifests::new();
    let lib = lib_env(&m);
    let out = run_child(
        "child_instance_device",
        &m,
        &[
            ("VK_LAYER_PATH", &m.layer_path()),
            ("CHILD_LAYERS", layers),
            ("SYNCBRIDGE_LOG", "info"),
            ("SB_TEST_LIB", &lib),
        ],
    );
    assert_loaded(&out);
    assert!(
        out.values("device_layer").iter().any(|l| l == VALIDATION),
        "validation layer not enabled\n{out}"
    );
    assert_eq!(out.value("debug_utils"), "1", "{out}");
    assert_eq!(
        out.value("messages"),
        "0",
        "validation reported warnings or errors\n{out}"
    );
}

#[test]
fn validation_is_clean_with_syncbridge_above_validation() {
    with_validation(&format!("{LAYER_NAME},{VALIDATION}"));
}

#[test]
fn validation_is_clean_with_syncbridge_below_validation() {
    with_validation(&format!("{VALIDATION},{LAYER_NAME}"));
}

#[test]
fn vkcube_runs_through_the_layer_under_xvfb() {
    let m = Manifests::new();
    let x = Xvfb::start();
    let mut cmd = clean_command("vkcube", &m);
    cmd.args(["--c", "100"])
        .env("DISPLAY", &x.display)
        .env("VK_LAYER_PATH", m.layer_path())
        .env("VK_INSTANCE_LAYERS", LAYER_NAME)
        .env("SYNCBRIDGE_LOG", "info");
    let out = run(cmd, Duration::from_secs(90));
    drop(x);
    out.assert_success();
    assert!(
        out.layer_created_an_instance(),
        "vkcube ran without the layer\n{out}"
    );
    assert!(
        !out.stderr.contains("syncbridge: error"),
        "the layer logged an error\n{out}"
    );
}

/// `make install` with a PREFIX and DESTDIR puts the files where the
/// loader looks, with `library_path` naming the final location; the
/// installed manifest loads the installed library; `make uninstall`
/// removes everything.
#[test]
fn make_install_and_uninstall() {
    let m = Manifests::new();
    let make = |args: &[&str]| {
        let mut cmd = clean_command("make", &m);
        // The files this test run built, not a release build.
        cmd.arg("-s")
            .arg("-C")
            .arg(repo_dir())
            .arg(format!("LIB_OUT={}", m.library.display()))
            .arg(concat!("INFO_OUT=", env!("CARGO_BIN_EXE_syncbridge-info")))
            .args(args);
        run(cmd, Duration::from_secs(120)).assert_success();
    };

    // A staged install for packaging.
    let stage = TempDir::new("stage");
    make(&[
        "install",
        &format!("DESTDIR={}", stage.path().display()),
        "PREFIX=/usr",
    ]);
    let root = stage.path().join("usr");
    for f in [
        "lib/libVkLayer_syncbridge.so",
        "bin/syncbridge-info",
        "share/vulkan/explicit_layer.d/VkLayer_syncbridge.json",
        "share/vulkan/implicit_layer.d/VkLayer_syncbridge.json",
    ] {
        assert!(root.join(f).is_file(), "{f} not installed");
    }
    for d in ["explicit", "implicit"] {
        let text = std::fs::read_to_string(
            root.join(format!("share/vulkan/{d}_layer.d/VkLayer_syncbridge.json")),
        )
        .unwrap();
        assert!(
            text.contains(r#""library_path": "/usr/lib/libVkLayer_syncbridge.so""#),
            "{d} manifest: {text}"
        );
        assert_eq!(
            text.contains("ENABLE_SYNCBRIDGE"),
            d == "implicit",
            "{d} manifest: {text}"
        );
    }

    // A real install into a prefix, used through the loader.
    let prefix = TempDir::new("prefix");
    let p = prefix.path().display().to_string();
    make(&["install", &format!("PREFIX={p}")]);
    let installed = prefix.path().join("lib/libVkLayer_syncbridge.so");
    let layer_path = join_paths(
        &[prefix.path().join("share/vulkan/explicit_layer.d")],
        false,
    );
    let out = run_child(
        "child_instance_device",
        &m,
        &[
            ("VK_LAYER_PATH", &layer_path),
            ("VK_INSTANCE_LAYERS", LAYER_NAME),
            ("SYNCBRIDGE_LOG", "info"),
            ("SB_TEST_LIB", installed.to_str().unwrap()),
        ],
    );
    assert_loaded(&out);

    make(&["uninstall", &format!("PREFIX={p}")]);
    for f in [
        "lib/libVkLayer_syncbridge.so",
        "bin/syncbridge-info",
        "share/vulkan/explicit_layer.d/VkLayer_syncbridge.json",
        "share/vulkan/implicit_layer.d/VkLayer_syncbridge.json",
    ] {
        assert!(!prefix.path().join(f).exists(), "{f} left after uninstall");
    }
}
