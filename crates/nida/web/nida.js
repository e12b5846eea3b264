// nida's wallboard and agent page: plain JavaScript, no build step.
// Both pages read the admin API with a token and follow its event stream.
"use strict";

const T = {
  en: {
    wallboard: "Wallboard", token: "Admin token", open: "Open", agents: "Agents", agent: "Agent",
    state: "State", since: "Since", languages: "Languages", today: "Today, per hour",
    waiting: "Waiting", longest: "Longest wait", sl: "Service level", answered: "Answered",
    abandoned: "Abandoned", talking: "Talking", asa: "Avg. speed of answer", offered: "Offered",
    agent_page: "Agent", user: "SIP user", password: "Password", log_in: "Log in",
    login_failed: "Wrong user or password", my_state: "My state", login: "Log in", ready: "Ready",
    not_ready: "Not ready", logout: "Log out", current_call: "Current call", queue: "Queue",
    language: "Language", call_state: "Call", ivr_path: "IVR path", wrap_up: "Wrap-up",
    wrap_hint: "Finish your notes; you will be ready again when wrap-up ends.",
    r_break: "Break", r_lunch: "Lunch", r_training: "Training", r_meeting: "Meeting",
    s_logged_out: "Logged out", s_available: "Available", s_ringing: "Ringing",
    s_talking: "Talking", s_wrap_up: "Wrap-up", s_not_ready: "Not ready",
    c_waiting: "Waiting", c_ringing: "Ringing", c_talking: "Talking",
    no_calls: "No calls today yet", other_lang: "العربية", hold: "Hold", resume: "Resume",
    k_agent: "Agent", k_queue: "Queue", k_number: "Number", consult: "Consult", complete_transfer: "Transfer",
    cancel_consult: "Back to caller", three_way: "Three-way",
    live_calls: "Live calls", supervisor: "Supervisor", m_listen: "Listen", m_whisper: "Whisper",
    m_barge: "Barge in", m_take_over: "Take over", sup_ok: "Ringing your phone", sup_403: "Not one of your queues or agents",
    sup_404: "That call is no longer talking", sup_409: "Your phone is not registered",
    wrapup_codes: "What the call was about", save_codes: "Save", saved: "Saved",
    voicemails: "Voice messages", play: "Play", handled: "Handled", call_back: "Call back",
    phone: "Phone", ringing: "Incoming call", answer: "Answer", reject: "Reject", mute: "Mute", hang_up: "Hang up",
    no_mic: "The browser gave no microphone: calls go to your other phone or to colleagues.",
    ivr_today: "IVR today", flow: "Flow", calls: "Calls", containment: "Served by the IVR", top_exit: "Where callers left",
  },
  ar: {
    wallboard: "لوحة المتابعة", token: "رمز المشرف", open: "فتح", agents: "الموظفون", agent: "الموظف",
    state: "الحالة", since: "منذ", languages: "اللغات", today: "اليوم، لكل ساعة",
    waiting: "في الانتظار", longest: "أطول انتظار", sl: "مستوى الخدمة", answered: "تم الرد",
    abandoned: "متروكة", talking: "في محادثة", asa: "متوسط سرعة الرد", offered: "المعروضة",
    agent_page: "الموظف", user: "مستخدم SIP", password: "كلمة المرور", log_in: "تسجيل الدخول",
    login_failed: "اسم المستخدم أو كلمة المرور غير صحيحة", my_state: "حالتي", login: "تسجيل الدخول",
    ready: "جاهز", not_ready: "غير جاهز", logout: "تسجيل الخروج", current_call: "المكالمة الحالية",
    queue: "قائمة الانتظار", language: "اللغة", call_state: "المكالمة", ivr_path: "مسار الرد الآلي",
    wrap_up: "إنهاء المكالمة", wrap_hint: "أكمل ملاحظاتك؛ ستكون جاهزاً عند انتهاء وقت الإنهاء.",
    r_break: "استراحة", r_lunch: "غداء", r_training: "تدريب", r_meeting: "اجتماع",
    s_logged_out: "خارج النظام", s_available: "متاح", s_ringing: "يرن", s_talking: "في محادثة",
    s_wrap_up: "إنهاء المكالمة", s_not_ready: "غير جاهز",
    c_waiting: "في الانتظار", c_ringing: "يرن", c_talking: "في محادثة",
    no_calls: "لا مكالمات اليوم بعد", other_lang: "English", hold: "تعليق", resume: "استئناف",
    k_agent: "موظف", k_queue: "قائمة انتظار", k_number: "رقم", consult: "استشارة", complete_transfer: "تحويل",
    cancel_consult: "العودة إلى المتصل", three_way: "مكالمة ثلاثية",
    live_calls: "المكالمات الجارية", supervisor: "المشرف", m_listen: "استماع", m_whisper: "همس",
    m_barge: "مشاركة", m_take_over: "تولي المكالمة", sup_ok: "جارٍ الاتصال بهاتفك", sup_403: "ليست من قوائمك أو موظفيك",
    sup_404: "لم تعد المكالمة جارية", sup_409: "هاتفك غير مسجل",
    wrapup_codes: "موضوع المكالمة", save_codes: "حفظ", saved: "تم الحفظ",
    voicemails: "الرسائل الصوتية", play: "تشغيل", handled: "تمت المعالجة", call_back: "معاودة الاتصال",
    phone: "الهاتف", ringing: "مكالمة واردة", answer: "رد", reject: "رفض", mute: "كتم", hang_up: "إنهاء",
    no_mic: "لم يسمح المتصفح بالميكروفون: تذهب المكالمات إلى هاتفك الآخر أو إلى الزملاء.",
    ivr_today: "الرد الآلي اليوم", flow: "المسار", calls: "المكالمات", containment: "خُدمت آلياً", top_exit: "أين غادر المتصلون",
  },
};

let lang = new URLSearchParams(location.search).get("lang") || localStorage.getItem("nida-lang") || "en";
const t = (k) => (T[lang] && T[lang][k]) || T.en[k] || k;
const $ = (s) => document.querySelector(s);

function applyLanguage() {
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  $("#lang").textContent = t("other_lang");
}

function mmss(s) {
  s = Math.max(0, Math.round(s || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
  children.forEach((c) => e.append(c));
  return e;
}

async function api(path, token, options) {
  const r = await fetch(path, { ...(options || {}), headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" } });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

// The token stays in headers: the stream opens with a one-time ticket, and
// a dropped stream reopens with a new one.
function follow(token, onEvent) {
  const link = $("#link");
  const open = async () => {
    let ticket;
    try {
      ticket = (await api("/api/events/ticket", token, { method: "POST" })).ticket;
    } catch (e) {
      link.dataset.state = "connecting";
      setTimeout(open, 2000);
      return;
    }
    const es = new EventSource(`/api/events?ticket=${encodeURIComponent(ticket)}`);
    es.onopen = () => { link.dataset.state = "live"; };
    es.onerror = () => { link.dataset.state = "connecting"; es.close(); setTimeout(open, 1000); };
    es.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (e) { /* a bad event is skipped */ } };
  };
  open();
}

// ---------- wallboard ----------

function tile(q) {
  const sl = q.service_level == null ? "–" : `${Math.round(q.service_level)}%`;
  const d = el("dl", {});
  [["longest", mmss(q.longest_wait_seconds), "longest"], ["sl", sl, "sl"], ["answered", q.answered, "answered"],
   ["abandoned", q.abandoned, "abandoned"], ["talking", q.talking, "talking"],
   ["asa", q.asa_seconds == null ? "–" : mmss(q.asa_seconds), "asa"]].forEach(([k, v, cls]) => {
    d.append(el("dt", {}, t(k)), el("dd", { class: cls }, String(v)));
  });
  const staff = el("div", { class: "agents" }, ...Object.entries(q.agents || {}).map(([s, n]) =>
    el("span", { class: "badge", "data-state": s }, `${t(`s_${s}`)}: ${n}`)));
  const box = el("article", { class: "tile", "data-queue": q.name },
    el("h3", {}, q.name), el("div", { class: "big waiting", title: t("waiting") }, String(q.waiting)),
    el("div", {}, t("waiting")), d, staff);
  if (q.service_level != null && q.service_level < 80) box.classList.add("alert");
  return box;
}

function chart(queue, rows) {
  const w = 24 * 20, h = 120, max = Math.max(1, ...rows.map((r) => r.offered));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h + 14}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${queue}: ${t("offered")} / ${t("answered")}`);
  rows.forEach((r) => {
    const hour = new Date(r.start * 1000).getUTCHours();
    [["offered", "#90a4ae", 0], ["answered", "#43a047", 9]].forEach(([k, color, dx]) => {
      const bh = (r[k] / max) * h;
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", hour * 20 + dx); rect.setAttribute("y", h - bh);
      rect.setAttribute("width", 8); rect.setAttribute("height", bh); rect.setAttribute("fill", color);
      rect.setAttribute("class", `bar ${k}`);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${String(hour).padStart(2, "0")}:00 ${t(k)} ${r[k]}`;
      rect.append(title);
      svg.append(rect);
    });
  });
  for (let hr = 0; hr < 24; hr += 3) {
    const tx = document.createElementNS(ns, "text");
    tx.setAttribute("x", hr * 20); tx.setAttribute("y", h + 12); tx.setAttribute("font-size", 10);
    tx.textContent = `${String(hr).padStart(2, "0")}h`;
    svg.append(tx);
  }
  return el("div", { class: "chart", "data-queue": queue }, el("h3", {}, queue), svg);
}

async function supervise(token, task, mode) {
  const who = $("#supervisor").value;
  const r = await fetch(`/api/calls/${task}/supervise?supervisor=${encodeURIComponent(who)}&mode=${mode}`,
    { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  const status = $("#supervise-status");
  status.dataset.code = r.status;
  status.textContent = t(r.status === 202 ? "sup_ok" : `sup_${r.status}`);
}

function callRow(token, c, names) {
  const buttons = c.state === "talking"
    ? ["listen", "whisper", "barge", "take_over"].map((m) => {
      const b = el("button", { type: "button", "data-mode": m }, t(`m_${m}`));
      b.onclick = () => supervise(token, c.task, m).catch(() => {});
      return b;
    })
    : [];
  return el("tr", { "data-task": c.task, "data-state": c.state },
    el("td", {}, c.info.queue), el("td", {}, c.info.language), el("td", {}, t(`c_${c.state}`)),
    el("td", {}, c.agent ? names[c.agent] || String(c.agent) : ""), el("td", { class: "buttons" }, ...buttons));
}

async function wallboard(token) {
  const sups = await api("/api/supervisors", token).catch(() => []);
  $("#supervisor").replaceChildren(...sups.map((s) => el("option", { value: s.user }, s.name || s.user)));
  const refresh = async () => {
    const [queues, agents, calls] = await Promise.all([api("/api/queues", token), api("/api/agents", token), api("/api/calls", token)]);
    const names = Object.fromEntries(agents.map((a) => [a.id, a.name || a.user]));
    $("#call-list tbody").replaceChildren(...calls.map((c) => callRow(token, c, names)));
    $("#tiles").replaceChildren(...queues.map(tile));
    const counts = {};
    agents.forEach((a) => { counts[a.state] = (counts[a.state] || 0) + 1; });
    $("#agent-states").replaceChildren(...Object.entries(counts).map(([s, n]) =>
      el("span", { class: "badge", "data-state": s }, `${t(`s_${s}`)}: ${n}`)));
    $("#agent-list tbody").replaceChildren(...agents.map((a) => el("tr", { "data-agent": a.id },
      el("td", {}, a.name || a.user), el("td", {}, el("span", { class: "badge", "data-state": a.state }, t(`s_${a.state}`))),
      el("td", {}, new Date(a.since * 1000).toLocaleTimeString()), el("td", {}, a.languages.join(", ")))));
  };
  const charts = async () => {
    const rows = await api("/api/stats", token);
    const by = {};
    rows.forEach((r) => { (by[r.queue] = by[r.queue] || []).push(r); });
    const names = Object.keys(by);
    $("#charts").replaceChildren(...(names.length ? names.map((q) => chart(q, by[q])) : [el("p", {}, t("no_calls"))]));
    // Calls served by the IVR alone count here, not in the queues' charts.
    const ivr = await api("/api/ivr", token);
    $("#ivr-list tbody").replaceChildren(...ivr.map((k) => el("tr", { "data-flow": k.flow },
      el("td", {}, k.flow), el("td", { class: "calls" }, String(k.calls)),
      el("td", { class: "containment" }, k.containment === null ? "" : `${k.containment.toFixed(0)} %`),
      el("td", {}, k.exits.map(([e, n]) => `${e} (${n})`).join(", ")))));
  };
  let pending = null;
  const soon = () => { if (!pending) pending = setTimeout(() => { pending = null; refresh().catch(() => {}); }, 100); };
  follow(token, (ev) => { soon(); if (ev.type === "ended") charts().catch(() => {}); });
  await refresh();
  await charts();
  setInterval(() => refresh().catch(() => {}), 2000);
  setInterval(() => charts().catch(() => {}), 60000);
  setInterval(() => { $("#clock").textContent = new Date().toLocaleTimeString(lang); }, 1000);
}

// ---------- agent page ----------

async function agentDesk(session) {
  const { token, agent } = session;
  $("#login-form").hidden = true;
  $("#desk").hidden = false;
  $("#who").textContent = `${session.name || ""} (${agent})`;
  const show = (data) => {
    const a = data.agent;
    const s = $("#state");
    s.dataset.state = a.state;
    s.textContent = t(`s_${a.state}`);
    $("#reason").textContent = a.reason || "";
    $("#wrap").hidden = a.state !== "wrap_up";
    const call = data.call;
    if (call) {
      $("#pop").hidden = false;
      $("#pop-queue").textContent = call.info.queue;
      $("#pop-language").textContent = call.info.language;
      $("#pop-state").textContent = t(`c_${call.state}`);
      $("#pop-path").textContent = call.info.path.join(" › ");
      $("#call-buttons").hidden = call.state !== "talking";
      $("#consult-buttons").hidden = call.state !== "talking";
      $("#pop-vars tbody").replaceChildren(...Object.entries(call.info.vars).map(([k, v]) =>
        el("tr", {}, el("th", {}, k), el("td", {}, v))));
    } else if (a.state !== "wrap_up") {
      $("#pop").hidden = true;
    }
  };
  // The last call stays for its wrap-up codes after it ends.
  let lastCall = null;
  let codesFor = null;
  const showCodes = (data) => {
    const call = data.call;
    if (call) lastCall = call.info;
    const codes = lastCall && (data.wrapup_codes || {})[lastCall.queue];
    $("#codes").hidden = !codes;
    if (!codes || codesFor === lastCall.call_id) return;
    codesFor = lastCall.call_id;
    $("#codes-saved").hidden = true;
    $("#code-list").replaceChildren(...codes.map((c) =>
      el("label", {}, el("input", { type: "checkbox", value: c, "data-code": c }), ` ${c}`)));
  };
  $("#btn-codes").onclick = async () => {
    const codes = [...document.querySelectorAll("#code-list input:checked")].map((i) => i.value);
    if (!lastCall || codes.length === 0) return;
    const r = await fetch(`/api/agents/${agent}/wrapup`, { method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ call_id: lastCall.call_id, queue: lastCall.queue, codes }) });
    $("#codes-saved").hidden = !r.ok;
  };
  // Voice messages: played from the API with the session's token.
  const voicemails = async () => {
    const list = await api(`/api/agents/${agent}/voicemails?open=true`, token);
    $("#vm-list tbody").replaceChildren(...list.map((v) => {
      const play = el("button", { type: "button", "data-play": v.id }, t("play"));
      const audio = el("audio", { controls: "", "data-audio": v.id });
      play.onclick = async () => {
        const r = await fetch(v.audio, { headers: { Authorization: `Bearer ${token}` } });
        audio.src = URL.createObjectURL(await r.blob());
        await audio.play().catch(() => {});
      };
      const done = (callback) => async () => {
        await fetch(`/api/agents/${agent}/voicemails/${v.id}/handled${callback ? "?callback=true" : ""}`,
          { method: "POST", headers: { Authorization: `Bearer ${token}` } });
        voicemails().catch(() => {});
      };
      const handled = el("button", { type: "button", "data-handled": v.id }, t("handled"));
      handled.onclick = done(false);
      const buttons = [play, handled];
      if (v.may_call_back) {
        const cb = el("button", { type: "button", "data-callback": v.id }, t("call_back"));
        cb.onclick = done(true);
        buttons.push(cb);
      }
      const vars = Object.entries(v.vars).map(([k, x]) => `${k}=${x}`).join(" ");
      return el("tr", { "data-voicemail": v.id }, el("td", {}, new Date(v.at * 1000).toLocaleString()),
        el("td", {}, v.caller), el("td", {}, v.queue), el("td", {}, v.language),
        el("td", {}, `${Math.round(v.seconds)} s`), el("td", {}, vars), el("td", { class: "buttons" }, ...buttons, audio));
    }));
  };
  const refresh = async () => {
    const data = await api(`/api/agents/${agent}`, token);
    show(data);
    showCodes(data);
  };
  const act = (action, query) => async () => {
    await fetch(`/api/agents/${agent}/${action}${query ? query() : ""}`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    setTimeout(() => refresh().catch(() => {}), 150);
  };
  $("#btn-login").onclick = act("login");
  $("#btn-ready").onclick = act("ready");
  $("#btn-not-ready").onclick = act("not_ready", () => `?reason=${encodeURIComponent($("#reason-select").value)}`);
  $("#btn-logout").onclick = act("logout");
  $("#btn-hold").onclick = act("hold");
  $("#btn-resume").onclick = act("resume");
  $("#btn-consult").onclick = act("consult", () => `?${$("#consult-kind").value}=${encodeURIComponent($("#consult-to").value)}`);
  $("#btn-complete").onclick = act("complete_transfer");
  $("#btn-cancel-consult").onclick = act("cancel_consult");
  $("#btn-three-way").onclick = act("three_way");
  follow(token, (ev) => {
    if (ev.type === "offer") {
      // The screen pop comes with the offer, before the phone is answered.
      show({ agent: { state: "ringing", reason: null }, call: { state: "ringing", info: ev.info } });
    }
    setTimeout(() => refresh().catch(() => {}), 100);
  });
  await refresh();
  await voicemails().catch(() => {});
  setInterval(() => refresh().catch(() => {}), 2000);
  setInterval(() => voicemails().catch(() => {}), 10000);
}

function start() {
  applyLanguage();
  $("#lang").onclick = () => {
    lang = lang === "ar" ? "en" : "ar";
    localStorage.setItem("nida-lang", lang);
    applyLanguage();
  };
  const page = document.body.dataset.page;
  if (page === "wallboard") {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
    const token = fromHash || sessionStorage.getItem("nida-token");
    const open = (tok) => {
      sessionStorage.setItem("nida-token", tok);
      $("#token-form").hidden = true;
      wallboard(tok).catch(() => { $("#token-form").hidden = false; });
    };
    $("#token-form").onsubmit = (e) => { e.preventDefault(); open($("#token").value); };
    if (token) open(token); else $("#token-form").hidden = false;
  } else {
    const saved = sessionStorage.getItem("nida-agent");
    $("#login-form").onsubmit = async (e) => {
      e.preventDefault();
      const r = await fetch("/api/agent-login", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: $("#user").value, password: $("#password").value }) });
      if (!r.ok) { $("#login-error").hidden = false; return; }
      const session = await r.json();
      sessionStorage.setItem("nida-agent", JSON.stringify(session));
      agentDesk(session);
      // The page is the agent's phone too, unless they have a desk phone
      // (the password stays in memory).
      if (session.phone === "browser" && typeof startPhone === "function") {
        startPhone($("#user").value, $("#password").value);
      }
    };
    if (saved) agentDesk(JSON.parse(saved)).catch(() => sessionStorage.removeItem("nida-agent"));
  }
}

start();
