//! The media engine: a few threads (one per core unless configured), each
//! owning the RTP and RTCP sockets and the timers of the calls given to
//! it. While it has sockets a thread wakes once per tick (1 ms): it takes
//! every datagram waiting on them (one `epoll_wait`, one `recvmmsg` per
//! ready socket), fires every call whose deadline has passed, and sends
//! what those calls have due. Many calls' packets move per wake-up, and
//! no tokio task runs for a call's media.
//!
//! The call machines (`nida_call::Call`) are unchanged and sans-IO: each
//! lives in a [`Cell`] shared with the call's tokio task, which keeps the
//! control side (SIP, the centre, lookups, the store) and sleeps while
//! the call only moves media. The thread tells the task when the machine
//! has outputs; the task tells the thread ([`MediaCall::poke`]) when it
//! has fed the machine, so that what became due is sent and its new
//! deadline is kept.

use crate::base::bus::{MediaSocket, PortGuard};
use nida_acd::FastMap;
use nida_call::{Call, LegId};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};
use tracing::{debug, warn};

/// How often a thread with sockets wakes to move packets: the most a
/// received packet waits, and the step by which sends are batched.
pub const TICK: Duration = Duration::from_millis(1);
/// Datagrams read from one socket per system call.
const RECV_BATCH: usize = 8;
/// Largest datagram taken (longer ones are cut and then refused by the
/// RTP parser).
const DATAGRAM: usize = 2048;
/// Readiness events taken per `epoll_wait`.
const EVENTS: usize = 1024;
/// The epoll token of the thread's own wake-up eventfd.
const WAKE: u64 = u64::MAX;

/// One call's machine, shared by its task and its media thread.
pub struct Cell {
    call: Mutex<Call>,
    outputs: Notify,
}

impl Cell {
    /// The machine. The lock is held for one input at a time, never
    /// across an await.
    pub fn lock(&self) -> MutexGuard<'_, Call> {
        // A poisoned lock still holds a usable machine.
        self.call.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once the media thread saw the machine holding outputs
    /// (at once if it did since the last call).
    pub async fn outputs(&self) {
        self.outputs.notified().await
    }
}

/// What a call's task asks its media thread.
enum Command {
    Add(u64, Arc<Cell>),
    Attach(u64, LegId, MediaSocket, PortGuard),
    Take(
        u64,
        LegId,
        oneshot::Sender<Option<(MediaSocket, PortGuard)>>,
    ),
    Release(u64, LegId),
    Poke(u64),
    Remove(u64),
}

/// One media thread's mailbox.
#[derive(Clone)]
struct Lane {
    tx: Sender<Command>,
    wake: Arc<OwnedFd>,
}

impl Lane {
    fn send(&self, c: Command) {
        if self.tx.send(c).is_ok() {
            let one: u64 = 1;
            // SAFETY: an eventfd owned by the lane and an 8-byte value.
            // A full counter (it cannot be: the thread reads it) only
            // means the thread is already due to wake.
            unsafe {
                libc::write(
                    self.wake.as_raw_fd(),
                    &one as *const u64 as *const libc::c_void,
                    8,
                );
            }
        }
    }
}

/// The media threads; calls are spread over them in turn.
#[derive(Clone)]
pub struct Engine {
    lanes: Arc<Vec<Lane>>,
    next: Arc<AtomicUsize>,
    ids: Arc<AtomicU64>,
}

impl Engine {
    /// Starts `threads` media threads (at least one). `runtime` is
    /// entered by each thread, for what its calls' ports do when they go
    /// back to the driver.
    pub fn start(threads: usize, runtime: tokio::runtime::Handle) -> std::io::Result<Engine> {
        let mut lanes = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = mpsc::channel();
            let thread = MediaThread::new(rx)?;
            let wake = thread.wake.clone();
            let rt = runtime.clone();
            std::thread::Builder::new()
                .name(format!("nida-media-{i}"))
                .spawn(move || {
                    let _rt = rt.enter();
                    thread.run();
                })?;
            lanes.push(Lane { tx, wake });
        }
        Ok(Engine {
            lanes: Arc::new(lanes),
            next: Arc::new(AtomicUsize::new(0)),
            ids: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Gives a call machine to the next media thread; it is removed when
    /// the returned handle is dropped.
    pub fn add(&self, call: Call) -> MediaCall {
        let lane = self.lanes[self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len()].clone();
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let cell = Arc::new(Cell {
            call: Mutex::new(call),
            outputs: Notify::new(),
        });
        lane.send(Command::Add(id, cell.clone()));
        MediaCall { lane, id, cell }
    }
}

/// A call's place on its media thread.
pub struct MediaCall {
    lane: Lane,
    id: u64,
    /// The machine.
    pub cell: Arc<Cell>,
}

impl MediaCall {
    /// Gives the thread a leg's RTP and RTCP sockets; their port goes
    /// back when the leg is released or the call ends.
    pub fn attach(&self, leg: LegId, socket: MediaSocket, guard: PortGuard) {
        self.lane.send(Command::Attach(self.id, leg, socket, guard));
    }

    /// Takes a leg's sockets and port back (to hand the leg to another
    /// call).
    pub async fn take(&self, leg: LegId) -> Option<(MediaSocket, PortGuard)> {
        let (tx, rx) = oneshot::channel();
        self.lane.send(Command::Take(self.id, leg, tx));
        rx.await.ok().flatten()
    }

    /// Closes a leg's sockets and gives its port back.
    pub fn release(&self, leg: LegId) {
        self.lane.send(Command::Release(self.id, leg));
    }

    /// The task fed the machine: send what became due and take its new
    /// deadline.
    pub fn poke(&self) {
        self.lane.send(Command::Poke(self.id));
    }
}

impl Drop for MediaCall {
    fn drop(&mut self) {
        self.lane.send(Command::Remove(self.id));
    }
}

/// A leg's sockets on the thread.
struct LegSockets {
    leg: LegId,
    socket: MediaSocket,
    guard: PortGuard,
    tokens: [usize; 2],
}

/// A call on the thread.
struct Entry {
    cell: Arc<Cell>,
    legs: Vec<LegSockets>,
    /// The deadline filed in the heap (none while it fires).
    deadline: Option<Instant>,
    touched: bool,
}

/// A registered socket and what it belongs to.
#[derive(Clone, Copy)]
struct Socket {
    fd: RawFd,
    call: u64,
    leg: LegId,
    rtcp: bool,
}

/// Batch buffers for `recvmmsg`.
struct RecvBatch {
    bufs: Vec<[u8; DATAGRAM]>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in the headers only ever point into the
// batch's own vectors, rebuilt before each use on the owning thread.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![[0u8; DATAGRAM]; RECV_BATCH],
            addrs: zeroed(RECV_BATCH),
            iovs: zeroed(RECV_BATCH),
            msgs: zeroed(RECV_BATCH),
        }
    }

    /// Reads what is waiting on `fd`, at most a batch.
    fn recv(&mut self, fd: RawFd) -> usize {
        for i in 0..RECV_BATCH {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr() as *mut libc::c_void,
                iov_len: DATAGRAM,
            };
            let h = &mut self.msgs[i].msg_hdr;
            h.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.msgs[i].msg_len = 0;
        }
        // SAFETY: RECV_BATCH headers pointing at live buffers of this
        // batch; MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                RECV_BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        // An error (an ICMP report, nothing left) ends the read; level
        // triggering reports the socket again if more is waiting.
        n.max(0) as usize
    }

    /// The `i`th datagram read and its source.
    fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let m = &self.msgs[i];
        let from = socket_addr(&self.addrs[i], m.msg_hdr.msg_namelen)?;
        Some((&self.bufs[i][..(m.msg_len as usize).min(DATAGRAM)], from))
    }
}

/// `n` all-zero values of a C struct of the kernel's.
fn zeroed<T: Copy>(n: usize) -> Vec<T> {
    // SAFETY: only used for sockaddr_storage, iovec, mmsghdr and
    // epoll_event, for which all zero bytes are a valid value.
    vec![unsafe { std::mem::zeroed() }; n]
}

/// A source address as the kernel wrote it.
fn socket_addr(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match s.ss_family as i32 {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// One media thread's state.
struct MediaThread {
    epoll: OwnedFd,
    wake: Arc<OwnedFd>,
    rx: Receiver<Command>,
    /// By the engine's own call numbers (never from the network).
    calls: FastMap<u64, Entry>,
    sockets: Vec<Option<Socket>>,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    touched: Vec<u64>,
    batch: RecvBatch,
    out: Vec<u8>,
    events: Vec<libc::epoll_event>,
}

impl MediaThread {
    fn new(rx: Receiver<Command>) -> std::io::Result<MediaThread> {
        // SAFETY: plain system calls; their descriptors are owned at once.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: as above.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        // SAFETY: as above.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if wake < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: as above.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(wake) });
        let t = MediaThread {
            epoll,
            wake,
            rx,
            calls: FastMap::default(),
            sockets: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            batch: RecvBatch::new(),
            out: vec![0u8; 1500],
            events: zeroed(EVENTS),
        };
        t.watch(t.wake.as_raw_fd(), WAKE)?;
        Ok(t)
    }

    fn watch(&self, fd: RawFd, token: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: a live epoll and descriptor, and a valid event.
        let r =
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops watching a leg's sockets.
    fn unwatch(&mut self, leg: &LegSockets) {
        for token in leg.tokens {
            let Some(s) = self.sockets[token].take() else {
                continue;
            };
            // SAFETY: a live epoll; a descriptor not watched is an error
            // that changes nothing.
            unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    s.fd,
                    std::ptr::null_mut(),
                );
            }
            self.free.push(token);
        }
    }

    fn token(&mut self, s: Socket) -> usize {
        match self.free.pop() {
            Some(t) => {
                self.sockets[t] = Some(s);
                t
            }
            None => {
                self.sockets.push(Some(s));
                self.sockets.len() - 1
            }
        }
    }

    fn run(mut self) {
        let mut next_tick = Instant::now();
        loop {
            if !self.commands() {
                return;
            }
            if self.sockets.len() == self.free.len() {
                // No socket: sleep until a deadline or a command.
                let wait = self.timers.peek().map(|Reverse((t, _))| {
                    let d = t.saturating_duration_since(Instant::now());
                    // Rounded up: waking early would spin.
                    d.as_millis() as i32 + i32::from(d.subsec_micros() % 1000 != 0)
                });
                self.poll(wait.unwrap_or(-1));
                next_tick = Instant::now();
            } else {
                let now = Instant::now();
                if next_tick > now {
                    std::thread::sleep(next_tick - now);
                }
                next_tick += TICK;
                let now = Instant::now();
                if next_tick + TICK < now {
                    // Far behind (a stall): start again from now.
                    next_tick = now;
                }
                self.poll(0);
            }
            self.fire(Instant::now());
            self.refresh();
        }
    }

    /// Applies the mailbox; false once every sender is gone.
    fn commands(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(c) => self.command(c),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Add(id, cell) => {
                self.calls.insert(
                    id,
                    Entry {
                        cell,
                        legs: Vec::new(),
                        deadline: None,
                        touched: false,
                    },
                );
                // Not touched yet: the task attaches the caller's sockets
                // and then pokes. A first packet polled before then would
                // find no socket and be lost (the stream's marked one).
            }
            Command::Attach(id, leg, socket, guard) => {
                if !self.calls.contains_key(&id) {
                    return;
                }
                let mut tokens = [0; 2];
                for (i, rtcp) in [false, true].into_iter().enumerate() {
                    let fd = socket.get(rtcp).as_raw_fd();
                    let t = self.token(Socket {
                        fd,
                        call: id,
                        leg,
                        rtcp,
                    });
                    if let Err(e) = self.watch(fd, t as u64) {
                        warn!(error = %e, "cannot watch an RTP socket");
                    }
                    tokens[i] = t;
                }
                if let Some(e) = self.calls.get_mut(&id) {
                    e.legs.push(LegSockets {
                        leg,
                        socket,
                        guard,
                        tokens,
                    });
                }
                self.touch(id);
            }
            // What the machine queued before the task let the leg go (its
            // last RTCP report, with BYE) still goes out on its sockets.
            Command::Take(id, leg, reply) => {
                self.flush(id);
                let _ = reply.send(self.detach(id, leg));
            }
            Command::Release(id, leg) => {
                self.flush(id);
                self.detach(id, leg);
            }
            Command::Poke(id) => self.touch(id),
            Command::Remove(id) => {
                self.flush(id);
                if let Some(e) = self.calls.remove(&id) {
                    for l in &e.legs {
                        self.unwatch(l);
                    }
                }
            }
        }
    }

    fn detach(&mut self, id: u64, leg: LegId) -> Option<(MediaSocket, PortGuard)> {
        let e = self.calls.get_mut(&id)?;
        let i = e.legs.iter().position(|l| l.leg == leg)?;
        let l = e.legs.remove(i);
        self.unwatch(&l);
        Some((l.socket, l.guard))
    }

    fn touch(&mut self, id: u64) {
        if let Some(e) = self.calls.get_mut(&id) {
            if !e.touched {
                e.touched = true;
                self.touched.push(id);
            }
        }
    }

    /// Takes what is ready: `timeout` in milliseconds (0: only what is
    /// there, -1: until something is).
    fn poll(&mut self, mut timeout: i32) {
        loop {
            // SAFETY: a live epoll and a buffer of EVENTS events.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    self.events.as_mut_ptr(),
                    EVENTS as i32,
                    timeout,
                )
            };
            if n <= 0 {
                return;
            }
            for i in 0..n as usize {
                let token = self.events[i].u64;
                if token == WAKE {
                    let mut v: u64 = 0;
                    // SAFETY: the thread's own non-blocking eventfd.
                    unsafe {
                        libc::read(
                            self.wake.as_raw_fd(),
                            &mut v as *mut u64 as *mut libc::c_void,
                            8,
                        );
                    }
                    self.commands();
                } else {
                    self.readable(token as usize);
                }
            }
            if (n as usize) < EVENTS {
                return;
            }
            timeout = 0;
        }
    }

    /// Feeds the machine what one socket holds.
    fn readable(&mut self, token: usize) {
        let Some(Some(s)) = self.sockets.get(token).copied() else {
            return;
        };
        let Some(e) = self.calls.get(&s.call) else {
            return;
        };
        let n = self.batch.recv(s.fd);
        if n == 0 {
            return;
        }
        let now = Instant::now();
        {
            let mut call = e.cell.lock();
            for i in 0..n {
                if let Some((data, from)) = self.batch.get(i) {
                    if s.rtcp {
                        call.handle_rtcp(now, s.leg, from, data);
                    } else {
                        call.handle_rtp(now, s.leg, from, data);
                    }
                }
            }
        }
        self.touch(s.call);
    }

    /// Fires every call whose deadline has passed.
    fn fire(&mut self, now: Instant) {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(e) = self.calls.get_mut(&id) else {
                continue;
            };
            if e.deadline != Some(t) {
                // Stale: the call's deadline moved.
                continue;
            }
            e.deadline = None;
            e.cell.lock().handle_timeout(now);
            self.touch(id);
        }
    }

    /// Sends what one call has due now.
    fn flush(&mut self, id: u64) {
        if let Some(e) = self.calls.get(&id) {
            send_due(&mut e.cell.lock(), &e.legs, Instant::now(), &mut self.out);
        }
    }

    /// Sends what the touched calls have due, tells their tasks of
    /// outputs, and files their deadlines.
    fn refresh(&mut self) {
        let now = Instant::now();
        let touched = std::mem::take(&mut self.touched);
        for id in &touched {
            let Some(e) = self.calls.get_mut(id) else {
                continue;
            };
            e.touched = false;
            let mut call = e.cell.lock();
            send_due(&mut call, &e.legs, now, &mut self.out);
            if call.has_output() {
                e.cell.outputs.notify_one();
            }
            let deadline = call.poll_timeout();
            drop(call);
            if deadline != e.deadline {
                e.deadline = deadline;
                if let Some(t) = deadline {
                    self.timers.push(Reverse((t, *id)));
                }
            }
        }
        // The vector's room is kept for the next tick.
        self.touched = touched;
        self.touched.clear();
    }
}
/// Sends every datagram the machine has due at `now` on its leg's
/// socket; one for a leg whose sockets are gone is dropped.
fn send_due(call: &mut Call, legs: &[LegSockets], now: Instant, out: &mut [u8]) {
    while let Some(t) = call.poll_transmit(now, out) {
        let Some(l) = legs.iter().find(|l| l.leg == t.leg) else {
            continue;
        };
        if let Err(err) = l.socket.get(t.rtcp).send_to(&out[..t.len], t.dest) {
            debug!(error = %err, dest = %t.dest, rtcp = t.rtcp, "media send failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RecvBatch;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    /// Waits until `sock` is readable (an event, not a sleep).
    fn readable(sock: &UdpSocket) {
        let mut p = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 10_000) };
        assert_eq!(n, 1, "the datagrams arrive");
    }

    fn batch_from(local: &str, peer: &str) {
        let rx = UdpSocket::bind(local).unwrap();
        let tx = UdpSocket::bind(peer).unwrap();
        let to = rx.local_addr().unwrap();
        for i in 0..11u8 {
            tx.send_to(&[i; 172], to).unwrap();
        }
        readable(&rx);
        let mut b = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 11 {
            let n = b.recv(rx.as_raw_fd());
            if n == 0 {
                readable(&rx);
                continue;
            }
            // At most a batch per call.
            assert!(n <= super::RECV_BATCH);
            for i in 0..n {
                let (data, from) = b.get(i).unwrap();
                assert_eq!(from, tx.local_addr().unwrap());
                assert_eq!(data.len(), 172);
                got.push(data[0]);
            }
        }
        assert_eq!(
            got,
            (0..11).collect::<Vec<u8>>(),
            "every datagram, in order"
        );
        // Nothing left: a read returns none and does not block.
        assert_eq!(b.recv(rx.as_raw_fd()), 0);
    }

    #[test]
    fn a_batch_reads_every_datagram_and_its_ipv4_source() {
        batch_from("127.0.0.1:0", "127.0.0.1:0");
    }

    #[test]
    fn a_batch_reads_every_datagram_and_its_ipv6_source() {
        batch_from("[::1]:0", "[::1]:0");
    }

    #[test]
    fn an_unknown_address_family_is_no_source() {
        // SAFETY: all-zero sockaddr_storage is valid (family AF_UNSPEC).
        let s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        assert_eq!(super::socket_addr(&s, 128), None::<SocketAddr>);
    }
}
