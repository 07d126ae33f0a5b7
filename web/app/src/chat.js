// The meeting's chat on the page: messages in, and one's own messages out, each shown as sent
// only once the Call Bridge has relayed it (its echo from the space, which keeps the id). A
// message the Call Bridge refused (a stanza error), one not echoed within a few seconds, and
// one written while the meeting is interrupted are marked "Not sent", with a Retry button:
// nothing is queued silently.
//
//   #chat-log > li[data-testid=chat-message][data-from][data-self]
//                 [data-status=pending|sent|failed][data-id] > .chat-body, .chat-note, .chat-retry
import { MSG } from "./messages.js";

const $ = (id) => document.getElementById(id);
// How long one's own message may wait for its echo before it is marked not sent.
export const ECHO_TIMEOUT_MS = 6000;
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

let seq = 0;
function newID() {
  seq++;
  const r = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0")).join("");
  return `chat-${r}-${seq}`;
}

export class Chat {
  // send(body, id) sends a message (resolving once it is written, rejecting if it cannot
  // be); canSend() says whether the meeting can take messages now.
  constructor({ send, canSend, log = () => {} }) {
    this.send = send;
    this.canSend = canSend;
    this.log = log;
    this.mine = new Map(); // id → {li, body, timer}
  }

  clear() {
    for (const m of this.mine.values()) clearTimeout(m.timer);
    this.mine.clear();
    $("chat-log").replaceChildren();
  }

  // incoming shows a message from the meeting; one's own echo marks it sent.
  incoming(m) {
    const mine = m.id ? this.mine.get(m.id) : null;
    if (mine && m.self) {
      this.sent(m.id, m.at);
      return;
    }
    if (m.self && m.id && this.findLi(m.id)) return; // an echo repeated (a resumed session)
    const li = this.item(m.self ? "You" : m.label || m.name, m.body, m.self);
    li.dataset.from = m.name;
    li.dataset.status = "sent";
    if (m.id) li.dataset.id = m.id;
    this.setMeta(li, `${m.self ? "You" : m.label || m.name} · ${timeFormat.format(m.at)}`);
    this.append(li);
  }

  // submit sends what the person wrote, showing it as pending until its echo.
  submit(body, selfName) {
    const id = newID();
    const li = this.item("You", body, true);
    li.dataset.from = selfName || "";
    li.dataset.id = id;
    this.append(li);
    this.mine.set(id, { li, body, timer: null });
    this.attempt(id);
    return id;
  }

  attempt(id) {
    const m = this.mine.get(id);
    if (!m) return;
    this.setStatus(m.li, "pending", "");
    this.setMeta(m.li, "You · Sending…");
    if (!this.canSend()) {
      this.failed(id, MSG.chatNotSentInterrupted);
      return;
    }
    clearTimeout(m.timer);
    m.timer = setTimeout(() => this.failed(id, MSG.chatNoAnswer), ECHO_TIMEOUT_MS);
    this.send(m.body, id).catch((err) => {
      this.log("chat:", err);
      this.failed(id, MSG.chatNotSentInterrupted);
    });
  }

  // retry sends a message that was not sent again, under a new id (a late echo of the first
  // attempt must not count for the second).
  retry(oldID) {
    const m = this.mine.get(oldID);
    if (!m) return;
    clearTimeout(m.timer);
    this.mine.delete(oldID);
    const id = newID();
    m.li.dataset.id = id;
    this.mine.set(id, m);
    this.attempt(id);
  }

  sent(id, at = new Date()) {
    const m = this.mine.get(id);
    if (!m) return;
    clearTimeout(m.timer);
    this.mine.delete(id);
    this.setStatus(m.li, "sent", "");
    this.setMeta(m.li, `You · ${timeFormat.format(at)}`);
  }

  // failed marks one's own message not sent, with why. A message already echoed is left as
  // sent.
  failed(id, why) {
    const m = this.mine.get(id);
    if (!m || m.li.dataset.status === "failed") return;
    clearTimeout(m.timer);
    this.setStatus(m.li, "failed", why || MSG.chatNotSent);
    this.setMeta(m.li, "You · Not sent");
  }

  // interrupted marks every message still waiting for its echo not sent: the meeting that
  // would have echoed it is gone.
  interrupted() {
    for (const id of [...this.mine.keys()]) {
      if (this.mine.get(id).li.dataset.status === "pending") this.failed(id, MSG.chatNotSentInterrupted);
    }
  }

  system(text) {
    const li = document.createElement("li");
    li.className = "system";
    li.textContent = text;
    this.append(li);
  }

  // ---- rendering ------------------------------------------------------------------------

  item(who, body, self) {
    const li = document.createElement("li");
    li.dataset.testid = "chat-message";
    li.dataset.self = self ? "true" : "false";
    const meta = document.createElement("div");
    meta.className = "chat-meta";
    meta.textContent = who;
    const b = document.createElement("div");
    b.className = "chat-body";
    b.textContent = body;
    li.append(meta, b);
    return li;
  }

  setMeta(li, text) {
    li.querySelector(".chat-meta").textContent = text;
  }

  setStatus(li, status, why) {
    li.dataset.status = status;
    li.querySelector(".chat-note")?.remove();
    li.querySelector(".chat-retry")?.remove();
    if (status !== "failed") return;
    const note = document.createElement("p");
    note.className = "chat-note";
    note.setAttribute("role", "alert");
    note.textContent = why;
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "button subtle chat-retry";
    retry.textContent = "Retry";
    const body = li.querySelector(".chat-body").textContent;
    retry.setAttribute("aria-label", `Retry sending “${body.length > 40 ? body.slice(0, 40) + "…" : body}”`);
    retry.addEventListener("click", () => this.retry(li.dataset.id));
    li.append(note, retry);
  }

  findLi(id) {
    return $("chat-log").querySelector(`li[data-id="${CSS.escape(id)}"]`);
  }

  append(li) {
    const log = $("chat-log");
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(li);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }
}
