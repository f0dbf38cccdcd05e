//! Xlib displays: the layer works on the `xcb_connection_t` under them,
//! found with `XGetXCBConnection` from libX11-xcb, loaded at run time so
//! applications that never use Xlib need not have it.

use ash::vk;
use std::ffi::c_void;
use std::sync::OnceLock;

type GetXcbConnection = unsafe extern "C" fn(*mut c_void) -> *mut c_void;

struct Lib {
    get: GetXcbConnection,
    _lib: libloading::Library,
}

fn lib() -> Result<&'static Lib, &'static str> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(|| {
        // SAFETY: libX11-xcb's initialisers are harmless; the symbol has the
        // declared C signature (`xcb_connection_t *XGetXCBConnection(Display *)`).
        unsafe {
            let lib = libloading::Library::new("libX11-xcb.so.1").map_err(|e| e.to_string())?;
            let get = *lib
                .get::<GetXcbConnection>(b"XGetXCBConnection\0")
                .map_err(|e| e.to_string())?;
            Ok(Lib { get, _lib: lib })
        }
    })
    .as_ref()
    .map_err(String::as_str)
}

/// The xcb connection of an Xlib display.
///
/// # Safety
/// `dpy` must be a live Xlib `Display`.
pub unsafe fn xcb_connection(dpy: *mut c_void) -> Result<*mut c_void, vk::Result> {
    if dpy.is_null() {
        log::error!("vkCreateXlibSurfaceKHR: null display");
        return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
    }
    let lib = lib().map_err(|e| {
        log::error!("Xlib surfaces need libX11-xcb.so.1, which cannot be loaded: {e}");
        vk::Result::ERROR_INITIALIZATION_FAILED
    })?;
    // SAFETY: a live display (the caller's contract).
    let c = unsafe { (lib.get)(dpy) };
    if c.is_null() {
        log::error!("XGetXCBConnection returned no connection");
        return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
    }
    Ok(c)
}
