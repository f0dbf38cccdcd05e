//! dri3-syncobj-proxy: an X server for syncbridge's tests that speaks
//! DRI3 1.4 and Present 1.4 explicit sync (`DRI3ImportSyncobj`,
//! `PresentPixmapSynced`), made of a real X server (Xvfb) and a relay in
//! front of it. A test fixture, never shipped.
//!
//! No X server the tests can run offers explicit sync: Xvfb has no DRI3;
//! Xwayland offers syncobjs only with glamor on a GPU whose EGL has native
//! fence sync; Xorg 21 has no DRI3 1.4 (tests/guest/README.md). The relay
//! listens as display `:N` and passes each client's connection on to the
//! real server at `:M`, taking DRI3 and `PresentPixmapSynced` itself (see
//! `relay.rs`): it waits for each acquire point before it reads the
//! dma-buf on the CPU (on a DRM node with timelines: virtio-gpu's render
//! node in the test guest), copies the pixels into a real pixmap, has the
//! real server present that, and signals the release point when the real
//! server says the pixmap is idle (`--hold-release-ms` later, to test that
//! a client waits for it). Everything else, windows, `GetImage`,
//! `CompleteNotify`, is the real server's.
//!
//! It prints one line per DRI3 import, synced present (with whether the
//! acquire point was still pending when the request came, how long the
//! wait took, and the pixel at the centre) and release, and `error:` for
//! protocol misuse: unknown syncobjs, zero or non-increasing points, a
//! pixmap presented again before its release point was signalled.
//!
//! `--never-release` signals release points only when the client goes
//! (a server that never gives a buffer back).
//!
//!     dri3-syncobj-proxy --display 8 --upstream 7 [--hold-release-ms MS] [--never-release]

// The compositor's node lookup; the relay uses part of it.
mod answers;
mod dri3;
#[allow(dead_code)]
#[path = "../../node.rs"]
mod node;
mod present;
mod relay;
mod wire;

use node::Node;
use relay::{Due, Relay};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn socket(display: u32) -> String {
    format!("/tmp/.X11-unix/X{display}")
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// The connection setup, passed through: the client's request, the
/// server's answer. `false` if the server refused.
fn setup(client: &mut UnixStream, server: &mut UnixStream) -> std::io::Result<bool> {
    let mut head = [0u8; 12];
    client.read_exact(&mut head)?;
    if head[0] != b'l' {
        eprintln!("x11-proxy: only little-endian clients are relayed");
        return Ok(false);
    }
    let n = pad4(u16::from_le_bytes([head[6], head[7]]) as usize)
        + pad4(u16::from_le_bytes([head[8], head[9]]) as usize);
    let mut rest = vec![0u8; n];
    client.read_exact(&mut rest)?;
    server.write_all(&head)?;
    server.write_all(&rest)?;
    let mut answer = [0u8; 8];
    server.read_exact(&mut answer)?;
    let mut more = vec![0u8; u16::from_le_bytes([answer[6], answer[7]]) as usize * 4];
    server.read_exact(&mut more)?;
    client.write_all(&answer)?;
    client.write_all(&more)?;
    Ok(answer[0] == 1)
}

fn serve(
    mut client: UnixStream,
    upstream: u32,
    node: Arc<Node>,
    hold: Duration,
    releaser: mpsc::Sender<Due>,
    id: u64,
    never_release: bool,
) -> std::io::Result<()> {
    let mut server = UnixStream::connect(socket(upstream))?;
    if !setup(&mut client, &mut server)? {
        return Ok(());
    }
    let (side, _) = x11rb::rust_connection::RustConnection::connect(Some(&format!(":{upstream}")))
        .map_err(std::io::Error::other)?;
    let state = relay::Shared::default();
    state.lock().unwrap().never_release = never_release;
    let answers = {
        let (from, to) = (server.try_clone()?, client.try_clone()?);
        let (node, state, releaser) = (node.clone(), state.clone(), releaser.clone());
        std::thread::spawn(move || {
            answers::answers(wire::Reader::new(from), to, node, state, hold, releaser, id)
        })
    };
    let mut r = Relay {
        node: node.clone(),
        state: state.clone(),
        server: server.try_clone()?,
        side,
        side_gcs: HashMap::new(),
        id,
    };
    let res = r.requests(wire::Reader::new(client.try_clone()?));
    let _ = server.shutdown(std::net::Shutdown::Write);
    let _ = answers.join();
    // The client is gone: the server would drop its pixmaps and signal
    // what it still owes.
    let mut st = state.lock().unwrap();
    let owed: Vec<u32> = st.owed.keys().copied().collect();
    for p in owed {
        relay::release(&node, &mut st, id, p);
    }
    println!(
        "x11-proxy[{id}]: client_done releases={} errors={}",
        st.releases, st.errors
    );
    res
}

fn main() {
    let mut display = None;
    let mut upstream = None;
    let mut hold = Duration::ZERO;
    let mut never_release = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = || args.next().and_then(|v| v.parse::<u64>().ok());
        match a.as_str() {
            "--display" => display = num(),
            "--upstream" => upstream = num(),
            "--hold-release-ms" => hold = Duration::from_millis(num().unwrap_or(0)),
            "--never-release" => never_release = true,
            other => {
                eprintln!("x11-proxy: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let (Some(display), Some(upstream)) = (display, upstream) else {
        eprintln!("usage: dri3-syncobj-proxy --display N --upstream M [--hold-release-ms MS] [--never-release]");
        std::process::exit(2);
    };
    let node = match Node::find_timeline_node() {
        Ok(n) => Arc::new(n),
        Err(e) => {
            println!("x11-proxy: error: no DRM node with timelines: {e}");
            std::process::exit(3);
        }
    };
    let path = socket(display as u32);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            println!("x11-proxy: error: bind {path}: {e}");
            std::process::exit(3);
        }
    };
    // The releaser: release points held back by --hold-release-ms, in the
    // order they became due.
    let (tx, rx) = mpsc::channel::<Due>();
    {
        let node = node.clone();
        std::thread::spawn(move || {
            for due in rx {
                std::thread::sleep(due.at.saturating_duration_since(Instant::now()));
                let mut st = due.state.lock().unwrap();
                relay::release(&node, &mut st, 0, due.pixmap);
            }
        });
    }
    println!(
        "x11-proxy: listening on :{display} (upstream :{upstream}), timelines on {} ({}), release hold {} ms",
        node.path.display(),
        node.driver,
        hold.as_millis()
    );
    for (id, conn) in listener.incoming().enumerate() {
        let Ok(client) = conn else { continue };
        let (node, tx) = (node.clone(), tx.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve(
                client,
                upstream as u32,
                node,
                hold,
                tx,
                id as u64 + 1,
                never_release,
            ) {
                println!("x11-proxy[{}]: connection ended: {e}", id + 1);
            }
        });
    }
}
