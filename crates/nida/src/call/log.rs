//! The call machine's events as log lines (inside the call's span, which
//! carries the Call-ID), with caller numbers and keyed digits masked
//! unless `log_caller_numbers` is set, and the counters they move.

use crate::base::bus::Counters;
use crate::redact::Redacted;
use nida_call::{CallEvent, HangupCause, NotBooked, Role};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::{debug, info, warn};

/// Logs one event and counts what it counts.
pub fn event(
    e: &CallEvent,
    called: &str,
    reveal: bool,
    rtp_timeout: Duration,
    counters: &Counters,
) {
    match e {
        CallEvent::FlowStarted(flow) => info!(%flow, %called, "running flow"),
        CallEvent::NoticeDialling { id, attempt } => {
            info!(notification = %id, attempt, "notification: dialling")
        }
        CallEvent::NoticeFailed(d) => info!(result = d.as_str(), "notification: not reached"),
        CallEvent::NoticeAnswered { codec } => info!(%codec, "notification: answered"),
        CallEvent::NoticeMachine => info!("notification: answering machine, waiting for its beep"),
        CallEvent::NoticeSpeaking { by, after } => info!(
            by = by.as_str(),
            after = format!("{after:.1}"),
            "notification: message begins"
        ),
        CallEvent::FlowMissing(flow) => warn!(%flow, "no such flow: hanging up"),
        CallEvent::QueueClosed(queue) => info!(%queue, "queue closed by its calendar"),
        CallEvent::VoicemailGreeting(queue) => info!(%queue, "voicemail greeting"),
        CallEvent::VoicemailRecording => debug!("voicemail recording"),
        CallEvent::VoicemailEmpty => info!("voicemail held no voice: discarded"),
        CallEvent::VoicemailLeft { queue, seconds } => {
            info!(%queue, seconds = format!("{seconds:.1}"), "voicemail kept")
        }
        CallEvent::FlowEnded { path, outcome } => {
            info!(path = %path.join(" > "), ?outcome, "flow ended")
        }
        CallEvent::PromptMissing { lang, name } => warn!(%lang, prompt = %name, "prompt missing"),
        CallEvent::Playing(names) => debug!(prompts = ?names, "play"),
        CallEvent::Digit { digit, digits } => {
            counters.dtmf.fetch_add(1, Ordering::Relaxed);
            // Keys can be application numbers and PINs.
            info!(
                digit = %Redacted::all(&digit.to_string(), reveal),
                digits = %Redacted::all(digits, reveal),
                "dtmf"
            );
        }
        CallEvent::QueuedByFlow {
            queue,
            language,
            priority,
        } => info!(%queue, %language, priority, "queued for an agent"),
        CallEvent::CallbackAsked(queue) => info!(%queue, "call-back requested"),
        CallEvent::Waiting { task, queue } => info!(task = task.0, %queue, "waiting for an agent"),
        CallEvent::Announced { place, minutes } => {
            info!(place, minutes, "announcing place in line")
        }
        CallEvent::Ringing { agent, name, uri } => {
            info!(agent = agent.0, %name, %uri, "ringing agent")
        }
        CallEvent::Progress { leg, status } => debug!(leg = leg.0, status, "leg progress"),
        CallEvent::AgentAnswered(agent) => info!(agent = agent.0, "agent answered"),
        CallEvent::AgentUnusable(agent) => {
            warn!(agent = agent.0, "agent answered without usable audio")
        }
        CallEvent::AgentMissed { agent, reason } => {
            info!(agent = agent.0, ?reason, "agent did not take the call")
        }
        CallEvent::OfferWithdrawn(agent) => debug!(agent = agent.0, "offer withdrawn: cancelling"),
        CallEvent::Bridged {
            agent,
            caller_codec,
            other_codec,
        } => info!(
            agent = %agent.map_or("external".to_string(), |a| a.0.to_string()),
            caller_codec,
            agent_codec = other_codec,
            "bridged"
        ),
        CallEvent::AgentLeft { agent, reason } => {
            info!(agent = ?agent.map(|a| a.0), ?reason, "agent hung up")
        }
        CallEvent::AgentSilent(agent) => warn!(
            agent = ?agent.map(|a| a.0),
            "no RTP from the agent: hanging up the agent"
        ),
        CallEvent::Abandoned => info!("caller left the queue"),
        CallEvent::CallerLeft => info!("caller hung up: ending the agent's call"),
        CallEvent::CallbackBooked => info!("call-back booked: the caller keeps the place in line"),
        CallEvent::CallbackNotBooked(why) => match why {
            NotBooked::NotProven => info!("call-back refused: the caller's number is not proven"),
            NotBooked::StoreFailed => warn!("call-back not booked: the store did not take it"),
            other => info!(why = ?other, "call-back not booked"),
        },
        CallEvent::CallbackRestored { queue, attempts } => {
            info!(%queue, attempts, "call-back restored after a restart")
        }
        CallEvent::Parked => info!("waiting in line for the call-back"),
        CallEvent::CallbackRetry => info!("trying the call-back again"),
        CallEvent::CallbackSlotsOffered(at) => {
            info!(times = at.len(), "call-back: times offered")
        }
        CallEvent::CallbackSlotNotChosen => info!("call-back: no time chosen, still in line"),
        CallEvent::CallbackScheduled { at } => info!(at, "call-back booked for a chosen time"),
        CallEvent::CallbackDue => info!("call-back due at the chosen time"),
        CallEvent::WrapupKeyed { agent, code } => {
            info!(agent = agent.0, %code, "wrap-up code keyed on the phone")
        }
        CallEvent::WrapupKeyUnknown { agent, keyed } => {
            warn!(agent = agent.0, %keyed, "keyed number is no wrap-up code of the queue")
        }
        CallEvent::CallbackWaitsForOpening { at } => {
            info!(
                at,
                "call-back due while the queue is closed: waits for the opening"
            )
        }
        CallEvent::CallbackDialling {
            trunk: Some(trunk), ..
        } => {
            info!(%trunk, "call-back: dialling the caller through the trunk")
        }
        CallEvent::CallbackDialling { uri, .. } => info!(
            uri = %Redacted::new(uri.as_deref().unwrap_or(""), reveal),
            "call-back: dialling the caller"
        ),
        CallEvent::CallbackUndialable(uri) => warn!(
            uri = %Redacted::new(uri, reveal),
            "call-back address is not sip:user@ip:port"
        ),
        CallEvent::CallbackAnswered { codec } => info!(
            caller_codec = codec,
            "call-back answered: caller and agent bridged"
        ),
        CallEvent::CallbackMissed { attempts, why } => {
            info!(attempts, %why, "call-back not answered")
        }
        CallEvent::CallbackAgentLeft => info!("agent left during the call-back: back in line"),
        CallEvent::Exited(exit) => info!(?exit, "longest wait reached"),
        CallEvent::Refused => info!("the queue refused the call"),
        CallEvent::TransferDeclined(target) => warn!(
            target = %Redacted::new(target, reveal),
            "transfer asked by a leg not bridged to an agent: declined"
        ),
        CallEvent::TransferNotFound(target) => warn!(
            target = %Redacted::new(target, reveal),
            "transfer to no queue and no reachable number: refused"
        ),
        CallEvent::Transferred { agent, to, queue } => {
            // A queue's name is no personal data; a number is.
            let shown = Redacted::new(to, *queue || reveal);
            info!(agent = %agent.map_or(0, |a| a.0), to = %shown, "blind transfer")
        }
        CallEvent::TransferAnswered => info!("transfer answered"),
        CallEvent::TransferFailed => warn!("transfer to a number failed: back in line"),
        CallEvent::TransferUnanswered(reason) => info!(?reason, "transfer not answered"),
        CallEvent::TransferEnded(reason) => info!(?reason, "the far end of the transfer hung up"),
        CallEvent::Latched { leg, addr } => {
            debug!(leg = leg.0, %addr, "RTP latched to a new source")
        }
        CallEvent::HangingUp(HangupCause::NoMedia) => {
            warn!(seconds = rtp_timeout.as_secs(), "no RTP: hanging up")
        }
        CallEvent::HangingUp(cause) => info!(?cause, "hanging up"),
        CallEvent::PromptFinished => debug!("prompt finished"),
        CallEvent::MediaChanged {
            leg,
            remote,
            codec,
            direction,
        } => info!(leg = leg.0, %remote, codec, ?direction, "media changed in the dialog"),
        CallEvent::MediaSecured { leg, suite } => info!(suite, leg = leg.0, "media is SRTP"),
        CallEvent::PeerLeftMedia(leg) => info!(leg = leg.0, "RTCP BYE from the peer"),
        CallEvent::SupervisorJoined { supervisor, mode } => {
            info!(%supervisor, mode = mode.as_str(), "supervisor joined")
        }
        CallEvent::SupervisorMode(mode) => info!(mode = mode.as_str(), "supervisor mode"),
        CallEvent::SupervisorLeft => info!("supervisor left"),
        CallEvent::Consulting { agent, to } => {
            info!(agent = agent.map(|a| a.0), %to, "consulting: caller on hold")
        }
        CallEvent::ConsultAnswered => info!("consult answered"),
        CallEvent::ConsultEnded => info!("consult ended: back to the caller"),
        CallEvent::ThreeWay => info!("three-way call"),
        CallEvent::LegReplaced(agent) => {
            info!(
                agent = agent.map(|a| a.0),
                "the agent's leg was replaced by their other phone"
            )
        }
        CallEvent::TransferCompleted { to } => info!(%to, "attended transfer completed"),
        CallEvent::TakenOver(agent) => info!(agent = agent.0, "supervisor took the call over"),
        CallEvent::Held { leg, by_page } => {
            info!(leg = leg.0, by_page, "caller on hold: music plays")
        }
        CallEvent::Resumed { leg, held } => info!(
            leg = leg.0,
            held_seconds = held.as_secs_f64(),
            "caller back from hold"
        ),
        CallEvent::RoundTrip { leg, rtt } => debug!(
            leg = leg.0,
            rtt_ms = rtt.as_secs_f64() * 1000.0,
            "first RTCP round trip"
        ),
        CallEvent::MediaClosed {
            leg,
            role,
            stats,
            quality,
            rtcp,
        } => {
            if *role == Role::Caller {
                counters.rtp_leg(stats);
            }
            info!(
                leg = leg.0,
                sent = stats.sent,
                received = stats.received,
                lost = stats.lost,
                jitter = stats.jitter,
                rejected = stats.rejected,
                foreign = stats.foreign,
                rtcp_sent = rtcp.0,
                rtcp_received = rtcp.1,
                rtt_ms = quality.rtt.map(|d| d.as_secs_f64() * 1000.0),
                peer_loss = quality.peer_loss,
                mos = quality.mos,
                "media closed"
            );
        }
        CallEvent::Ended { outcome, rating } => {
            debug!(outcome = outcome.as_str(), ?rating, "call over")
        }
    }
}
