//! `wp_linux_drm_syncobj_v1` through smithay's `DrmSyncobjState`, with the
//! manager and surface requests seen first by the fixture.
//!
//! smithay imports timelines, keeps each commit's points in the surface's
//! cached state, raises the protocol's errors (no buffer, no acquire/
//! release point, conflicting points, unsupported buffer, surface exists,
//! invalid timeline) and turns an acquire point into an eventfd source.
//! It keeps the point values private, and a test needs to see them: so
//! the fixture dispatches the manager's `get_surface` (to learn which
//! `wl_surface` a syncobj surface belongs to) and the surface's
//! `set_acquire_point`/`set_release_point` (to record the values in the
//! commit's `CommitBook`) itself, then hands every request to smithay
//! unchanged.

use crate::acquire::{CommitBook, PointValue};
use crate::state::App;
use smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::{
    wp_linux_drm_syncobj_manager_v1::{self, WpLinuxDrmSyncobjManagerV1},
    wp_linux_drm_syncobj_surface_v1::{self, WpLinuxDrmSyncobjSurfaceV1},
    wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1,
};
use smithay::reexports::wayland_server::{
    self, Client, DataInit, Dispatch, DisplayHandle, Resource,
};
use smithay::wayland::compositor;
use smithay::wayland::drm_syncobj::{
    DrmSyncobjGlobalData, DrmSyncobjState, DrmSyncobjSurfaceData, DrmSyncobjTimelineData,
};
use std::cell::RefCell;

wayland_server::delegate_global_dispatch!(App: [WpLinuxDrmSyncobjManagerV1: DrmSyncobjGlobalData] => DrmSyncobjState);
wayland_server::delegate_dispatch!(App: [WpLinuxDrmSyncobjTimelineV1: DrmSyncobjTimelineData] => DrmSyncobjState);

impl Dispatch<WpLinuxDrmSyncobjManagerV1, ()> for App {
    fn request(
        state: &mut Self,
        client: &Client,
        resource: &WpLinuxDrmSyncobjManagerV1,
        request: wp_linux_drm_syncobj_manager_v1::Request,
        data: &(),
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let surface = match &request {
            wp_linux_drm_syncobj_manager_v1::Request::GetSurface { surface, .. } => {
                Some(surface.clone())
            }
            _ => None,
        };
        <DrmSyncobjState as Dispatch<WpLinuxDrmSyncobjManagerV1, (), App>>::request(
            state, client, resource, request, data, dh, data_init,
        );
        if let Some(surface) = surface {
            let obj = compositor::with_states(&surface, |s| {
                s.data_map
                    .get::<RefCell<Option<WpLinuxDrmSyncobjSurfaceV1>>>()
                    .and_then(|c| c.borrow().clone())
            });
            if let Some(obj) = obj {
                state.syncobj_surfaces.insert(obj.id(), surface.downgrade());
            }
        }
    }
}

impl Dispatch<WpLinuxDrmSyncobjSurfaceV1, DrmSyncobjSurfaceData> for App {
    fn request(
        state: &mut Self,
        client: &Client,
        resource: &WpLinuxDrmSyncobjSurfaceV1,
        request: wp_linux_drm_syncobj_surface_v1::Request,
        data: &DrmSyncobjSurfaceData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let surface = state
            .syncobj_surfaces
            .get(&resource.id())
            .and_then(|w| w.upgrade().ok());
        let point = |timeline: &WpLinuxDrmSyncobjTimelineV1, hi: u32, lo: u32| PointValue {
            timeline: timeline.id().protocol_id(),
            value: ((hi as u64) << 32) | lo as u64,
        };
        match (&request, &surface) {
            (
                wp_linux_drm_syncobj_surface_v1::Request::SetAcquirePoint {
                    timeline,
                    point_hi,
                    point_lo,
                },
                Some(s),
            ) => {
                let p = point(timeline, *point_hi, *point_lo);
                compositor::with_states(s, |st| {
                    st.cached_state.get::<CommitBook>().pending().acquire = Some(p)
                });
            }
            (
                wp_linux_drm_syncobj_surface_v1::Request::SetReleasePoint {
                    timeline,
                    point_hi,
                    point_lo,
                },
                Some(s),
            ) => {
                let p = point(timeline, *point_hi, *point_lo);
                compositor::with_states(s, |st| {
                    st.cached_state.get::<CommitBook>().pending().release = Some(p)
                });
            }
            (wp_linux_drm_syncobj_surface_v1::Request::Destroy, _) => {
                state.syncobj_surfaces.remove(&resource.id());
                if let Some(s) = &surface {
                    compositor::with_states(s, |st| {
                        let mut b = st.cached_state.get::<CommitBook>();
                        b.pending().acquire = None;
                        b.pending().release = None;
                    });
                }
            }
            _ => {}
        }
        <DrmSyncobjState as Dispatch<WpLinuxDrmSyncobjSurfaceV1, DrmSyncobjSurfaceData, App>>::request(
            state, client, resource, request, data, dh, data_init,
        );
    }
}
