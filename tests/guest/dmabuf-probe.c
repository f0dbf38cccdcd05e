/* dmabuf-probe: a minimal Wayland client that shows a linear XRGB8888
 * dma-buf through zwp_linux_dmabuf_v1 (v3, create_immed), to check that a
 * compositor in the test guest imports dma-bufs, and whether it honours
 * implicit fences.
 *
 *   dmabuf-probe [--source heap|udmabuf|vgem] [--fence] [--shot CMD]
 *
 * Without --fence: shows a red 256x256 buffer, waits for its frame callback,
 * runs CMD (if given) with PROBE_SHOT=red and exits 0.
 *
 * --fence (vgem only): then commits a second buffer that still holds blue
 * ("not yet rendered") with an unsignalled vgem write fence attached, runs
 * CMD with PROBE_SHOT=pending after 2 s, writes green into it and signals the
 * fence, waits for the frame callback, runs CMD with PROBE_SHOT=signalled.
 * A compositor that honours implicit sync never shows blue: the "pending"
 * screenshot is still red (the commit waits) or green. It prints how long
 * the frame callback of the fenced commit took.
 *
 * Exit: 0 ok, 1 setup/allocation failure, 2 the compositor rejected the
 * buffer (linux-dmabuf "failed" or a protocol error), 3 no linux-dmabuf. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <wayland-client.h>
#include "xdg-shell-client-protocol.h"
#include "linux-dmabuf-unstable-v1-client-protocol.h"

#define W 256
#define H 256
#define FOURCC(a, b, c, d) ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))
#define XR24 FOURCC('X', 'R', '2', '4')
#define AR24 FOURCC('A', 'R', '2', '4')

/* The few DRM uapi definitions needed (include/uapi/drm/drm.h, drm_mode.h,
 * vgem_drm.h), so that no libdrm headers are needed. */
struct drm_version {
    int version_major, version_minor, version_patchlevel;
    size_t name_len; char *name;
    size_t date_len; char *date;
    size_t desc_len; char *desc;
};
struct drm_mode_create_dumb { uint32_t height, width, bpp, flags, handle, pitch; uint64_t size; };
struct drm_prime_handle { uint32_t handle, flags; int32_t fd; };
#define DRM_IOCTL_BASE 'd'
#define DRM_IOWR(nr, type) _IOWR(DRM_IOCTL_BASE, nr, type)
#define DRM_IOW(nr, type) _IOW(DRM_IOCTL_BASE, nr, type)
#define DRM_IOCTL_VERSION DRM_IOWR(0x00, struct drm_version)
#define DRM_IOCTL_PRIME_HANDLE_TO_FD DRM_IOWR(0x2d, struct drm_prime_handle)
#define DRM_IOCTL_MODE_CREATE_DUMB DRM_IOWR(0xB2, struct drm_mode_create_dumb)
#define DRM_COMMAND_BASE 0x40
#define DRM_CLOEXEC O_CLOEXEC
#define DRM_RDWR O_RDWR
struct vgem_fence_attach { uint32_t handle, flags, out_fence, pad; };
struct vgem_fence_signal { uint32_t fence, flags; };
#define VGEM_FENCE_WRITE 0x1
#define DRM_IOCTL_VGEM_FENCE_ATTACH DRM_IOWR(DRM_COMMAND_BASE + 0x1, struct vgem_fence_attach)
#define DRM_IOCTL_VGEM_FENCE_SIGNAL DRM_IOW(DRM_COMMAND_BASE + 0x2, struct vgem_fence_signal)

static struct wl_compositor *compositor;
static struct xdg_wm_base *wm_base;
static struct zwp_linux_dmabuf_v1 *dmabuf;
static int have_xr24_linear, have_ar24_linear, configured, frame_done;
static const char *shot_cmd;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(int code, const char *what) {
    fprintf(stderr, "dmabuf-probe: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    exit(code);
}

static void dm_format(void *d, struct zwp_linux_dmabuf_v1 *z, uint32_t f) {}
static void dm_modifier(void *d, struct zwp_linux_dmabuf_v1 *z, uint32_t f, uint32_t hi, uint32_t lo) {
    if (hi == 0 && lo == 0 && f == XR24) have_xr24_linear = 1;
    if (hi == 0 && lo == 0 && f == AR24) have_ar24_linear = 1;
}
static const struct zwp_linux_dmabuf_v1_listener dm_listener = { dm_format, dm_modifier };

static void wm_ping(void *d, struct xdg_wm_base *b, uint32_t serial) { xdg_wm_base_pong(b, serial); }
static const struct xdg_wm_base_listener wm_listener = { wm_ping };

static void reg_global(void *d, struct wl_registry *r, uint32_t name, const char *iface, uint32_t v) {
    if (!strcmp(iface, wl_compositor_interface.name))
        compositor = wl_registry_bind(r, name, &wl_compositor_interface, 4);
    else if (!strcmp(iface, xdg_wm_base_interface.name)) {
        wm_base = wl_registry_bind(r, name, &xdg_wm_base_interface, 1);
        xdg_wm_base_add_listener(wm_base, &wm_listener, NULL);
    } else if (!strcmp(iface, zwp_linux_dmabuf_v1_interface.name) && v >= 3) {
        dmabuf = wl_registry_bind(r, name, &zwp_linux_dmabuf_v1_interface, 3);
        zwp_linux_dmabuf_v1_add_listener(dmabuf, &dm_listener, NULL);
    }
}
static void reg_remove(void *d, struct wl_registry *r, uint32_t name) {}
static const struct wl_registry_listener reg_listener = { reg_global, reg_remove };

static void xs_configure(void *d, struct xdg_surface *s, uint32_t serial) {
    xdg_surface_ack_configure(s, serial);
    configured = 1;
}
static const struct xdg_surface_listener xs_listener = { xs_configure };

static void frame_cb(void *d, struct wl_callback *cb, uint32_t t) { frame_done = 1; wl_callback_destroy(cb); }
static const struct wl_callback_listener frame_listener = { frame_cb };

struct buf { int fd; uint32_t *map; uint32_t handle; struct wl_buffer *wl; };
static int vgem_fd = -1;

static int open_vgem(void) {
    char path[32], name[16];
    for (int i = 0; i < 16; i++) {
        snprintf(path, sizeof path, "/dev/dri/card%d", i);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;
        struct drm_version v = { .name = name, .name_len = sizeof name - 1 };
        memset(name, 0, sizeof name);
        if (ioctl(fd, DRM_IOCTL_VERSION, &v) == 0 && !strcmp(name, "vgem")) return fd;
        close(fd);
    }
    return -1;
}

static void alloc_buf(const char *source, struct buf *b) {
    size_t size = W * H * 4;
    b->handle = 0;
    if (!strcmp(source, "heap")) {
        int heap = open("/dev/dma_heap/system", O_RDWR | O_CLOEXEC);
        if (heap < 0) die(1, "open /dev/dma_heap/system");
        struct dma_heap_allocation_data a = { .len = size, .fd_flags = O_RDWR | O_CLOEXEC };
        if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a)) die(1, "DMA_HEAP_IOCTL_ALLOC");
        close(heap);
        b->fd = a.fd;
    } else if (!strcmp(source, "udmabuf")) {
        int mfd = memfd_create("probe", MFD_ALLOW_SEALING);
        if (mfd < 0 || ftruncate(mfd, size) || fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK)) die(1, "memfd");
        int u = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
        if (u < 0) die(1, "open /dev/udmabuf");
        struct udmabuf_create c = { .memfd = mfd, .flags = UDMABUF_FLAGS_CLOEXEC, .offset = 0, .size = size };
        b->fd = ioctl(u, UDMABUF_CREATE, &c);
        if (b->fd < 0) die(1, "UDMABUF_CREATE");
        close(u);
        close(mfd);
    } else if (!strcmp(source, "vgem")) {
        if (vgem_fd < 0 && (vgem_fd = open_vgem()) < 0) die(1, "no vgem card (modprobe vgem)");
        struct drm_mode_create_dumb c = { .width = W, .height = H, .bpp = 32 };
        if (ioctl(vgem_fd, DRM_IOCTL_MODE_CREATE_DUMB, &c)) die(1, "DRM_IOCTL_MODE_CREATE_DUMB");
        if (c.pitch != W * 4) { errno = 0; die(1, "unexpected vgem pitch"); }
        struct drm_prime_handle p = { .handle = c.handle, .flags = DRM_CLOEXEC | DRM_RDWR };
        if (ioctl(vgem_fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &p)) die(1, "DRM_IOCTL_PRIME_HANDLE_TO_FD");
        b->fd = p.fd;
        b->handle = c.handle;
    } else {
        errno = 0;
        die(1, "unknown --source");
    }
    b->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
    if (b->map == MAP_FAILED) die(1, "mmap dma-buf");

    struct zwp_linux_buffer_params_v1 *params = zwp_linux_dmabuf_v1_create_params(dmabuf);
    zwp_linux_buffer_params_v1_add(params, b->fd, 0, 0, W * 4, 0, 0);
    b->wl = zwp_linux_buffer_params_v1_create_immed(params, W, H, XR24, 0);
    zwp_linux_buffer_params_v1_destroy(params);
}

static void fill(struct buf *b, uint32_t xrgb) {
    struct dma_buf_sync s = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE };
    ioctl(b->fd, DMA_BUF_IOCTL_SYNC, &s);
    for (int i = 0; i < W * H; i++) b->map[i] = xrgb;
    s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE;
    ioctl(b->fd, DMA_BUF_IOCTL_SYNC, &s);
}

static void roundtrip(struct wl_display *dpy) {
    if (wl_display_roundtrip(dpy) < 0) {
        fprintf(stderr, "dmabuf-probe: protocol error %d (the compositor rejected the buffer?)\n",
                wl_display_get_error(dpy));
        exit(2);
    }
}

static void shot(const char *name) {
    if (!shot_cmd) return;
    setenv("PROBE_SHOT", name, 1);
    int rc = system(shot_cmd);
    printf("dmabuf-probe: screenshot '%s' -> %d\n", name, rc);
    fflush(stdout);
}

static double show(struct wl_display *dpy, struct wl_surface *surf, struct buf *b) {
    double t0 = now();
    frame_done = 0;
    wl_surface_attach(surf, b->wl, 0, 0);
    wl_surface_damage(surf, 0, 0, W, H);
    wl_callback_add_listener(wl_surface_frame(surf), &frame_listener, NULL);
    wl_surface_commit(surf);
    while (!frame_done && now() - t0 < 20)
        if (wl_display_dispatch(dpy) < 0) roundtrip(dpy);
    return frame_done ? now() - t0 : -1;
}

int main(int argc, char **argv) {
    const char *source = "heap";
    int fence = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--source") && i + 1 < argc) source = argv[++i];
        else if (!strcmp(argv[i], "--fence")) fence = 1;
        else if (!strcmp(argv[i], "--shot") && i + 1 < argc) shot_cmd = argv[++i];
        else { fprintf(stderr, "usage: %s [--source heap|udmabuf|vgem] [--fence] [--shot CMD]\n", argv[0]); return 1; }
    }
    if (fence) source = "vgem";
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct wl_display *dpy = wl_display_connect(NULL);
    if (!dpy) die(1, "wl_display_connect");
    wl_registry_add_listener(wl_display_get_registry(dpy), &reg_listener, NULL);
    roundtrip(dpy);
    roundtrip(dpy);
    if (!compositor || !wm_base) { errno = 0; die(1, "no wl_compositor/xdg_wm_base"); }
    if (!dmabuf) { printf("dmabuf-probe: no zwp_linux_dmabuf_v1 (v3+)\n"); return 3; }
    printf("dmabuf-probe: linux-dmabuf: XR24/LINEAR %s, AR24/LINEAR %s\n",
           have_xr24_linear ? "yes" : "no", have_ar24_linear ? "yes" : "no");

    struct wl_surface *surf = wl_compositor_create_surface(compositor);
    struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, surf);
    xdg_surface_add_listener(xs, &xs_listener, NULL);
    struct xdg_toplevel *top = xdg_surface_get_toplevel(xs);
    xdg_toplevel_set_title(top, "dmabuf-probe");
    wl_surface_commit(surf);
    while (!configured) if (wl_display_dispatch(dpy) < 0) roundtrip(dpy);

    struct buf a;
    alloc_buf(source, &a);
    fill(&a, 0xffff0000);
    roundtrip(dpy); /* a "failed" buffer is a protocol error with create_immed */
    double t = show(dpy, surf, &a);
    if (t < 0) { printf("dmabuf-probe: no frame callback for the %s buffer\n", source); return 2; }
    printf("dmabuf-probe: %s dma-buf (red) shown, frame callback after %.3f s\n", source, t);
    shot("red");
    if (!fence) return 0;

    struct buf b;
    alloc_buf("vgem", &b);
    fill(&b, 0xff0000ff); /* blue: what a reader sees before the "GPU" is done */
    roundtrip(dpy);
    struct vgem_fence_attach at = { .handle = b.handle, .flags = VGEM_FENCE_WRITE };
    if (ioctl(vgem_fd, DRM_IOCTL_VGEM_FENCE_ATTACH, &at)) die(1, "DRM_IOCTL_VGEM_FENCE_ATTACH");
    double t0 = now();
    frame_done = 0;
    wl_surface_attach(surf, b.wl, 0, 0);
    wl_surface_damage(surf, 0, 0, W, H);
    wl_callback_add_listener(wl_surface_frame(surf), &frame_listener, NULL);
    wl_surface_commit(surf);
    wl_display_flush(dpy);
    /* 2 s with the fence pending (vgem signals by itself after 10 s). */
    double frame_pending = -1;
    while (now() - t0 < 2) {
        wl_display_roundtrip(dpy);
        if (frame_done && frame_pending < 0) frame_pending = now() - t0;
        usleep(50000);
    }
    printf("dmabuf-probe: fenced commit: frame callback %s while the fence was pending%s\n",
           frame_pending >= 0 ? "arrived" : "did not arrive",
           frame_pending >= 0 ? "" : " (the compositor waits for it)");
    shot("pending");
    fill(&b, 0xff00ff00); /* green: the "GPU" finished */
    struct vgem_fence_signal sg = { .fence = at.out_fence };
    if (ioctl(vgem_fd, DRM_IOCTL_VGEM_FENCE_SIGNAL, &sg)) die(1, "DRM_IOCTL_VGEM_FENCE_SIGNAL");
    double ts = now();
    while (!frame_done && now() - ts < 10)
        if (wl_display_dispatch(dpy) < 0) roundtrip(dpy);
    printf("dmabuf-probe: fence signalled at %.3f s; frame callback %s%.3f s after the commit\n",
           ts - t0, frame_done ? "" : "NOT received, ", now() - t0);
    /* One more frame so the compositor has repainted after the signal. */
    wl_surface_damage(surf, 0, 0, W, H);
    show(dpy, surf, &b);
    shot("signalled");
    return 0;
}
