//! What happens inside a dialog after the answer: offers and answers in
//! re-INVITE and UPDATE both ways (RFC 3264, RFC 3311, RFC 6337), hold
//! and resume from nida's side, glare (RFC 3261 14.1), session timers
//! (RFC 4028) and reliable provisional responses (RFC 3262).

use super::{
    non2xx_ack, sent_by, tx_key, CallHandle, CallState, EndReason, Endpoint, Event, Owner,
    RequestCtx, Transport, TxStart, COOKIE,
};
use crate::message::{Method, Request, Response};
use crate::sdp::SessionDescription;
use crate::session_timer::{self, SessionTimer, TimerDue};
use crate::transaction::ClientVerdict;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::debug;

/// A re-INVITE or UPDATE nida sent and has not settled.
#[derive(Debug)]
pub(super) struct OutRequest {
    /// Its client transaction.
    pub(super) key: String,
    /// The request (for the ACK of a non-2xx).
    req: Request,
    /// nida's hold state before it, restored when it fails.
    hold_before: bool,
    /// The ACK of its 2xx, resent when the 2xx is.
    ack: Option<Vec<u8>>,
}

/// Reliable provisional responses of a call nida answers (RFC 3262).
#[derive(Debug, Default)]
pub(super) struct Reliable {
    /// The last RSeq sent (0: none yet).
    rseq: u32,
    unacked: Option<Unacked>,
    /// The 2xx (and its CSeq) waiting for the PRACK of `unacked`.
    held_2xx: Option<(Vec<u8>, u32)>,
}

#[derive(Debug)]
struct Unacked {
    rseq: u32,
    bytes: Vec<u8>,
    /// `None` over a reliable transport (no retransmission).
    interval: Option<Duration>,
    next: Instant,
    give_up: Instant,
}

impl Reliable {
    pub(super) fn next_timer(&self) -> Option<Instant> {
        let u = self.unacked.as_ref()?;
        Some(match u.interval {
            Some(_) => u.next.min(u.give_up),
            None => u.give_up,
        })
    }

    /// The final response went out: nothing more to retransmit.
    pub(super) fn stop(&mut self) {
        self.unacked = None;
        self.held_2xx = None;
    }

    /// Keeps the 2xx until the reliable 18x out is acknowledged; false
    /// when none is out (send it now).
    pub(super) fn hold_2xx(&mut self, bytes: Vec<u8>, cseq: u32) -> bool {
        if self.unacked.is_none() {
            return false;
        }
        self.held_2xx = Some((bytes, cseq));
        true
    }
}

/// What a request inside the dialog offered.
enum Offered {
    /// An SDP offer.
    Sdp(SessionDescription),
    /// No body.
    Nothing,
}

impl super::Call {
    /// What a response to nida's INVITE says of the dialog it makes (a
    /// reliable 18x's early dialog, or the 2xx): the peer's To with its
    /// tag, its Contact as the remote target, and the route set, the
    /// Record-Route in reverse order (RFC 3261 12.1.2).
    pub(super) fn learn_dialog(&mut self, resp: &Response) {
        self.remote = resp.headers.get("To").unwrap_or_default().to_string();
        if let Some(c) = resp
            .headers
            .list("Contact")
            .next()
            .and_then(|c| crate::headers::NameAddr::parse(c).ok())
        {
            self.remote_target = c.uri;
        }
        self.route_set = resp
            .headers
            .list("Record-Route")
            .map(str::to_string)
            .collect();
        self.route_set.reverse();
    }

    /// Whether an offer cannot go out now: the dialog is not confirmed,
    /// a 2xx waits for its ACK, or a request of nida's is unsettled.
    pub(super) fn busy(&self) -> bool {
        self.state != CallState::Confirmed
            || self.pending_2xx.is_some()
            || self.out.as_ref().is_some_and(|o| o.ack.is_none())
    }
}

impl Endpoint {
    /// The body of an in-dialog request as an offer; `Err` is the status
    /// to answer (415 for another type, 400 for unreadable SDP).
    fn offered(&mut self, req: &Request) -> Result<Offered, (u16, &'static str)> {
        if req.body.is_empty() {
            return Ok(Offered::Nothing);
        }
        let sdp_type = req
            .headers
            .get("Content-Type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"));
        if !sdp_type {
            return Err((415, "Unsupported Media Type"));
        }
        SessionDescription::parse(&req.body)
            .map(Offered::Sdp)
            .map_err(|_| {
                self.stats.malformed += 1;
                (400, "Bad Session Description")
            })
    }

    /// Answers a re-INVITE or UPDATE inside a confirmed dialog: its offer
    /// (or nida's own, for a re-INVITE without one), its session timer.
    /// Returns the status and the response to send.
    fn in_dialog_offer(
        &mut self,
        now: Instant,
        handle: CallHandle,
        ctx: &RequestCtx,
    ) -> (u16, Response) {
        let invite = ctx.req.method == Method::Invite;
        let refuse = |ep: &Endpoint, status: u16, reason: &str| {
            (
                status,
                ep.response(&ctx.req, &ctx.via, ctx.source, status, reason, None),
            )
        };
        let Some(call) = self.calls.get(&handle) else {
            return refuse(self, 481, "Call/Transaction Does Not Exist");
        };
        if call.state != CallState::Confirmed || call.pending_2xx.is_some() {
            // RFC 3261 14.2: an INVITE while one is pending gets 500 with
            // Retry-After (RFC 3311 5.2 for UPDATE alike).
            let (status, mut resp) = refuse(self, 500, "Server Internal Error");
            resp.headers.push("Retry-After", "1");
            return (status, resp);
        }
        let offering = call.out.as_ref().is_some_and(|o| o.ack.is_none())
            || call.media.as_ref().is_some_and(|m| m.offering());
        let wish = self.cfg.session_timer;
        let agreed = match session_timer::as_uas(&ctx.req.headers, wish) {
            Ok(a) => a,
            Err(min) => {
                let (status, mut resp) = refuse(self, 422, "Session Interval Too Small");
                resp.headers.push("Min-SE", min.as_secs().to_string());
                return (status, resp);
            }
        };
        let offer = match self.offered(&ctx.req) {
            Ok(o) => o,
            Err((status, reason)) => {
                let (status, mut resp) = refuse(self, status, reason);
                if status == 415 {
                    resp.headers.push("Accept", "application/sdp");
                }
                return (status, resp);
            }
        };
        if offering && matches!(offer, Offered::Sdp(_)) {
            // Glare: both sides offered at once (RFC 3261 14.2).
            return refuse(self, 491, "Request Pending");
        }
        let Some(media) = self.calls.get_mut(&handle).and_then(|c| c.media.as_mut()) else {
            return refuse(self, 488, "Not Acceptable Here");
        };
        let before = media.current().copied();
        let body = match offer {
            Offered::Sdp(sd) => match media.answer(&sd) {
                Some((body, n)) => {
                    if before != Some(n) {
                        self.events.push_back(Event::Media {
                            call: handle,
                            media: n,
                        });
                    }
                    Some(body)
                }
                None => return refuse(self, 488, "Not Acceptable Here"),
            },
            // A re-INVITE without SDP: nida offers, the ACK answers.
            Offered::Nothing if invite => Some(media.offer()),
            // An UPDATE without SDP: a session refresh.
            Offered::Nothing => None,
        };
        let mut resp = self.response(&ctx.req, &ctx.via, ctx.source, 200, "OK", None);
        self.add_contact(&mut resp.headers, ctx.transport);
        if let Some(body) = body {
            resp.headers.push("Content-Type", "application/sdp");
            resp.body = body;
        }
        if let Some(call) = self.calls.get_mut(&handle) {
            call.timer = agreed.map(|a| {
                session_timer::response_headers(&mut resp.headers, &a);
                SessionTimer::start(now, &a)
            });
            let next = call.next_timer();
            self.schedule(Owner::Call(handle), next);
        }
        (200, resp)
    }

    /// A re-INVITE: hold, resume, a move of the media, a new codec, or a
    /// session refresh.
    pub(super) fn handle_reinvite(&mut self, now: Instant, ctx: RequestCtx) {
        let key = tx_key(&ctx.req, &ctx.via, &Method::Invite);
        self.new_server_tx(&key, true, &ctx);
        let Some(handle) = self.dialog_of(&ctx.req) else {
            let resp = self.response(
                &ctx.req,
                &ctx.via,
                ctx.source,
                481,
                "Call/Transaction Does Not Exist",
                None,
            );
            self.respond_in_tx(now, &key, 481, resp.to_bytes());
            return;
        };
        let (status, resp) = self.in_dialog_offer(now, handle, &ctx);
        let bytes = resp.to_bytes();
        self.respond_in_tx(now, &key, status, bytes.clone());
        if status == 200 {
            let cseq = ctx.req.cseq().map(|c| c.0).unwrap_or(0);
            self.start_2xx(now, handle, bytes, cseq);
        }
    }

    /// UPDATE (RFC 3311): an offer answered at once, or a session refresh.
    pub(super) fn handle_update(&mut self, now: Instant, ctx: &RequestCtx) {
        let Some(handle) = self.dialog_of(&ctx.req) else {
            self.reply(now, ctx, 481, "Call/Transaction Does Not Exist", &[]);
            return;
        };
        let (status, resp) = self.in_dialog_offer(now, handle, ctx);
        let key = tx_key(&ctx.req, &ctx.via, &ctx.req.method);
        self.new_server_tx(&key, false, ctx);
        self.respond_in_tx(now, &key, status, resp.to_bytes());
    }

    /// PRACK (RFC 3262 3): acknowledges the reliable provisional response
    /// its RAck names; anything else is 481.
    pub(super) fn handle_prack(&mut self, now: Instant, ctx: &RequestCtx) {
        let rack: Vec<u32> = ctx
            .req
            .headers
            .get("RAck")
            .unwrap_or("")
            .split_whitespace()
            .take(2)
            .filter_map(|n| n.parse().ok())
            .collect();
        let mut release = None;
        let matched = self.dialog_of(&ctx.req).is_some_and(|h| {
            let Some(call) = self.calls.get_mut(&h) else {
                return false;
            };
            let cseq = call.invite.cseq().map(|c| c.0).unwrap_or(0);
            let Some(r) = call.rel100.as_mut() else {
                return false;
            };
            let hit = r.unacked.as_ref().is_some_and(|u| rack == [u.rseq, cseq]);
            if hit {
                r.unacked = None;
                release = r.held_2xx.take().map(|b| (h, b));
            }
            hit
        });
        if matched {
            self.reply(now, ctx, 200, "OK", &[]);
            if let Some((h, (bytes, cseq))) = release {
                self.send_2xx(now, h, bytes, cseq);
            }
        } else {
            self.reply(now, ctx, 481, "Call/Transaction Does Not Exist", &[]);
        }
    }

    /// Sends a 18x reliably: `Require: 100rel` and the next RSeq,
    /// retransmitted over UDP until its PRACK; none while another waits
    /// for its PRACK (RFC 3262 3).
    pub(super) fn ring_reliably(&mut self, now: Instant, handle: CallHandle, mut resp: Response) {
        let first_rseq = (self.rng.next_u32() >> 1).max(1);
        let t = self.cfg.timers;
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let (key, transport) = (call.invite_tx.clone(), call.transport);
        let Some(r) = call.rel100.as_mut() else {
            return;
        };
        if r.unacked.is_some() {
            return;
        }
        r.rseq = if r.rseq == 0 { first_rseq } else { r.rseq + 1 };
        resp.headers.push("Require", "100rel");
        resp.headers.push("RSeq", r.rseq.to_string());
        let bytes = resp.to_bytes();
        r.unacked = Some(Unacked {
            rseq: r.rseq,
            bytes: bytes.clone(),
            interval: (!transport.reliable()).then_some(t.t1),
            next: now + t.t1,
            give_up: now + t.timeout(),
        });
        let next = call.next_timer();
        self.respond_in_tx(now, &key, resp.status, bytes);
        self.schedule(Owner::Call(handle), next);
    }

    /// A reliable 18x to nida's INVITE: PRACK it once (RFC 3262 4),
    /// inside the early dialog it makes.
    pub(super) fn send_prack(&mut self, now: Instant, handle: CallHandle, resp: &Response) {
        let Some(rseq) = resp
            .headers
            .get("RSeq")
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.state != CallState::Calling || rseq <= call.pracked {
            return;
        }
        call.pracked = rseq;
        call.learn_dialog(resp);
        let invite_cseq = call.invite.cseq().map(|c| c.0).unwrap_or(1);
        let rack = format!("{rseq} {invite_cseq} INVITE");
        self.send_in_dialog(now, handle, Method::Prack, |req| {
            req.headers.push("RAck", rack);
        });
    }

    /// Holds (`on`) or resumes a call from nida's side: a re-INVITE whose
    /// offer is `sendonly` (or `sendrecv` again). While another offer is
    /// in progress, it goes out when that one is settled. False when the
    /// call is not up.
    pub fn hold(&mut self, now: Instant, handle: CallHandle, on: bool) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        let Some(media) = call.media.as_mut() else {
            return false;
        };
        if matches!(call.state, CallState::Calling | CallState::Early) {
            return false;
        }
        media.set_hold(on);
        if !call.busy() {
            self.send_offer(now, handle);
        } else {
            call.retry_offer = Some(now + self.cfg.timers.t1);
            let next = call.next_timer();
            self.schedule(Owner::Call(handle), next);
        }
        true
    }

    /// Whether nida holds the call.
    pub fn held(&self, handle: CallHandle) -> bool {
        self.calls
            .get(&handle)
            .and_then(|c| c.media.as_ref())
            .is_some_and(|m| m.held())
    }

    /// A re-INVITE carrying nida's offer (hold, resume, or a session
    /// refresh by re-INVITE).
    fn send_offer(&mut self, now: Instant, handle: CallHandle) {
        let wish = self.cfg.session_timer;
        let branch = format!("{COOKIE}{}", self.rng.hex());
        let contact_addr = self.cfg.local_addr;
        let tls = self.tls_addr;
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Some(media) = call.media.as_mut() else {
            return;
        };
        let hold_before = media.held();
        let body = media.offer();
        call.local_cseq += 1;
        let dest = call.next_hop();
        let local = sent_by(contact_addr, tls, call.transport);
        let mut req = call.dialog_request(Method::Invite, call.local_cseq, &branch, local);
        let param = call.transport.uri_param();
        req.headers
            .push("Contact", format!("<sip:nida@{local}{param}>"));
        req.headers.push("Allow", super::ALLOW);
        req.headers.push("Supported", "timer");
        session_timer::request_headers(&mut req.headers, call.timer.map(|t| t.interval), wish);
        req.headers.push("Content-Type", "application/sdp");
        req.body = body;
        req.headers.push("User-Agent", self.cfg.user_agent.as_str());
        let key = format!("{branch}|INVITE");
        let bytes = req.to_bytes();
        let transport = call.transport;
        call.out = Some(OutRequest {
            key: key.clone(),
            req,
            hold_before,
            ack: None,
        });
        self.start_client_tx(now, key, TxStart::Invite(handle), (transport, dest), bytes);
    }

    /// A session refresh from nida (the refresher): an UPDATE without
    /// SDP when the peer allows UPDATE, else a re-INVITE with nida's
    /// offer unchanged (RFC 4028 7.4).
    fn refresh(&mut self, now: Instant, handle: CallHandle) {
        let wish = self.cfg.session_timer;
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        // Nothing twice: the answer to this one restarts the timer.
        if let Some(t) = call.timer.as_mut() {
            t.since = now;
        }
        if call.busy() {
            return;
        }
        if !call.peer_update {
            self.send_offer(now, handle);
            return;
        }
        let interval = call.timer.map(|t| t.interval);
        let hold_before = call.media.as_ref().is_some_and(|m| m.held());
        let key = self.send_in_dialog(now, handle, Method::Update, |req| {
            session_timer::request_headers(&mut req.headers, interval, wish);
            req.headers.push("Supported", "timer");
        });
        if let (Some(key), Some(call)) = (key, self.calls.get_mut(&handle)) {
            call.out = Some(OutRequest {
                key,
                req: Request {
                    method: Method::Update,
                    uri: String::new(),
                    headers: Default::default(),
                    body: Vec::new(),
                },
                hold_before,
                ack: Some(Vec::new()),
            });
        }
    }

    /// The answer to a re-INVITE or UPDATE of nida's.
    pub(super) fn out_response(
        &mut self,
        now: Instant,
        handle: CallHandle,
        resp: &Response,
        verdict: ClientVerdict,
        (transport, dest): (Transport, SocketAddr),
    ) {
        let owned_call_id = self.calls.get(&handle).is_some_and(|c| c.uac_ack.is_some());
        let backoff = if owned_call_id {
            // RFC 3261 14.1: 2.1 to 4 s for the Call-ID's owner ...
            Duration::from_millis(2100 + u64::from(self.rng.next_u32() % 1901))
        } else {
            // ... 0 to 2 s for the other side.
            Duration::from_millis(u64::from(self.rng.next_u32() % 2001))
        };
        let branch = format!("{COOKIE}{}", self.rng.hex());
        let local = sent_by(self.cfg.local_addr, self.tls_addr, transport);
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Some(out) = call.out.as_ref() else {
            return;
        };
        let invite = out.req.method == Method::Invite;
        if resp.status < 200 {
            return;
        }
        let (t, d) = (call.transport, call.next_hop());
        if resp.status < 300 {
            if let Some(ack) = out.ack.clone().filter(|a| !a.is_empty()) {
                // A retransmitted 2xx: the same ACK.
                self.send(t, d, ack);
                return;
            }
            if verdict != ClientVerdict::Deliver {
                return;
            }
            if invite {
                let cseq = out.req.cseq().map(|c| c.0).unwrap_or(1);
                let ack = call
                    .dialog_request(Method::Ack, cseq, &branch, local)
                    .to_bytes();
                if let Some(out) = call.out.as_mut() {
                    out.ack = Some(ack.clone());
                }
                self.send(t, d, ack);
            } else {
                call.out = None;
            }
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            if invite {
                let answer = SessionDescription::parse(&resp.body).ok();
                let media = call.media.as_mut();
                if let (Some(m), Some(a)) = (media, answer) {
                    if let Some(n) = m.take_answer(&a) {
                        self.events.push_back(Event::Media {
                            call: handle,
                            media: n,
                        });
                    }
                }
            }
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            call.timer = session_timer::as_uac(&resp.headers).map(|a| SessionTimer::start(now, &a));
            let next = call.next_timer();
            self.schedule(Owner::Call(handle), next);
            return;
        }
        if verdict != ClientVerdict::Deliver {
            return;
        }
        if invite {
            let ack = non2xx_ack(&out.req, resp);
            self.send(transport, dest, ack);
        }
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let out = call.out.take();
        let hold_before = out.as_ref().is_some_and(|o| o.hold_before);
        if let Some(m) = call.media.as_mut() {
            m.withdraw();
        }
        match resp.status {
            // The dialog is gone (RFC 3261 12.2.1.2).
            408 | 481 => self.send_bye(now, handle, EndReason::SessionExpired),
            491 => {
                // Glare: try again after the RFC's random wait.
                debug!(call_id = %call.call_id, ?backoff, "491: offering again later");
                call.retry_offer = Some(now + backoff);
                let next = call.next_timer();
                self.schedule(Owner::Call(handle), next);
            }
            status if !invite => {
                // The peer takes no UPDATE after all: refresh by re-INVITE.
                debug!(status, "UPDATE refused: refreshing by re-INVITE");
                call.peer_update = false;
                call.retry_offer = Some(now);
                let next = call.next_timer();
                self.schedule(Owner::Call(handle), next);
            }
            status => {
                // Refused: the session stays as it was (RFC 3261 14.1).
                debug!(status, "re-INVITE refused");
                if let Some(m) = call.media.as_mut() {
                    m.set_hold(hold_before);
                }
            }
        }
    }

    /// The dialog's own timers: reliable provisionals, a 491's wait, the
    /// session timer.
    pub(super) fn dialog_timers(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let (transport, dest) = (call.transport, call.invite_dest);
        let mut resend = None;
        let mut give_up = false;
        if let Some(u) = call.rel100.as_mut().and_then(|r| r.unacked.as_mut()) {
            if now >= u.give_up {
                give_up = true;
            } else if let Some(i) = u.interval.filter(|_| now >= u.next) {
                let i = i * 2;
                u.interval = Some(i);
                u.next = now + i;
                resend = Some(u.bytes.clone());
            }
        }
        if give_up {
            let held = call.rel100.as_mut().and_then(|r| r.held_2xx.take());
            if let Some(r) = call.rel100.as_mut() {
                r.stop();
            }
            match held {
                // Answered meanwhile: the 2xx goes out after all.
                Some((bytes, cseq)) => self.send_2xx(now, handle, bytes, cseq),
                // No PRACK in 64*T1: the INVITE fails (RFC 3262 3).
                None => self.reject(now, handle, 504, "Server Time-out", &[]),
            }
            return;
        }
        if let Some(bytes) = resend {
            self.send(transport, dest, bytes);
        }
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.retry_offer.is_some_and(|t| now >= t) {
            if call.busy() {
                call.retry_offer = Some(now + self.cfg.timers.t1);
            } else {
                call.retry_offer = None;
                self.send_offer(now, handle);
            }
        }
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        match call.timer.and_then(|t| t.due(now)) {
            Some(TimerDue::Refresh) => self.refresh(now, handle),
            Some(TimerDue::Expired) => {
                debug!(call_id = %call.call_id, "session timer expired: BYE");
                self.send_bye(now, handle, EndReason::SessionExpired);
            }
            None => {}
        }
    }
}
