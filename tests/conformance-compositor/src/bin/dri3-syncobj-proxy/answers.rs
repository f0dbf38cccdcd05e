//! Server to client: the replies the relay rewrites (the DRI3 extension,
//! Present's version and capabilities, its own replies in place of the
//! stand-ins), errors that name the client's request, and Present
//! `IdleNotify`, which owes a release point.

use crate::node::Node;
use crate::relay::{
    release, trace, Due, Fix, Shared, CAPABILITY_SYNCOBJ, DRI3_OPCODE, PRESENT_IDLE_NOTIFY,
};
use crate::wire::{self, u16_at, u32_at, Reader};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Server to client, until the server goes.
pub fn answers(
    mut from: Reader,
    client: UnixStream,
    node: Arc<Node>,
    state: Shared,
    hold: Duration,
    releaser: Sender<Due>,
    id: u64,
) -> std::io::Result<()> {
    loop {
        while let Some(len) = wire::message_len(&from.buf) {
            let mut msg: Vec<u8> = from.buf.drain(..len).collect();
            let mut fds: Vec<OwnedFd> = from.fds.drain(..).collect();
            let seq = u16_at(&msg, 2);
            if trace() {
                eprintln!(
                    "x11-proxy[{id}]: < seq {seq} type {} ({} bytes, {} fds)",
                    msg[0],
                    msg.len(),
                    fds.len()
                );
            }
            let mut st = state.lock().unwrap();
            while st
                .stands
                .front()
                .is_some_and(|&(s, _, _)| (seq.wrapping_sub(s) as i16) > 0)
            {
                st.stands.pop_front();
            }
            match msg[0] & 0x7f {
                1 => match st.fixes.remove(&seq) {
                    Some(Fix::QueryExtension(name)) if name == b"DRI3" => {
                        msg[8] = 1;
                        msg[9] = DRI3_OPCODE;
                        msg[10] = 0;
                        msg[11] = 0;
                    }
                    Some(Fix::QueryExtension(_)) if msg[8] == 1 => {
                        st.present_opcode = Some(msg[9]);
                    }
                    Some(Fix::QueryExtension(_)) => {}
                    Some(Fix::PresentVersion(major, minor)) => {
                        let (m, n) = if (major, minor) >= (1, 4) {
                            (1, 4)
                        } else {
                            (major, minor)
                        };
                        msg[8..12].copy_from_slice(&m.to_le_bytes());
                        msg[12..16].copy_from_slice(&n.to_le_bytes());
                    }
                    Some(Fix::PresentCaps) => {
                        let caps = u32_at(&msg, 8) | CAPABILITY_SYNCOBJ;
                        msg[8..12].copy_from_slice(&caps.to_le_bytes());
                    }
                    Some(Fix::Replace(r, fd)) => {
                        msg = r;
                        fds.extend(fd);
                    }
                    None => {}
                },
                0 => {
                    if let Some(&(s, major, minor)) = st.stands.front() {
                        if s == seq {
                            msg[8..10].copy_from_slice(&u16::from(minor).to_le_bytes());
                            msg[10] = major;
                        }
                    }
                }
                35 if Some(msg[1]) == st.present_opcode
                    && u16_at(&msg, 8) == PRESENT_IDLE_NOTIFY =>
                {
                    let pixmap = u32_at(&msg, 24);
                    if st.never_release {
                    } else if hold.is_zero() {
                        release(&node, &mut st, id, pixmap);
                    } else if let Some(o) = st.owed.get_mut(&pixmap) {
                        if !std::mem::replace(&mut o.idle, true) {
                            let _ = releaser.send(Due {
                                at: Instant::now() + hold,
                                pixmap,
                                state: state.clone(),
                            });
                        }
                    }
                }
                _ => {}
            }
            drop(st);
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            wire::send(&client, &msg, &borrowed)?;
        }
        if !from.fill()? {
            return Ok(());
        }
    }
}
