//! X11 framing on a Unix socket, with the fds that travel beside the bytes
//! (`SCM_RIGHTS`): requests from the client, replies, errors and events
//! from the server.

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// One side of the relay: the bytes read and not yet taken, and the fds
/// that came with them (in order: a request's fds arrive with or before
/// its bytes).
pub struct Reader {
    sock: UnixStream,
    pub buf: Vec<u8>,
    pub fds: VecDeque<OwnedFd>,
}

impl Reader {
    pub fn new(sock: UnixStream) -> Self {
        Self {
            sock,
            buf: Vec::new(),
            fds: VecDeque::new(),
        }
    }

    /// Reads more; `false` at the end of the stream.
    pub fn fill(&mut self) -> std::io::Result<bool> {
        let mut data = [0u8; 65536];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(32))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let r = recvmsg(
            &self.sock,
            &mut [IoSliceMut::new(&mut data)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for msg in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                self.fds.extend(fds);
            }
        }
        self.buf.extend_from_slice(&data[..r.bytes]);
        Ok(r.bytes > 0)
    }
}

/// Writes all of `bytes`, with `fds` on the first part.
pub fn send(sock: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let mut off = 0;
    let mut fds = fds;
    while off < bytes.len() {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(32))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            anc.push(SendAncillaryMessage::ScmRights(fds));
        }
        off += sendmsg(
            sock,
            &[IoSlice::new(&bytes[off..])],
            &mut anc,
            SendFlags::NOSIGNAL,
        )?;
        fds = &[];
    }
    Ok(())
}

pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The length of the request at the start of `buf`, if it is all there
/// (BIG-REQUESTS: a zero length field, the real one in the next word).
pub fn request_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < 4 {
        return None;
    }
    let len = match u16_at(buf, 2) {
        0 if buf.len() < 8 => return None,
        0 => u32_at(buf, 4) as usize * 4,
        n => n as usize * 4,
    };
    (len >= 4 && buf.len() >= len).then_some(len)
}

/// The length of the server message at the start of `buf`, if it is all
/// there: 32 bytes, plus the extra words of a reply or a generic event.
pub fn message_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < 32 {
        return None;
    }
    let len = match buf[0] & 0x7f {
        1 | 35 => 32 + u32_at(buf, 4) as usize * 4,
        _ => 32,
    };
    (buf.len() >= len).then_some(len)
}
