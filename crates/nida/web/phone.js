// nida's browser phone: after log-in the agent page registers as the
// agent's phone over SIP over WebSocket (RFC 7118, digest MD5) and takes
// offered calls with WebRTC (the browser's microphone; nida's gateway
// speaks ICE-lite, DTLS-SRTP and Opus). A closed tab closes the
// WebSocket, and nida logs the agent out.
"use strict";

// MD5 (RFC 1321) over a string's UTF-8 bytes, as hex: SIP digest needs
// it and WebCrypto has none.
function md5(text) {
  const bytes = new TextEncoder().encode(text);
  const n = ((bytes.length + 8) >>> 6) + 1;
  const words = new Uint32Array(n * 16);
  bytes.forEach((b, i) => { words[i >> 2] |= b << ((i % 4) * 8); });
  words[bytes.length >> 2] |= 0x80 << ((bytes.length % 4) * 8);
  words[n * 16 - 2] = (bytes.length * 8) >>> 0;
  words[n * 16 - 1] = Math.floor(bytes.length / 0x20000000);
  const s = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
  const k = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);
  let [a0, b0, c0, d0] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  for (let blk = 0; blk < words.length; blk += 16) {
    let [a, b, c, d] = [a0, b0, c0, d0];
    for (let i = 0; i < 64; i++) {
      let f, g;
      if (i < 16) { f = (b & c) | (~b & d); g = i; }
      else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
      else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
      else { f = c ^ (b | ~d); g = (7 * i) % 16; }
      const sh = s[(i >> 4) * 4 + (i % 4)];
      const sum = (a + f + k[i] + words[blk + g]) >>> 0;
      [a, d, c] = [d, c, b];
      b = (b + ((sum << sh) | (sum >>> (32 - sh)))) >>> 0;
    }
    a0 = (a0 + a) >>> 0; b0 = (b0 + b) >>> 0; c0 = (c0 + c) >>> 0; d0 = (d0 + d) >>> 0;
  }
  return [a0, b0, c0, d0].map((w) =>
    [0, 8, 16, 24].map((sh) => ((w >>> sh) & 0xff).toString(16).padStart(2, "0")).join("")).join("");
}

const rnd = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)),
  (b) => b.toString(16).padStart(2, "0")).join("");

function parseSip(text) {
  const cut = text.indexOf("\r\n\r\n");
  const head = cut < 0 ? text : text.slice(0, cut);
  const body = cut < 0 ? "" : text.slice(cut + 4);
  const lines = head.split("\r\n");
  const start = lines.shift() || "";
  const compact = { v: "via", f: "from", t: "to", i: "call-id", m: "contact", l: "content-length", c: "content-type" };
  const headers = [];
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i <= 0) continue;
    let name = l.slice(0, i).trim().toLowerCase();
    name = compact[name] || name;
    headers.push([name, l.slice(i + 1).trim()]);
  }
  const get = (n) => (headers.find(([k]) => k === n) || [])[1] || "";
  const all = (n) => headers.filter(([k]) => k === n).map(([, v]) => v);
  const m = start.match(/^SIP\/2\.0 (\d{3})/);
  return { start, status: m ? Number(m[1]) : 0, method: m ? "" : start.split(" ")[0], get, all, body };
}

// The digest answer to a challenge (MD5, qop=auth when offered).
function digest(challenge, method, uri, user, password) {
  const p = {};
  challenge.replace(/^Digest\s+/i, "").replace(/(\w+)=("([^"]*)"|[^,\s]+)/g, (_, k, v, q) => {
    p[k.toLowerCase()] = q !== undefined ? q : v;
  });
  if (p.algorithm && p.algorithm.toUpperCase() !== "MD5") return null;
  const ha1 = md5(`${user}:${p.realm}:${password}`);
  const ha2 = md5(`${method}:${uri}`);
  const cnonce = rnd(8);
  const auth = p.qop && p.qop.split(",").map((q) => q.trim()).includes("auth");
  const response = auth ? md5(`${ha1}:${p.nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${p.nonce}:${ha2}`);
  let v = `Digest username="${user}", realm="${p.realm}", nonce="${p.nonce}", uri="${uri}", response="${response}", algorithm=MD5`;
  if (auth) v += `, qop=auth, nc=00000001, cnonce="${cnonce}"`;
  if (p.opaque) v += `, opaque="${p.opaque}"`;
  return v;
}

class WebPhone {
  constructor(user, password, ui) {
    this.user = user;
    this.password = password;
    this.ui = ui;
    this.secure = location.protocol === "https:";
    this.host = `${rnd(6)}.invalid`;
    this.domain = location.hostname;
    this.tag = rnd(6);
    this.regCallId = rnd(12);
    this.cseq = 0;
    this.call = null;
    this.state = "offline";
  }

  get transport() { return this.secure ? "wss" : "ws"; }

  contact() { return `<sip:${this.user}@${this.host};transport=${this.transport}>`; }

  connect() {
    const ws = new WebSocket(`${this.transport}://${location.host}/sip`, "sip");
    this.ws = ws;
    ws.onopen = () => this.register(null);
    ws.onmessage = (e) => this.handle(parseSip(typeof e.data === "string" ? e.data : ""));
    ws.onclose = () => { this.set("offline"); this.end("closed"); };
  }

  close() { if (this.ws) this.ws.close(); }

  set(state) { this.state = state; this.ui.phone(state); }

  send(lines, body = "") {
    const len = new TextEncoder().encode(body).length;
    this.ws.send(`${lines.join("\r\n")}\r\nContent-Length: ${len}\r\n\r\n${body}`);
  }

  register(auth) {
    this.cseq += 1;
    this.regUri = `sip:${this.domain}`;
    const lines = [
      `REGISTER ${this.regUri} SIP/2.0`,
      `Via: SIP/2.0/${this.transport.toUpperCase()} ${this.host};branch=z9hG4bK${rnd(8)}`,
      "Max-Forwards: 70",
      `From: <sip:${this.user}@${this.domain}>;tag=${this.tag}`,
      `To: <sip:${this.user}@${this.domain}>`,
      `Call-ID: ${this.regCallId}`,
      `CSeq: ${this.cseq} REGISTER`,
      `Contact: ${this.contact()}`,
      "Expires: 600",
    ];
    if (auth) lines.push(`Authorization: ${auth}`);
    this.authTried = !!auth;
    this.send(lines);
  }

  handle(m) {
    if (m.status) return this.response(m);
    switch (m.method) {
      case "INVITE": return this.invite(m);
      case "ACK": return undefined;
      case "BYE":
        this.reply(m, "200 OK");
        return this.end("remote");
      case "CANCEL":
        this.reply(m, "200 OK");
        if (this.call && this.call.invite.get("call-id") === m.get("call-id")) {
          this.reply(this.call.invite, "487 Request Terminated");
          this.end("cancelled");
        }
        return undefined;
      case "OPTIONS": return this.reply(m, "200 OK");
      default: return this.reply(m, "405 Method Not Allowed");
    }
  }

  response(m) {
    const method = m.get("cseq").split(/\s+/)[1];
    if (method !== "REGISTER") return;
    if ((m.status === 401 || m.status === 407) && !this.authTried) {
      const challenges = m.all(m.status === 401 ? "www-authenticate" : "proxy-authenticate");
      for (const c of challenges) {
        const a = digest(c, "REGISTER", this.regUri, this.user, this.password);
        if (a) return this.register(a);
      }
      return this.set("refused");
    }
    if (m.status === 200) {
      this.set("registered");
      clearTimeout(this.refresh);
      this.refresh = setTimeout(() => this.register(null), 300000);
    } else if (m.status >= 300) {
      this.set("refused");
    }
  }

  // A response to a request of nida's (To with our tag when in a call).
  reply(req, status, extra = [], body = "") {
    let to = req.get("to");
    if (this.call && req.get("call-id") === this.call.invite.get("call-id") && !/;\s*tag=/.test(to)) {
      to += `;tag=${this.call.tag}`;
    }
    const lines = [`SIP/2.0 ${status}`, ...req.all("via").map((v) => `Via: ${v}`),
      `From: ${req.get("from")}`, `To: ${to}`, `Call-ID: ${req.get("call-id")}`, `CSeq: ${req.get("cseq")}`, ...extra];
    this.send(lines, body);
  }

  invite(m) {
    if (this.call && this.call.invite.get("call-id") === m.get("call-id")) {
      // A re-INVITE (hold, a session refresh): the same media.
      const sdp = this.call.pc ? this.call.pc.localDescription.sdp : "";
      return this.reply(m, "200 OK", [`Contact: ${this.contact()}`, "Content-Type: application/sdp"], sdp);
    }
    // A re-INVITE for a call that has ended (it crossed our BYE).
    if (/;\s*tag=/i.test(m.get("to"))) return this.reply(m, "481 Call/Transaction Does Not Exist");
    if (this.call) return this.reply(m, "486 Busy Here");
    this.call = { invite: m, tag: rnd(6), cseq: 0 };
    this.reply(m, "180 Ringing", [`Contact: ${this.contact()}`]);
    this.ui.ringing(true);
    return undefined;
  }

  async answer() {
    const call = this.call;
    if (!call || call.pc) return;
    this.ui.ringing(false);
    let stream = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      // No microphone allowed: the call goes to another agent.
      this.ui.noMicrophone();
      this.reply(call.invite, "480 Temporarily Unavailable");
      this.call = null;
      return;
    }
    const pc = new RTCPeerConnection();
    call.pc = pc;
    call.stream = stream;
    stream.getTracks().forEach((tr) => pc.addTrack(tr, stream));
    pc.ontrack = (e) => this.ui.remote(e.streams[0] || new MediaStream([e.track]));
    await pc.setRemoteDescription({ type: "offer", sdp: call.invite.body });
    await pc.setLocalDescription(await pc.createAnswer());
    await new Promise((done) => {
      if (pc.iceGatheringState === "complete") return done();
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") done(); };
      setTimeout(done, 2000);
    });
    this.reply(call.invite, "200 OK", [`Contact: ${this.contact()}`, "Content-Type: application/sdp"],
      pc.localDescription.sdp);
    this.ui.talking(true);
  }

  reject() {
    if (!this.call || this.call.pc) return;
    this.reply(this.call.invite, "486 Busy Here");
    this.end("rejected");
  }

  hangup() {
    const call = this.call;
    if (!call) return;
    if (!call.pc) return this.reject();
    const inv = call.invite;
    const target = (inv.get("contact").match(/<([^>]+)>/) || [])[1] || inv.start.split(" ")[1];
    call.cseq += 1;
    this.send([`BYE ${target} SIP/2.0`,
      `Via: SIP/2.0/${this.transport.toUpperCase()} ${this.host};branch=z9hG4bK${rnd(8)}`,
      "Max-Forwards: 70", `From: ${inv.get("to")};tag=${call.tag}`, `To: ${inv.get("from")}`,
      `Call-ID: ${inv.get("call-id")}`, `CSeq: ${call.cseq} BYE`]);
    return this.end("local");
  }

  // Keys in the media (RFC 4733): `*2#` gives the second wrap-up code.
  keys(tones) {
    const sender = this.call && this.call.pc &&
      this.call.pc.getSenders().find((x) => x.track && x.track.kind === "audio");
    if (!sender || !sender.dtmf) return false;
    // Keys pressed while others still play go after them (a new
    // insertDTMF would replace them).
    sender.dtmf.insertDTMF(sender.dtmf.toneBuffer + tones, 100, 70);
    return true;
  }

  mute() {
    if (!this.call || !this.call.stream) return false;
    const tracks = this.call.stream.getAudioTracks();
    const on = !tracks.every((tr) => !tr.enabled);
    tracks.forEach((tr) => { tr.enabled = !on; });
    return on;
  }

  end(why) {
    const call = this.call;
    this.call = null;
    if (!call) return;
    if (call.pc) call.pc.close();
    if (call.stream) call.stream.getTracks().forEach((tr) => tr.stop());
    this.ui.ringing(false);
    this.ui.talking(false);
    this.ui.ended(why);
  }
}

// The page's phone panel.
function startPhone(user, password) {
  if (!window.RTCPeerConnection || !window.WebSocket) return null;
  const $ = (q) => document.querySelector(q);
  const audio = $("#remote-audio");
  const ui = {
    phone: (state) => { $("#phone-state").dataset.state = state; $("#phone-state").textContent = state; },
    ringing: (on) => { $("#phone-ring").hidden = !on; },
    talking: (on) => { $("#phone-call").hidden = !on; },
    noMicrophone: () => { $("#phone-mic").hidden = false; },
    remote: (stream) => { audio.srcObject = stream; audio.play().catch(() => {}); window.nidaPhoneStream = stream; },
    ended: (why) => { $("#phone-ended").textContent = why; },
  };
  const phone = new WebPhone(user, password, ui);
  $("#btn-answer").onclick = () => phone.answer();
  $("#btn-reject").onclick = () => phone.reject();
  $("#btn-hangup").onclick = () => phone.hangup();
  $("#btn-mute").onclick = () => { $("#btn-mute").dataset.muted = String(phone.mute()); };
  document.querySelectorAll("#phone-keys [data-key]").forEach((b) => {
    b.onclick = () => phone.keys(b.dataset.key);
  });
  $("#phone").hidden = false;
  // Leaving the page (closed, reloaded, or kept in the back-forward
  // cache) takes the phone away with it.
  window.addEventListener("pagehide", () => phone.close());
  phone.connect();
  window.nidaPhone = phone;
  return phone;
}
