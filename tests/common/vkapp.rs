//! One Vulkan application setup for the project's test clients (the
//! `wsi_probe` example, the X11 test client of `tests/x11.rs`, the loader
//! child of `tests/loader.rs`): instance with an optional debug messenger
//! that counts findings, a device with one queue of family 0, and the
//! clear-to-a-colour recording every client presents.
//!
//! Self-contained (ash and std only) so that the example can include it
//! with `#[path]`.
#![allow(dead_code)]

use ash::vk;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicU32, Ordering};

/// Counts the messages a debug messenger reports and prints each one.
pub struct Listener {
    /// Printed before each message (`probe: validation_message=`).
    pub prefix: &'static str,
    /// Whether `GENERAL` messages (the loader's own) count; validation and
    /// performance findings always do.
    pub count_general: bool,
    count: AtomicU32,
}

impl Listener {
    pub const fn new(prefix: &'static str, count_general: bool) -> Self {
        Self {
            prefix,
            count_general,
            count: AtomicU32::new(0),
        }
    }

    /// The warnings and errors counted so far.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }
}

unsafe extern "system" fn on_message(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    ty: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: `user` is the `&'static Listener` given to the messenger.
    let listener = unsafe { &*(user as *const Listener) };
    let finding = ty.intersects(
        vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
            | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
    ) || listener.count_general;
    if finding {
        // SAFETY: the callback data is valid for the duration of the call.
        let msg = unsafe { data.as_ref() }
            .and_then(|d| unsafe { d.message_as_c_str() })
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_validation_internal_timeout(&msg) {
            // Printed, never counted: see the function's comment.
            println!("{}ignored VVL-internal timeout: {msg}", listener.prefix);
        } else {
            println!("{}{severity:?}: {msg}", listener.prefix);
            listener.count.fetch_add(1, Ordering::SeqCst);
        }
    }
    vk::FALSE
}

/// Whether `msg` is the validation layer timing out on its own state
/// tracking ("Timeout waiting for fence/timeline semaphore state to update.
/// This is most likely a validation bug"), not a finding about the
/// application or the layer. Bookworm's validation layers (1.3.239) report
/// it when one thread signals a timeline semaphore on the host while
/// another waits for a fence or semaphore that depends on it: the waiter
/// holds the tracker's lock while it waits for the state the signaller
/// cannot record (Vulkan-ValidationLayers issues 4649 and 5928; reworked
/// in pull request 8519, 2024). The layer's early acquire does exactly
/// that: its presenter signals the release timeline while the application
/// waits for its frame fence. Seen only on a loaded machine.
pub fn is_validation_internal_timeout(msg: &str) -> bool {
    msg.contains("[ UNASSIGNED-VkSemaphore-state-timeout ]")
        || msg.contains("[ UNASSIGNED-VkFence-state-timeout ]")
}

/// A messenger create info for warnings and errors of every type, reporting
/// to `listener`.
pub fn messenger_info(
    listener: &'static Listener,
) -> vk::DebugUtilsMessengerCreateInfoEXT<'static> {
    vk::DebugUtilsMessengerCreateInfoEXT::default()
        .message_severity(
            vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
        )
        .message_type(
            vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
        )
        .pfn_user_callback(Some(on_message))
        .user_data(listener as *const Listener as *mut c_void)
}

/// An instance and, when asked for, its debug messenger.
pub struct App {
    pub entry: ash::Entry,
    pub instance: ash::Instance,
    messenger: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
}

impl App {
    /// Loads the Vulkan loader and creates an instance for `api_version`
    /// with `extensions` and `layers`. With a `listener`, `VK_EXT_debug_utils`
    /// is enabled and a messenger reports to it, for instance creation and
    /// destruction (chained) and for everything between (a messenger
    /// object).
    ///
    /// # Safety
    /// Plain Vulkan setup; the caller destroys what it makes from the
    /// instance before [`App::destroy`].
    pub unsafe fn new(
        name: &CStr,
        api_version: u32,
        extensions: &[&CStr],
        layers: &[&CStr],
        listener: Option<&'static Listener>,
    ) -> Result<App, vk::Result> {
        // SAFETY: loading the system's Vulkan loader.
        let entry =
            unsafe { ash::Entry::load() }.map_err(|_| vk::Result::ERROR_INITIALIZATION_FAILED)?;
        let mut exts: Vec<*const c_char> = extensions.iter().map(|e| e.as_ptr()).collect();
        if listener.is_some() {
            exts.push(vk::EXT_DEBUG_UTILS_NAME.as_ptr());
        }
        let layers: Vec<*const c_char> = layers.iter().map(|l| l.as_ptr()).collect();
        let app = vk::ApplicationInfo::default()
            .application_name(name)
            .api_version(api_version);
        let mut chained = listener.map(messenger_info);
        let mut ci = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_extension_names(&exts)
            .enabled_layer_names(&layers);
        if let Some(m) = chained.as_mut() {
            ci = ci.push_next(m);
        }
        // SAFETY: a valid create info.
        let instance = unsafe { entry.create_instance(&ci, None) }?;
        let messenger = match listener {
            Some(l) => {
                let du = ash::ext::debug_utils::Instance::new(&entry, &instance);
                // SAFETY: VK_EXT_debug_utils is enabled on this instance.
                let m = unsafe { du.create_debug_utils_messenger(&messenger_info(l), None) }?;
                Some((du, m))
            }
            None => None,
        };
        Ok(App {
            entry,
            instance,
            messenger,
        })
    }

    /// The first physical device.
    pub fn physical_device(&self) -> vk::PhysicalDevice {
        // SAFETY: a live instance.
        unsafe { self.instance.enumerate_physical_devices() }.expect("vkEnumeratePhysicalDevices")
            [0]
    }

    /// Whether the instance (with the given layer, or the implementation
    /// and implicit layers for `None`) offers `name`.
    pub fn instance_extension_offered(
        entry: &ash::Entry,
        layer: Option<&CStr>,
        name: &CStr,
    ) -> bool {
        // SAFETY: a loaded entry.
        unsafe { entry.enumerate_instance_extension_properties(layer) }
            .unwrap_or_default()
            .iter()
            .any(|e| e.extension_name_as_c_str() == Ok(name))
    }

    /// A device on `pd` with one queue of family 0, `extensions` enabled
    /// and `features` (a `pNext` chain of feature structures, or null).
    ///
    /// # Safety
    /// `features` must be null or a valid chain of device feature
    /// structures.
    pub unsafe fn device(
        &self,
        pd: vk::PhysicalDevice,
        extensions: &[&CStr],
        features: *const c_void,
    ) -> Result<(ash::Device, vk::Queue), vk::Result> {
        let exts: Vec<*const c_char> = extensions.iter().map(|e| e.as_ptr()).collect();
        let prio = [1.0f32];
        let qci = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(0)
            .queue_priorities(&prio)];
        let mut dci = vk::DeviceCreateInfo::default()
            .queue_create_infos(&qci)
            .enabled_extension_names(&exts);
        dci.p_next = features;
        // SAFETY: a valid create info (and the caller's chain).
        let device = unsafe { self.instance.create_device(pd, &dci, None) }?;
        // SAFETY: queue 0 of family 0 was created.
        let queue = unsafe { device.get_device_queue(0, 0) };
        Ok((device, queue))
    }

    /// Destroys the messenger and the instance.
    ///
    /// # Safety
    /// Every object made from the instance is destroyed.
    pub unsafe fn destroy(self) {
        if let Some((du, m)) = self.messenger {
            // SAFETY: made from this instance.
            unsafe { du.destroy_debug_utils_messenger(m, None) };
        }
        // SAFETY: the caller's promise.
        unsafe { self.instance.destroy_instance(None) };
    }
}

/// A resettable command pool on queue family 0.
///
/// # Safety
/// `device` must be live.
pub unsafe fn command_pool(device: &ash::Device) -> vk::CommandPool {
    // SAFETY: a valid create info.
    unsafe {
        device.create_command_pool(
            &vk::CommandPoolCreateInfo::default()
                .queue_family_index(0)
                .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER),
            None,
        )
    }
    .expect("vkCreateCommandPool")
}

/// Records into `cb` (reset first) a clear of `image` to `rgba`, from an
/// undefined layout to `PRESENT_SRC_KHR`, with the barriers that make the
/// clear's write visible to the presentation engine. The submission must
/// wait for the image's acquire semaphore at `TRANSFER`.
///
/// # Safety
/// `cb` must be resettable and not in use; `image` a colour image of the
/// device with `TRANSFER_DST` usage.
pub unsafe fn record_clear(
    device: &ash::Device,
    cb: vk::CommandBuffer,
    image: vk::Image,
    rgba: [f32; 4],
) {
    let range = vk::ImageSubresourceRange::default()
        .aspect_mask(vk::ImageAspectFlags::COLOR)
        .level_count(1)
        .layer_count(1);
    let barrier = |old, new, src, dst| {
        vk::ImageMemoryBarrier::default()
            .old_layout(old)
            .new_layout(new)
            .src_access_mask(src)
            .dst_access_mask(dst)
            .image(image)
            .subresource_range(range)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
    };
    // SAFETY: the caller's promise.
    unsafe {
        device
            .reset_command_buffer(cb, vk::CommandBufferResetFlags::empty())
            .expect("vkResetCommandBuffer");
        device
            .begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
            .expect("vkBeginCommandBuffer");
        // From TRANSFER, the stage the acquire semaphore is waited at: the
        // layout transition then follows the wait, so it cannot overwrite
        // the image while the presentation engine still reads it
        // (synchronization validation above a swapchain reports
        // TOP_OF_PIPE here as a write-after-read).
        device.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[barrier(
                vk::ImageLayout::UNDEFINED,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                vk::AccessFlags::empty(),
                vk::AccessFlags::TRANSFER_WRITE,
            )],
        );
        // PROBE_SYNC_HAZARD: a second clear with no barrier after the
        // first, a write-after-write hazard, for tests that show
        // synchronization validation is on.
        let clears = if std::env::var_os("PROBE_SYNC_HAZARD").is_some() {
            2
        } else {
            1
        };
        for _ in 0..clears {
            device.cmd_clear_color_image(
                cb,
                image,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                &vk::ClearColorValue { float32: rgba },
                &[range],
            );
        }
        device.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[barrier(
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                vk::ImageLayout::PRESENT_SRC_KHR,
                vk::AccessFlags::TRANSFER_WRITE,
                vk::AccessFlags::empty(),
            )],
        );
        device.end_command_buffer(cb).expect("vkEndCommandBuffer");
    }
}
