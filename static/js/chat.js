// The end-user chat page: one WebSocket per conversation (docs/protocol.md), replies streamed
// token by token, rendered as sanitised markdown. No build step: a plain ES module.
import { Marked } from "marked";
import DOMPurify from "dompurify";

const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 15000;
const PING_EVERY_MS = 25000;
// No frame at all this long after a ping: the connection is half-open, drop it and reconnect.
const PONG_TIMEOUT_MS = 10000;
// The server ends every reply within LLM_TOKEN_TIMEOUT of its last token (5 s by default), so a
// streaming reply silent for this long has lost its frames (or its server): ask for it again.
const STALL_RESUME_MS = 20000;
// ...and past this one it no longer keeps the send button disabled; the server decides.
const STALL_RELEASE_MS = 90000;
const NEAR_BOTTOM_PX = 80;
const PENDING_KEY = "chatsite:pending:";

const TEXT = {
  connecting: "Connecting…",
  online: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  gone: "Unavailable",
  newConversation: "New conversation",
  waitForReply: "Please wait until the current reply has finished, then send your message again.",
  fallbackNote: "The assistant couldn't answer just now, so this is an automatic reply.",
  interruptedNote: "This reply was cut off before it finished.",
  sendFailed: "Not sent.",
  retry: "Retry",
  dismiss: "Dismiss",
  gone404: "This conversation is no longer available. Start a new one from the list.",
  createFailed: "Could not start a conversation. Check your connection and try again.",
  typing: "The assistant is typing",
  handOffFailed: "Could not make a code. Check your connection and try again.",
  validUntil: "Works once, until {time}.",
  copied: "Copied.",
  copyFailed: "Your browser did not allow copying: the code is selected, copy it by hand.",
};

// Why a reply ended early, for people (message.done error_code).
const REASONS = {
  llm_timeout: "The model took too long to answer.",
  llm_unavailable: "The model is unavailable at the moment.",
  server_shutdown: "The server restarted while writing it.",
  turn_stale: "The server stopped while writing it.",
  internal_error: "Something went wrong on our side.",
};

// Errors after which nothing was stored: the text goes back into the composer.
const REFUSED_SEND = new Set([
  "turn_in_progress",
  "empty_message",
  "message_too_long",
  "content_blocked",
  "invalid_frame",
  "frame_too_large",
]);

// --- Markdown, safely ------------------------------------------------------------------------

const SAFE_URL = /^https?:\/\//i;

function escapeHtml(text) {
  return String(text).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}

const markdown = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    // Raw HTML in a message is shown as text, never interpreted.
    html({ text, block }) {
      return block ? `<p>${escapeHtml(text.trim())}</p>` : escapeHtml(text);
    },
    link({ href, title, tokens }) {
      const label = this.parser.parseInline(tokens);
      if (!SAFE_URL.test(href || "")) return label;
      const titleAttr = title ? ` title="${escapeHtml(title)}"` : "";
      return `<a href="${escapeHtml(href)}"${titleAttr}>${label}</a>`;
    },
    // No remote images (tracking pixels, layout jumps): a link to the image instead.
    image({ href, text }) {
      const label = escapeHtml(text || href || "");
      if (!SAFE_URL.test(href || "")) return label;
      return `<a href="${escapeHtml(href)}">${label}</a>`;
    },
  },
});

const PURIFY_CONFIG = {
  ALLOWED_TAGS: [
    "p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td",
  ],
  ALLOWED_ATTR: ["href", "title", "class", "start", "align"],
  ALLOWED_URI_REGEXP: SAFE_URL,
};

// Second line of defence after the renderer: every surviving link is http(s) and opens safely.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName !== "A") return;
  if (!SAFE_URL.test(node.getAttribute("href") || "")) {
    node.removeAttribute("href");
    return;
  }
  node.setAttribute("target", "_blank");
  node.setAttribute("rel", "noopener noreferrer nofollow");
});

export function renderMarkdown(text) {
  return DOMPurify.sanitize(markdown.parse(text), PURIFY_CONFIG);
}

// --- Small helpers ---------------------------------------------------------------------------

function uuid4() {
  // randomUUID exists only in secure contexts (https, localhost); plain http needs the fallback.
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function typingIndicator() {
  const dots = el("div", "typing");
  dots.setAttribute("role", "img");
  dots.setAttribute("aria-label", TEXT.typing);
  dots.append(el("span"), el("span"), el("span"));
  return dots;
}

function reasonFor(code) {
  return REASONS[code] || "";
}

// --- The page --------------------------------------------------------------------------------

class ChatPage {
  constructor(root) {
    this.root = root;
    this.conversationId = root.dataset.conversationId || "";
    this.socketPath = root.dataset.socketPath || "";
    this.newUrl = root.dataset.newUrl;
    this.list = document.getElementById("message-list");
    this.scroller = document.getElementById("messages");
    this.empty = document.getElementById("empty-state");
    this.form = document.getElementById("composer");
    this.input = document.getElementById("composer-input");
    this.sendBtn = document.getElementById("send-btn");
    this.jumpBtn = document.getElementById("jump-latest");
    this.status = document.getElementById("conn-status");
    this.notices = document.getElementById("notices");
    this.title = document.getElementById("chat-title");
    this.pickupUrl = root.dataset.pickupUrl;
    this.handOffBtn = document.getElementById("handoff-btn");
    this.handOffDialog = document.getElementById("handoff-dialog");

    this.replies = new Map(); // reply id -> reply state
    this.pending = null; // {clientId, text, node, failed}: a send not yet acknowledged
    this.ws = null;
    this.attempts = 0;
    this.failuresWithoutHello = 0;
    this.reconnectTimer = 0;
    this.pingTimer = 0;
    this.pongTimer = 0;
    this.stick = true;
    this.gone = false;
  }

  start() {
    this.hydrate();
    this.bindUi();
    this.restorePending();
    this.updateComposer();
    this.scrollToBottom();
    // Ready to type on desktop; on phones focusing would pop the keyboard over the history.
    if (!window.matchMedia("(pointer: coarse)").matches) this.input.focus({ preventScroll: true });
    if (this.socketPath) {
      this.connect();
      setInterval(() => this.watchdog(), 5000);
    }
  }

  // --- Server-rendered history ---------------------------------------------------------------

  hydrate() {
    for (const node of this.list.querySelectorAll(".msg--assistant")) {
      const textEl = node.querySelector(".msg-text");
      const text = textEl.textContent;
      const status = node.dataset.status;
      const tokenCount = Number(node.dataset.tokenCount || 0);
      const reply = this.trackReply(node, {
        text,
        status,
        // A streaming reply is stored only when it ends, so its rendered text is usually empty.
        lastSeq: status === "streaming" && !text ? 0 : tokenCount,
      });
      if (text) this.render(reply);
      const note = node.querySelector(".msg-note");
      const reason = reasonFor(node.dataset.errorCode);
      if (note && reason && status === "interrupted") note.textContent += ` ${reason}`;
    }
  }

  trackReply(node, { text = "", status = "streaming", lastSeq = 0 } = {}) {
    const reply = {
      id: node.dataset.messageId,
      node,
      textEl: node.querySelector(".msg-text"),
      text,
      lastSeq,
      status,
      frame: 0,
      lastActivity: Date.now(),
      resumeAskedFor: -1,
      resumeAskedAt: 0,
    };
    this.replies.set(reply.id, reply);
    return reply;
  }

  // --- DOM for messages ----------------------------------------------------------------------

  findMessage(id) {
    return id ? this.list.querySelector(`[data-message-id="${CSS.escape(id)}"]`) : null;
  }

  findByClientId(clientId) {
    return clientId ? this.list.querySelector(`[data-client-id="${CSS.escape(clientId)}"]`) : null;
  }

  userNode(text, { id, clientId, sequence } = {}) {
    const node = el("article", "msg msg--user");
    node.dataset.role = "user";
    if (id) node.dataset.messageId = id;
    if (clientId) node.dataset.clientId = clientId;
    if (sequence) node.dataset.sequence = sequence;
    const body = el("div", "msg-body");
    const bubble = el("div", "bubble");
    bubble.append(el("div", "msg-text", text));
    body.append(bubble);
    node.append(body);
    return node;
  }

  assistantNode(id, sequence) {
    const node = el("article", "msg msg--assistant is-streaming");
    node.dataset.role = "assistant";
    node.dataset.messageId = id;
    node.dataset.status = "streaming";
    if (sequence) node.dataset.sequence = sequence;
    const avatar = el("div", "avatar");
    avatar.setAttribute("aria-hidden", "true");
    const body = el("div", "msg-body");
    const bubble = el("div", "bubble");
    bubble.append(el("div", "msg-text"), typingIndicator());
    body.append(bubble);
    node.append(avatar, body);
    return node;
  }

  // Keep the list in conversation order even when frames from other tabs interleave; messages
  // not yet numbered (our own pending send) stay last.
  insert(node, sequence, after) {
    if (after && after.parentNode === this.list) {
      after.after(node);
    } else {
      const next = [...this.list.children].find(
        (child) => !child.dataset.sequence || Number(child.dataset.sequence) > sequence,
      );
      this.list.insertBefore(node, sequence ? next || null : null);
    }
    this.empty.hidden = true;
  }

  ensureReply(id, sequence, after) {
    const known = this.replies.get(id);
    if (known) return known;
    let node = this.findMessage(id);
    if (!node) {
      node = this.assistantNode(id, sequence);
      this.insert(node, sequence, after);
    }
    return this.trackReply(node);
  }

  render(reply) {
    if (reply.frame) {
      cancelAnimationFrame(reply.frame);
      reply.frame = 0;
    }
    reply.textEl.innerHTML = renderMarkdown(reply.text);
    reply.textEl.classList.add("md");
    if (reply.text) reply.node.querySelector(".typing")?.remove();
  }

  // Markdown is re-rendered at most once per animation frame however fast tokens come.
  scheduleRender(reply) {
    if (reply.frame) return;
    reply.frame = requestAnimationFrame(() => {
      reply.frame = 0;
      this.render(reply);
      this.followOutput();
    });
  }

  finishReply(reply, { status, is_fallback: isFallback, error_code: errorCode }) {
    reply.status = status || "complete";
    const node = reply.node;
    node.dataset.status = reply.status;
    node.classList.remove("is-streaming");
    node.querySelector(".typing")?.remove();
    if (errorCode) node.dataset.errorCode = errorCode;
    let note = "";
    if (isFallback) {
      node.classList.add("is-fallback");
      note = TEXT.fallbackNote;
    } else if (reply.status === "interrupted") {
      node.classList.add("is-interrupted");
      note = `${TEXT.interruptedNote} ${reasonFor(errorCode)}`.trim();
    }
    node.querySelector(".msg-note")?.remove();
    if (note) node.querySelector(".msg-body").append(el("p", "msg-note", note));
    this.render(reply);
    this.followOutput();
    this.updateComposer();
  }

  // --- The socket ----------------------------------------------------------------------------

  socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.socketPath}`;
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    if (this.gone) return;
    this.setStatus(this.attempts ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.socketUrl());
    this.ws = ws;
    ws.helloSeen = false;
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      this.alive();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatch(frame, ws);
    });
    ws.addEventListener("close", () => {
      if (ws === this.ws) this.dropSocket(ws);
    });
  }

  dropSocket(ws) {
    this.ws = null;
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    try {
      ws.close();
    } catch {
      // already closed
    }
    if (!ws.helloSeen) this.failuresWithoutHello += 1;
    // A refused socket (not ours, or gone) looks like any failed handshake to a browser: after a
    // few, ask the page itself.
    if (this.failuresWithoutHello === 3) this.checkStillThere();
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.gone) return;
    clearTimeout(this.reconnectTimer);
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** this.attempts);
    const delay = base / 2 + Math.random() * (base / 2); // "equal jitter"
    this.attempts += 1;
    this.setStatus(navigator.onLine === false ? "offline" : "reconnecting");
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  async checkStillThere() {
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (response.status === 404) {
        this.gone = true;
        clearTimeout(this.reconnectTimer);
        this.setStatus("gone");
        this.notify(TEXT.gone404, { key: "gone" });
        this.updateComposer();
      }
    } catch {
      // offline: keep retrying
    }
  }

  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  alive() {
    clearTimeout(this.pongTimer);
    this.pongTimer = 0;
  }

  heartbeat(ws) {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (ws !== this.ws || !this.send({ type: "ping" })) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => {
        if (ws === this.ws) this.dropSocket(ws);
      }, PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  setStatus(state) {
    this.status.dataset.state = state;
    this.status.querySelector(".conn-text").textContent = TEXT[state] || "";
  }

  // --- Frames from the server ----------------------------------------------------------------

  dispatch(frame, ws) {
    const handler = {
      hello: () => this.onHello(ws),
      "message.start": () => this.onStart(frame),
      "message.ack": () => this.onAck(frame),
      "message.delta": () => this.onDelta(frame),
      "message.done": () => this.onDone(frame),
      "message.snapshot": () => this.onSnapshot(frame),
      error: () => this.onError(frame),
    }[frame.type];
    if (handler) handler();
  }

  onHello(ws) {
    ws.helloSeen = true;
    this.attempts = 0;
    this.failuresWithoutHello = 0;
    this.setStatus("online");
    this.heartbeat(ws);
    // Everything still streaming: the server sends what we miss, then goes on live.
    for (const reply of this.replies.values()) {
      if (reply.status === "streaming") this.askResume(reply, { force: true });
    }
    // A send that was never acknowledged goes again with the same client_id: the server stores
    // it at most once, and a duplicate is answered with the reply it already started.
    if (this.pending) this.transmitPending();
    this.updateComposer();
  }

  onStart(frame) {
    const message = frame.message;
    let node = this.findMessage(message.id) || this.findByClientId(message.client_id);
    if (node) {
      node.classList.remove("is-pending", "is-failed");
      node.querySelector(".msg-failed")?.remove();
    } else {
      node = this.userNode(message.text, {});
      this.insert(node, message.sequence);
    }
    node.dataset.messageId = message.id;
    node.dataset.sequence = message.sequence;
    if (message.client_id) node.dataset.clientId = message.client_id;
    if (this.pending && this.pending.clientId === message.client_id) this.clearPending();
    this.ensureReply(frame.reply_id, frame.reply_sequence, node);
    if (message.sequence === 1) this.retitle(message.text);
    this.updateComposer();
    this.followOutput();
  }

  onAck(frame) {
    if (!this.pending || this.pending.clientId !== frame.client_id) return;
    const node = this.pending.node;
    node.dataset.messageId = frame.message_id;
    node.classList.remove("is-pending", "is-failed");
    this.clearPending();
    // A duplicate gets no message.start: place its reply here (its tokens follow).
    this.ensureReply(frame.reply_id, undefined, node);
    this.updateComposer();
  }

  onDelta(frame) {
    const reply = this.ensureReply(frame.message_id);
    reply.lastActivity = Date.now();
    let seq = frame.seq;
    let added = false;
    for (const token of frame.tokens) {
      if (seq > reply.lastSeq + 1) {
        this.askResume(reply); // a gap: get the missing tokens first, drop the rest
        break;
      }
      if (seq === reply.lastSeq + 1) {
        reply.text += token;
        reply.lastSeq = seq;
        added = true;
      }
      seq += 1;
    }
    if (added) this.scheduleRender(reply);
  }

  onDone(frame) {
    const reply = this.ensureReply(frame.message_id);
    reply.lastActivity = Date.now();
    if (reply.status !== "streaming") return;
    if (frame.last_seq > reply.lastSeq && reply.resumeAskedFor !== reply.lastSeq) {
      this.askResume(reply);
      return;
    }
    this.finishReply(reply, frame);
  }

  onSnapshot(frame) {
    const reply = this.ensureReply(frame.message_id);
    reply.lastActivity = Date.now();
    reply.text = frame.text;
    reply.lastSeq = frame.last_seq;
    if (frame.status === "streaming") {
      this.render(reply);
    } else {
      this.finishReply(reply, frame);
    }
  }

  onError(frame) {
    const ours = this.pending && frame.client_id && frame.client_id === this.pending.clientId;
    if (frame.code === "not_found" && frame.message_id) {
      // A resume for a reply the server does not have: stop waiting for it.
      const reply = this.replies.get(frame.message_id);
      if (reply && reply.status === "streaming") {
        this.finishReply(reply, { status: "interrupted" });
      }
      return;
    }
    if (ours && REFUSED_SEND.has(frame.code)) {
      // Nothing was stored: give the text back so it can be sent again.
      const { text, node } = this.pending;
      node.remove();
      this.clearPending();
      if (!this.input.value.trim()) this.setInput(text);
      this.empty.hidden = this.list.children.length > 0;
    } else if (this.pending && (ours || frame.code === "internal_error")) {
      this.markFailed();
    }
    const text = frame.code === "turn_in_progress" ? TEXT.waitForReply : frame.message;
    this.notify(text || frame.code, { key: frame.code });
    this.updateComposer();
  }

  askResume(reply, { force = false } = {}) {
    const now = Date.now();
    if (!force && reply.resumeAskedFor === reply.lastSeq && now - reply.resumeAskedAt < 5000) {
      return;
    }
    if (this.send({ type: "resume", message_id: reply.id, after_seq: reply.lastSeq })) {
      reply.resumeAskedFor = reply.lastSeq;
      reply.resumeAskedAt = now;
    }
  }

  watchdog() {
    const now = Date.now();
    for (const reply of this.replies.values()) {
      if (reply.status !== "streaming") continue;
      const idle = now - reply.lastActivity;
      if (idle > STALL_RESUME_MS && now - reply.resumeAskedAt > STALL_RESUME_MS) {
        this.askResume(reply, { force: true });
      }
    }
    this.updateComposer();
  }

  // --- Sending -------------------------------------------------------------------------------

  busy() {
    if (this.pending && !this.pending.failed) return true;
    const now = Date.now();
    for (const reply of this.replies.values()) {
      if (reply.status === "streaming" && now - reply.lastActivity < STALL_RELEASE_MS) return true;
    }
    return false;
  }

  submit() {
    const text = this.input.value.trim();
    if (!text || this.gone) return;
    if (this.busy()) {
      this.notify(TEXT.waitForReply, { key: "turn_in_progress" });
      return;
    }
    if (this.pending) {
      // A failed send the user chose not to retry: it stays on screen, marked, untracked.
      this.pending.node.querySelector(".link-btn")?.remove();
      this.clearPending();
    }
    if (!this.conversationId) {
      this.startConversation(text);
      return;
    }
    const clientId = uuid4();
    const node = this.userNode(text, { clientId });
    node.classList.add("is-pending");
    this.insert(node);
    this.pending = { clientId, text, node };
    this.savePending();
    this.setInput("");
    this.stick = true;
    this.scrollToBottom();
    this.transmitPending();
    this.updateComposer();
  }

  transmitPending() {
    const { clientId, text, node } = this.pending;
    this.pending.failed = false;
    node.classList.remove("is-failed");
    node.querySelector(".msg-failed")?.remove();
    this.send({ type: "message.send", text, client_id: clientId });
  }

  markFailed() {
    const { node } = this.pending;
    this.pending.failed = true;
    node.classList.add("is-failed");
    if (node.querySelector(".msg-failed")) return;
    const line = el("p", "msg-failed", `${TEXT.sendFailed} `);
    const retry = el("button", "link-btn", TEXT.retry);
    retry.type = "button";
    retry.addEventListener("click", () => {
      if (this.pending && this.pending.node === node) this.transmitPending();
      this.updateComposer();
    });
    line.append(retry);
    node.querySelector(".msg-body").append(line);
  }

  clearPending() {
    this.pending = null;
    try {
      sessionStorage.removeItem(PENDING_KEY + this.conversationId);
    } catch {
      // storage disabled: the pending send only lives in this page
    }
  }

  savePending() {
    try {
      const { clientId, text } = this.pending;
      sessionStorage.setItem(PENDING_KEY + this.conversationId, JSON.stringify({ clientId, text }));
    } catch {
      // storage disabled
    }
  }

  // A send made just before a reload (or on the home page, before the conversation existed)
  // survives in sessionStorage until the server acknowledges it.
  restorePending() {
    if (!this.conversationId) return;
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(PENDING_KEY + this.conversationId) || "null");
    } catch {
      saved = null;
    }
    if (!saved || !saved.clientId || !saved.text) return;
    if (this.findByClientId(saved.clientId)) {
      this.clearPending(); // the server has it: it is in the history already
      return;
    }
    const node = this.userNode(saved.text, { clientId: saved.clientId });
    node.classList.add("is-pending");
    this.insert(node);
    this.pending = { clientId: saved.clientId, text: saved.text, node };
  }

  async startConversation(text) {
    const form = document.getElementById("new-form");
    this.sendBtn.disabled = true;
    try {
      const response = await fetch(this.newUrl, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
      });
      const match = /\/c\/([0-9a-f-]{36})\//i.exec(new URL(response.url).pathname);
      if (!response.ok || !match) throw new Error(`unexpected answer ${response.status}`);
      sessionStorage.setItem(PENDING_KEY + match[1], JSON.stringify({ clientId: uuid4(), text }));
      location.assign(response.url);
    } catch {
      this.notify(TEXT.createFailed, { key: "create" });
      this.updateComposer();
    }
  }

  updateComposer() {
    const busy = this.busy();
    this.form.classList.toggle("is-busy", busy);
    this.sendBtn.disabled = busy || this.gone || !this.input.value.trim();
  }

  setInput(value) {
    this.input.value = value;
    this.autosize();
    this.updateComposer();
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${this.input.scrollHeight}px`;
  }

  // --- Continue on another device: a one-time pickup code (docs/protocol.md) -------------------

  csrfToken() {
    return document.querySelector("#new-form [name=csrfmiddlewaretoken]")?.value || "";
  }

  async handOff() {
    const button = this.handOffBtn;
    button.disabled = true;
    try {
      const response = await fetch(button.dataset.codeUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": this.csrfToken() },
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok || !body.code) throw new Error(body.error?.code || `${response.status}`);
      this.showCode(body);
    } catch {
      this.notify(TEXT.handOffFailed, { key: "handoff" });
    } finally {
      button.disabled = false;
    }
  }

  showCode({ code, expires_at: expiresAt }) {
    const dialog = this.handOffDialog;
    const time = new Date(expiresAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    dialog.querySelector("#handoff-url").textContent = new URL(this.pickupUrl, location.href).href;
    dialog.querySelector("#handoff-code").textContent = code;
    dialog.querySelector("#handoff-expiry").textContent = TEXT.validUntil.replace("{time}", time);
    dialog.querySelector("#handoff-status").textContent = "";
    if (!dialog.open) dialog.showModal();
  }

  async copyCode() {
    const codeEl = this.handOffDialog.querySelector("#handoff-code");
    const status = this.handOffDialog.querySelector("#handoff-status");
    try {
      // The async clipboard exists only in secure contexts (https, localhost).
      await navigator.clipboard.writeText(codeEl.textContent);
      status.textContent = TEXT.copied;
    } catch {
      const range = document.createRange();
      range.selectNodeContents(codeEl);
      window.getSelection()?.removeAllRanges();
      window.getSelection()?.addRange(range);
      status.textContent = TEXT.copyFailed;
    }
  }

  // --- Chrome around the messages ------------------------------------------------------------

  retitle(text) {
    const title = text.slice(0, 60);
    if (this.title.textContent.trim() === TEXT.newConversation) this.title.textContent = title;
    const link = document.querySelector(".conv-link.is-active .conv-title");
    if (link && link.textContent.trim() === TEXT.newConversation) link.textContent = title;
    if (document.title.startsWith(`${TEXT.newConversation} ·`)) document.title = `${title} · chatsite`;
  }

  notify(text, { key = "", kind = "error" } = {}) {
    if (key) this.notices.querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
    const notice = el("div", `notice notice--${kind}`);
    notice.setAttribute("role", kind === "error" ? "alert" : "status");
    if (key) notice.dataset.key = key;
    const close = el("button", "icon-btn notice-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", TEXT.dismiss);
    close.addEventListener("click", () => notice.remove());
    notice.append(el("p", "", text), close);
    this.notices.append(notice);
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.jumpBtn.hidden = true;
  }

  // Follow new output unless the reader scrolled up to read something older.
  followOutput() {
    if (this.stick) this.scrollToBottom();
    else this.jumpBtn.hidden = false;
  }

  bindUi() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    // On touch keyboards there is no Shift+Enter: Enter makes a new line, the button sends.
    const touch = window.matchMedia("(pointer: coarse)").matches;
    this.input.enterKeyHint = touch ? "enter" : "send";
    this.input.addEventListener("keydown", (event) => {
      // isComposing: Enter that confirms a Chinese/Japanese IME candidate must not send.
      if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) {
        return;
      }
      if (touch) return;
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("input", () => {
      this.autosize();
      this.updateComposer();
    });
    this.scroller.addEventListener(
      "scroll",
      () => {
        this.stick = this.nearBottom();
        if (this.stick) this.jumpBtn.hidden = true;
      },
      { passive: true },
    );
    this.jumpBtn.addEventListener("click", () => {
      this.stick = true;
      this.scrollToBottom();
    });
    this.handOffBtn?.addEventListener("click", () => this.handOff());
    document.getElementById("handoff-copy")?.addEventListener("click", () => this.copyCode());
    for (const chip of document.querySelectorAll("[data-suggestion]")) {
      chip.addEventListener("click", () => {
        this.setInput(chip.dataset.suggestion);
        this.input.focus();
      });
    }
    const toggle = (open) => {
      this.root.classList.toggle("sidebar-open", open);
      document.querySelector(".menu-btn")?.setAttribute("aria-expanded", String(open));
    };
    for (const node of document.querySelectorAll("[data-action=open-sidebar]")) {
      node.addEventListener("click", () => toggle(true));
    }
    for (const node of document.querySelectorAll("[data-action=close-sidebar]")) {
      node.addEventListener("click", () => toggle(false));
    }
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") toggle(false);
    });
    window.addEventListener("online", () => {
      if (!this.ws && this.socketPath) {
        this.attempts = 0;
        this.connect();
      }
    });
    window.addEventListener("offline", () => this.setStatus("offline"));
    document.addEventListener("visibilitychange", () => {
      // Timers are throttled in background tabs: reconnect at once when the user comes back.
      if (document.visibilityState === "visible" && !this.ws && this.socketPath && !this.gone) {
        this.connect();
      }
    });
    this.formatTimes();
  }

  formatTimes() {
    const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });
    const units = [
      ["year", 31536000],
      ["month", 2592000],
      ["week", 604800],
      ["day", 86400],
      ["hour", 3600],
      ["minute", 60],
    ];
    for (const node of document.querySelectorAll("time.conv-time[datetime]")) {
      const seconds = (Date.parse(node.getAttribute("datetime")) - Date.now()) / 1000;
      if (Number.isNaN(seconds)) continue;
      const [unit, size] = units.find(([, s]) => Math.abs(seconds) >= s) || ["second", Infinity];
      node.textContent = rtf.format(Math.round(seconds / size) || 0, unit); // 0 s: "now"
    }
  }
}

const root = document.getElementById("app");
if (root) {
  const page = new ChatPage(root);
  page.start();
  window.chatsite = page; // handy in the console and for browser tests
}
