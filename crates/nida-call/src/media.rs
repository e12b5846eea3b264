//! The media relations between legs: who hears whom (the bridge relays
//! the payload, transcoding between µ-law and A-law), the stereo tape of a
//! recorded call, and each leg's RTP session as negotiated.

use crate::io::{CallEvent, Recording};
use crate::leg::{LegId, LegState};
use crate::machine::{Bridge, Call};
use nida_media::srtp::{SrtpContext, Suite};
use nida_media::{Law, RtpSession, SessionConfig};
use nida_sip::sdp::{self, Codec, Negotiated, SessionDescription};
use std::time::{Duration, Instant};

/// The G.711 law of a codec.
/// The law a session works in for a codec: a G.722 phone's audio is
/// carried in PCMU inside nida (see [`nida_media::RtpSession::set_g722`]).
pub fn law_of(c: Codec) -> Law {
    match c {
        Codec::Pcmu | Codec::G722 => Law::Mu,
        Codec::Pcma => Law::A,
    }
}

/// The SRTP suite of an SDES crypto line.
fn suite_of(s: sdp::CryptoSuite) -> Suite {
    match s {
        sdp::CryptoSuite::AesCm128HmacSha1_80 => Suite::AesCm128HmacSha1_80,
        sdp::CryptoSuite::AesCm128HmacSha1_32 => Suite::AesCm128HmacSha1_32,
    }
}

impl Call {
    /// The RTP session of a leg as negotiated, its SSRC, first sequence
    /// number and timestamp drawn from the call's generator; SRTP when
    /// the peer gave its key and nida has its own (`srtp`).
    pub(crate) fn leg_rtp(
        &mut self,
        now: Instant,
        leg: LegId,
        n: &Negotiated,
        srtp: Option<[u8; 30]>,
    ) -> RtpSession {
        let seed = self.rng.next_u64();
        let mut rtp = RtpSession::new(
            now,
            SessionConfig {
                law: law_of(n.codec),
                telephone_event: n.telephone_event,
                ssrc: (seed >> 32) as u32,
                initial_seq: (seed >> 8) as u16,
                initial_ts: seed as u32,
                remote: n.remote,
                rtp_timeout: self.cfg.rtp_timeout,
                keep_audio: false,
            },
        );
        Self::apply_media(now, &mut rtp, n);
        let wall = Duration::from_secs(self.start_unix.max(0) as u64)
            + now.saturating_duration_since(self.start);
        rtp.enable_rtcp(now, n.rtcp, n.rtcp_mux, wall);
        if let (Some(mine), Some(peer)) = (srtp, n.srtp) {
            let suite = suite_of(peer.suite);
            rtp.set_srtp(
                SrtpContext::new(suite, &mine),
                SrtpContext::new(suite, &peer.master),
            );
            self.event(CallEvent::MediaSecured {
                leg,
                suite: peer.suite.name(),
            });
        }
        rtp
    }

    /// What the agreed media says about sending: the packet time, the
    /// direction (no sending while the peer holds, no RTP timeout unless
    /// media flows both ways), in-band key detection when the peer has no
    /// telephone-event.
    fn apply_media(now: Instant, rtp: &mut RtpSession, n: &Negotiated) {
        if rtp.g722() != (n.codec == Codec::G722) {
            rtp.set_g722(n.codec == Codec::G722);
        }
        rtp.set_ptime(std::time::Duration::from_millis(u64::from(n.ptime)));
        rtp.set_direction(
            now,
            n.direction.sends(),
            n.direction == sdp::Direction::SendRecv,
        );
        rtp.set_inband_dtmf(n.telephone_event.is_none());
    }

    /// An offer and answer in a leg's dialog changed its media: the RTP
    /// session follows (address, codec, packet time, direction, the
    /// peer's SRTP key); a leg not yet up keeps it for when it is.
    pub(crate) fn media_changed(&mut self, now: Instant, leg: LegId, n: Negotiated) {
        let Some(l) = self.leg_mut(leg) else {
            return;
        };
        if l.rtp.is_none() {
            if l.answer.is_some() {
                l.answer = Some(n);
            }
            return;
        }
        let before = l.media.replace(n);
        let rekey = before.is_some_and(|b| b.srtp != n.srtp);
        let mine = l.srtp;
        let Some(rtp) = l.rtp.as_mut() else {
            return;
        };
        // Only a new address in the SDP moves the media: a peer behind NAT
        // names the same private address in every re-INVITE, and the
        // source latched from its packets must stay.
        if before.map(|b| b.remote) != Some(n.remote) {
            rtp.set_remote(now, n.remote);
            rtp.set_rtcp_dest(n.rtcp, n.rtcp_mux);
        }
        rtp.set_codec(law_of(n.codec), n.telephone_event);
        Self::apply_media(now, rtp, &n);
        if let (true, Some(mine), Some(peer)) = (rekey, mine, n.srtp) {
            let suite = suite_of(peer.suite);
            rtp.set_srtp(
                SrtpContext::new(suite, &mine),
                SrtpContext::new(suite, &peer.master),
            );
        }
        self.event(CallEvent::MediaChanged {
            leg,
            remote: n.remote,
            codec: n.codec.name(),
            direction: n.direction,
        });
        if self.bridge.is_some_and(|b| b.leg == leg) {
            self.bridged_media(now, &n);
        }
    }

    /// The audio a leg nida placed agreed to in its answer; when nida
    /// offered SRTP the answer must be SRTP too: a phone that answers
    /// plain RTP to it (breaking RFC 3264) gets no call.
    pub(crate) fn leg_answer(
        &self,
        leg: LegId,
        answer: Option<&SessionDescription>,
    ) -> Option<Negotiated> {
        let srtp = self.leg(leg).and_then(|l| l.srtp);
        let n = sdp::negotiate(answer?, &self.cfg.codecs, srtp.is_some())?;
        (srtp.is_none() || n.srtp.is_some()).then_some(n)
    }

    /// An answered leg's media starts: its RTP session (relaying what it
    /// receives to whoever hears it), and the leg is up.
    pub(crate) fn bring_up(
        &mut self,
        now: Instant,
        leg: LegId,
        n: Negotiated,
        srtp: Option<[u8; 30]>,
    ) {
        let mut rtp = self.leg_rtp(now, leg, &n, srtp);
        rtp.set_relay(true);
        if let Some(l) = self.leg_mut(leg) {
            l.state = LegState::Up;
            l.rtp = Some(rtp);
            l.media = Some(n);
        }
    }

    /// A new leg that is up at once (adopted from another call, or a
    /// dialog taking another's place): `role`, media `n`, nida's SRTP
    /// key on it.
    pub(crate) fn add_leg_up(
        &mut self,
        now: Instant,
        role: crate::leg::Role,
        n: Negotiated,
        srtp: Option<[u8; 30]>,
    ) -> LegId {
        let leg = self.new_leg_id();
        let mut l = crate::leg::Leg::placing(leg, role);
        l.srtp = srtp;
        self.legs.push(l);
        self.bring_up(now, leg, n, srtp);
        leg
    }

    /// A leg nida placed answered with `n`: its media starts (see
    /// [`Call::bring_up`]), or, with no usable audio, it is hung up;
    /// whether it is up.
    pub(crate) fn answered_leg(&mut self, now: Instant, leg: LegId, n: Option<Negotiated>) -> bool {
        let Some(n) = n else {
            self.outputs.push_back(crate::Output::Hangup(leg));
            return false;
        };
        let srtp = self.leg(leg).and_then(|l| l.srtp);
        self.bring_up(now, leg, n, srtp);
        true
    }

    /// Bridges the caller (when on the line) to an answered leg.
    pub(crate) fn start_bridge(
        &mut self,
        now: Instant,
        leg: LegId,
        agent: Option<nida_acd::AgentId>,
    ) {
        let Some((n, srtp)) = self
            .leg_mut(leg)
            .and_then(|l| l.answer.take().map(|n| (n, l.srtp)))
        else {
            return;
        };
        self.bring_up(now, leg, n, srtp);
        self.stop_playback();
        let caller_codec = match self.caller_rtp() {
            Some(c) => {
                c.set_relay(true);
                match c.law() {
                    _ if c.g722() => "G722",
                    Law::Mu => "PCMU",
                    Law::A => "PCMA",
                }
            }
            None => "none",
        };
        self.music = false;
        self.announcing = false;
        self.release_holds(now);
        self.bridge = Some(Bridge { leg, agent });
        self.links = match self.caller {
            Some(c) => vec![(c, leg), (leg, c)],
            None => Vec::new(),
        };
        self.event(CallEvent::Bridged {
            agent,
            caller_codec,
            other_codec: n.codec.name(),
        });
    }

    /// A leg's received audio goes to every leg that hears it, and onto
    /// the tape.
    pub(crate) fn relay_from(&mut self, from: LegId) {
        let Some(src) = self.leg_mut(from).and_then(|l| l.rtp.as_mut()) else {
            return;
        };
        let law = src.law();
        // Taken whether or not anyone hears it (a held agent's phone goes
        // on sending), so nothing piles up.
        let data = src.take_received();
        // A G.722 phone's frames as they came: relayed as they are to
        // another G.722 phone.
        let wideband = src.take_received_g722();
        let caller = Some(from) == self.caller;
        if caller && !data.is_empty() && self.voicemail_recording() {
            let pcm = law.decode(&data);
            self.voicemail_audio(self.now, &pcm);
        }
        if caller && !data.is_empty() && self.notice_listening() {
            let pcm = law.decode(&data);
            self.notice_audio(self.now, &pcm);
        }
        if data.is_empty() || !self.links.iter().any(|(a, _)| *a == from) {
            return;
        }
        if let Some(m) = self.mixing.as_mut() {
            // Mixed: the mix gives each leg its share, and the recording
            // its right side.
            m.mixer.push(from, law, &data);
            if let (true, Some(t)) = (caller, self.tape.as_mut()) {
                t.left.extend(law.decode(&data));
            }
            return;
        }
        for i in 0..self.links.len() {
            let (a, to) = self.links[i];
            if a != from {
                continue;
            }
            if let Some(dst) = self.leg_mut(to).and_then(|l| l.rtp.as_mut()) {
                if wideband.is_empty() || !dst.push_g722(&wideband) {
                    dst.push_audio(law, &data);
                }
            }
        }
        if let Some(t) = self.tape.as_mut() {
            let side = if caller { &mut t.left } else { &mut t.right };
            side.extend(law.decode(&data));
        }
    }

    /// One caller packet time passed (`samples` of audio): one recorded
    /// frame, from what each side sent (silence for a side that sent
    /// less).
    pub(crate) fn tick_tape(&mut self, samples: usize) {
        let Some(t) = self.tape.as_mut() else {
            return;
        };
        const FRAME: usize = nida_media::rtp::FRAME;
        let mut frame = Vec::with_capacity(2 * samples);
        for _ in 0..samples {
            frame.push(t.left.pop_front().unwrap_or(0));
            frame.push(t.right.pop_front().unwrap_or(0));
        }
        // A side far ahead (clock drift) is cut back to eight frames.
        for q in [&mut t.left, &mut t.right] {
            let excess = q.len().saturating_sub(8 * FRAME);
            q.drain(..excess);
        }
        self.outputs
            .push_back(crate::Output::Recording(Recording::Frame(frame)));
    }
}
