//! The Vulkan half of the bridge: semaphores and fences as sync_files
//! (`VK_KHR_external_semaphore_fd` / `VK_KHR_external_fence_fd`, handle type
//! `SYNC_FD`).

use crate::config::Fault;
use crate::device::DeviceData;
use crate::kernel::SyncFile;
use crate::sync::fault;
use ash::vk;

fn missing(what: &str) -> vk::Result {
    log::error!("{what} is not enabled on this device");
    vk::Result::ERROR_FEATURE_NOT_PRESENT
}

/// A binary semaphore the layer can export as a sync_file.
pub fn create_exportable_semaphore(dev: &DeviceData) -> Result<vk::Semaphore, vk::Result> {
    let mut export = vk::ExportSemaphoreCreateInfo::default()
        .handle_types(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
    let ci = vk::SemaphoreCreateInfo::default().push_next(&mut export);
    // SAFETY: a valid create info on a live device.
    unsafe { dev.fns.create_semaphore(&ci, None) }
}

/// Exports the payload of `semaphore` (which has a signal operation
/// submitted) as a sync_file. Exporting a SYNC_FD leaves the semaphore
/// unsignalled, as a wait would.
pub fn export_semaphore(
    dev: &DeviceData,
    semaphore: vk::Semaphore,
) -> Result<SyncFile, vk::Result> {
    let ext = dev
        .ext
        .semaphore_fd
        .as_ref()
        .ok_or_else(|| missing("VK_KHR_external_semaphore_fd"))?;
    let info = vk::SemaphoreGetFdInfoKHR::default()
        .semaphore(semaphore)
        .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
    if fault::active(Fault::SemaphoreExport) {
        return Err(vk::Result::ERROR_TOO_MANY_OBJECTS);
    }
    // SAFETY: a live semaphore created exportable as SYNC_FD.
    let fd = unsafe { ext.get_semaphore_fd(&info) }?;
    // SAFETY: the driver hands over ownership of the fd; -1 means signalled.
    unsafe { SyncFile::from_raw_fd(fd) }.map_err(|e| {
        log::error!("the driver exported an invalid sync_file: {e}");
        vk::Result::ERROR_UNKNOWN
    })
}

/// Makes `sync_file` the temporary payload of `semaphore`: the next wait on
/// it waits for the sync_file.
pub fn import_into_semaphore(
    dev: &DeviceData,
    semaphore: vk::Semaphore,
    sync_file: SyncFile,
) -> Result<(), vk::Result> {
    let ext = dev
        .ext
        .semaphore_fd
        .as_ref()
        .ok_or_else(|| missing("VK_KHR_external_semaphore_fd"))?;
    let info = vk::ImportSemaphoreFdInfoKHR::default()
        .semaphore(semaphore)
        .flags(vk::SemaphoreImportFlags::TEMPORARY)
        .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD)
        .fd(sync_file.as_raw_fd());
    if fault::active(Fault::SemaphoreImport) {
        // The sync_file is closed as on any failed import.
        return Err(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE);
    }
    // SAFETY: a live semaphore; the fd is valid (or -1: signalled).
    unsafe { ext.import_semaphore_fd(&info) }?;
    // On success the driver owns the fd.
    let _ = sync_file.into_raw_fd();
    Ok(())
}

/// Makes `sync_file` the temporary payload of `fence`.
pub fn import_into_fence(
    dev: &DeviceData,
    fence: vk::Fence,
    sync_file: SyncFile,
) -> Result<(), vk::Result> {
    let ext = dev
        .ext
        .fence_fd
        .as_ref()
        .ok_or_else(|| missing("VK_KHR_external_fence_fd"))?;
    let info = vk::ImportFenceFdInfoKHR::default()
        .fence(fence)
        .flags(vk::FenceImportFlags::TEMPORARY)
        .handle_type(vk::ExternalFenceHandleTypeFlags::SYNC_FD)
        .fd(sync_file.as_raw_fd());
    if fault::active(Fault::FenceImport) {
        return Err(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE);
    }
    // SAFETY: a live fence; the fd is valid (or -1: signalled).
    unsafe { ext.import_fence_fd(&info) }?;
    // On success the driver owns the fd.
    let _ = sync_file.into_raw_fd();
    Ok(())
}
