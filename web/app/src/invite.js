// Inviting others from the meeting: a link to the join page with the call ID filled in, and
// copy buttons for the link, the call ID and the passcode. The passcode is never put in the
// link: links end up in browser histories, proxy logs and chat previews, so it is copied on
// its own, to be sent separately (or told).
//
//   #invite-toggle[aria-expanded]  #invite (the panel)  #invite-link (its value)
//   #invite-callid  #invite-passcode  #invite-copied (what was copied, for screen readers)
//   button[data-copy=link|callId|passcode]

const $ = (id) => document.getElementById(id);

// inviteLink is the join page's address for a call ID, on origin.
export function inviteLink(origin, callId) {
  return `${origin}/join?callId=${encodeURIComponent(callId)}`;
}

// groupDigits writes a call ID as people read it aloud: 123 456 789.
export function groupDigits(id) {
  return /^\d{7,}$/.test(id) ? id.replace(/\B(?=(\d{3})+$)/g, " ") : id;
}

export class Invite {
  constructor(log = () => {}) {
    this.log = log;
    this.info = null;
    $("invite-toggle").addEventListener("click", () => this.toggle());
    for (const b of $("invite").querySelectorAll("button[data-copy]")) {
      b.addEventListener("click", () => this.copy(b.dataset.copy));
    }
    $("invite-close").addEventListener("click", () => this.toggle(false));
  }

  // show sets what the panel offers: {callId, passcode, passcodeKnown}. Without a call ID
  // there is nothing to invite with, and no button.
  show(info) {
    this.info = info && info.callId ? info : null;
    $("invite-toggle").hidden = !this.info;
    this.toggle(false);
    if (!this.info) return;
    $("invite-link").value = inviteLink(location.origin, this.info.callId);
    $("invite-callid").textContent = groupDigits(this.info.callId);
    const pc = $("invite-passcode");
    const copyPass = $("invite").querySelector('button[data-copy="passcode"]');
    if (!this.info.passcodeKnown) {
      pc.textContent = "Not shown here: the space's owner has it";
      copyPass.hidden = true;
    } else if (!this.info.passcode) {
      pc.textContent = "None: the call ID is enough";
      copyPass.hidden = true;
    } else {
      pc.textContent = "•".repeat(Math.min(this.info.passcode.length, 12));
      copyPass.hidden = false;
    }
    $("invite-copied").textContent = "";
  }

  toggle(open = $("invite").hidden) {
    $("invite").hidden = !open;
    $("invite-toggle").setAttribute("aria-expanded", open ? "true" : "false");
    if (open) $("invite-link").focus();
  }

  async copy(what) {
    if (!this.info) return;
    const text = { link: $("invite-link").value, callId: this.info.callId, passcode: this.info.passcode }[what] || "";
    const words = { link: "Link copied", callId: "Call ID copied", passcode: "Passcode copied: send it separately" }[what];
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (err) {
      this.log("clipboard:", err && err.message);
      ok = copyBySelection(text);
    }
    const out = $("invite-copied");
    out.textContent = ok ? words : "Copying failed: select the text and copy it yourself";
    out.dataset.copied = ok ? what : "";
  }
}

// copyBySelection is the older way, for browsers that refuse the clipboard API.
function copyBySelection(text) {
  const ta = document.createElement("textarea");
  ta.value = text;
  ta.setAttribute("readonly", "");
  ta.className = "visually-hidden";
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}
