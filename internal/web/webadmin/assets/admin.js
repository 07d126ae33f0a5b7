// Confab web admin: keeps the status page current by polling /admin/api/signal-flow every
// second, refreshes the calls page (and the LDAP page while a sync runs) by fetching the page
// again and swapping its live part, says plainly when the server cannot be reached, and
// moves keyboard focus to the first error of a form that failed. No framework, no build
// step: this file is served as it is.
(() => {
  "use strict";
  const POLL_MS = 1000;
  const body = document.body;
  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, String(v));
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === "") continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  function updateStatus(st) {
    body.dataset.linkState = st.state;
    const badge = $("#link-state");
    if (badge) {
      badge.className = `badge ${st.stateClass}`;
      badge.dataset.stateClass = st.stateClass;
    }
    for (const node of document.querySelectorAll("[data-field]")) {
      const f = node.dataset.field;
      let v = st[f];
      if (f === "for") v = st.for ? `(${st.for})` : "";
      setText(node, v === undefined || v === null ? "" : String(v));
    }
    for (const wrap of document.querySelectorAll("[data-wrap]")) {
      wrap.classList.toggle("hidden-fact", !st[wrap.dataset.wrap]);
    }
  }

  function updateSteps(steps) {
    for (const s of steps) {
      const g = document.getElementById(`step-${s.n}`);
      if (!g) continue;
      if (g.dataset.outcome !== s.class) {
        g.setAttribute("class", `step ${s.class}`);
        g.dataset.outcome = s.class;
      }
      setText($("title", g), s.tooltip);
      setText($(".summary", g), s.summary);
      setText($(".note", g), s.note || "");
    }
  }

  // The failures of the latest attempt, first step first, one line per server for the steps
  // run against each SRV target.
  function updateFailures(failed) {
    const wrap = $("#failures-wrap");
    const list = $("#failures");
    if (!wrap || !list) return;
    wrap.hidden = failed.length === 0;
    list.replaceChildren(
      ...failed.map((s) =>
        el(
          "li",
          { "data-step": s.n, "data-server": s.server || undefined },
          el(
            "p",
            { class: "failure-title" },
            el("span", { class: "pill failed" }, `Step ${s.n}`),
            " ",
            s.title,
            s.server ? " " : "",
            s.server ? el("span", { class: "mono small" }, `on ${s.server}`) : "",
            s.cause ? " " : "",
            s.cause ? el("span", { class: "mono small" }, `(${s.cause})`) : "",
          ),
          s.detail ? el("p", {}, s.detail) : "",
          s.remedy ? el("p", { class: "remedy" }, el("strong", {}, "Remedy:"), " ", s.remedy) : "",
        ),
      ),
    );
  }

  // Each XMPP server the latest attempt tried, with its own steps 5 to 11.
  function updateServers(servers, shown) {
    const wrap = $("#servers-wrap");
    const tbody = $("#servers");
    if (!wrap || !tbody) return;
    wrap.hidden = servers.length === 0;
    setText($("#shown-server"), shown || "");
    tbody.replaceChildren(
      ...servers.map((sv) =>
        el(
          "tr",
          { "data-server": sv.server, "data-shown": sv.shown ? "true" : undefined },
          el("td", {}, sv.order),
          el("td", { class: "mono" }, sv.server),
          el("td", {}, ...sv.steps.flatMap((s) => [el("span", { class: `pill ${s.class}`, title: s.tooltip, "data-step": s.n }, s.n), " "])),
          el("td", {}, el("span", { class: `pill ${sv.class}` }, sv.result)),
        ),
      ),
    );
  }

  function updateAlarms(alarms) {
    const table = $("#alarms-table");
    const none = $("#no-alarms");
    const tbody = $("#alarms");
    if (!tbody) return;
    table.hidden = alarms.length === 0;
    none.hidden = alarms.length > 0;
    tbody.replaceChildren(
      ...alarms.map((a) =>
        el(
          "tr",
          { "data-testid": "alarm", "data-reason": a.failureReason },
          el("td", {}, el("strong", {}, a.type), el("div", { class: "small muted" }, a.detail || "")),
          el("td", {}, el("span", { class: "pill failed" }, a.failureReason), a.tlsCause ? " " : "", a.tlsCause ? el("span", { class: "pill" }, a.tlsCause) : ""),
          el("td", {}, a.for || ""),
        ),
      ),
    );
  }

  function updateEvents(events) {
    const tbody = $("#events");
    if (!tbody) return;
    const first = tbody.querySelector("tr[data-seq]");
    if (first && events.length && String(events[0].seq) === first.dataset.seq && tbody.children.length === events.length) return;
    if (!events.length) {
      tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 8 }, "No events yet.")));
      return;
    }
    tbody.replaceChildren(
      ...events.map((e) =>
        el(
          "tr",
          { "data-seq": e.seq },
          el("td", {}, e.seq),
          el("td", { class: "mono" }, e.time),
          el("td", {}, e.attempt),
          el("td", {}, e.step),
          el("td", {}, el("span", { class: `pill ${e.class}` }, e.outcome)),
          el("td", { class: "mono" }, e.target || ""),
          el("td", {}, e.duration || ""),
          el("td", {}, e.cause ? el("span", { class: "mono" }, e.cause) : "", e.cause ? ": " : "", e.detail || ""),
        ),
      ),
    );
  }

  // ---- reachability: one banner for every page that refreshes itself ----
  let unreachableSince = null;
  const pad = (n) => String(n).padStart(2, "0");
  function reachable(ok) {
    const banner = $("#unreachable");
    if (ok) {
      unreachableSince = null;
      if (banner) banner.hidden = true;
      body.dataset.state = "live";
      return;
    }
    if (unreachableSince === null) {
      unreachableSince = new Date();
      const t = unreachableSince;
      setText($("#unreachable-since"), `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`);
    }
    if (banner) banner.hidden = false;
    body.dataset.state = "stale";
    // What the page shows about the link is now unknown: never leave a green "Registered".
    const badge = $("#link-state");
    if (badge) {
      badge.className = "badge none";
      badge.dataset.stateClass = "none";
      setText(badge, "Unknown: no contact with the Call Bridge");
      body.dataset.linkState = "unknown";
    }
  }

  function signedOut() {
    body.dataset.state = "signed-out";
    location.assign(`/admin/login?next=${encodeURIComponent(location.pathname)}`);
  }

  let timer = null;
  let running = false;
  async function poll() {
    timer = null;
    if (running) return;
    running = true;
    try {
      const res = await fetch("/admin/api/signal-flow", { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } });
      if (res.status === 401) {
        signedOut();
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const flow = await res.json();
      updateStatus(flow.status);
      updateSteps(flow.steps);
      updateFailures(flow.failures || []);
      updateServers(flow.servers || [], flow.shown);
      updateAlarms(flow.alarms || []);
      updateEvents(flow.events || []);
      setText($("#updated"), flow.updated);
      reachable(true);
    } catch (err) {
      console.warn("signal flow update failed:", err);
      reachable(false);
    }
    running = false;
    if (!document.hidden) timer = setTimeout(poll, POLL_MS);
  }

  // ---- pages whose live part is the same page fetched again ----
  // refreshPart replaces the element sel with its newer version every ms milliseconds while
  // the page is visible and keepGoing() holds.
  function refreshPart(sel, ms, keepGoing = () => true) {
    let t = null;
    let busy = false;
    async function tick() {
      t = null;
      if (busy) return;
      busy = true;
      try {
        const res = await fetch(location.pathname + location.search, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } });
        if (res.redirected && new URL(res.url).pathname === "/admin/login") {
          signedOut();
          return;
        }
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const doc = new DOMParser().parseFromString(await res.text(), "text/html");
        const fresh = doc.querySelector(sel);
        const cur = $(sel);
        // A <details> the administrator opened stays open across refreshes.
        if (fresh && cur) {
          for (const d of cur.querySelectorAll("details[open][id]")) {
            const again = fresh.querySelector(`#${CSS.escape(d.id)}`);
            if (again) again.open = true;
          }
        }
        if (fresh && cur && fresh.innerHTML !== cur.innerHTML) {
          // Keep keyboard focus on the same control when it is still there.
          const focused = document.activeElement && document.activeElement.closest(sel) ? document.activeElement.getAttribute("href") : null;
          cur.replaceWith(fresh);
          if (focused) {
            const again = fresh.querySelector(`[href="${CSS.escape(focused)}"]`);
            if (again) again.focus();
          }
        }
        for (const id of ["calls-count"]) {
          const a = doc.getElementById(id);
          if (a) setText(document.getElementById(id), a.textContent);
        }
        reachable(true);
      } catch (err) {
        console.warn("refresh failed:", err);
        reachable(false);
      }
      busy = false;
      if (!document.hidden && keepGoing()) t = setTimeout(tick, ms);
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && t === null && !busy && keepGoing()) tick();
    });
    t = setTimeout(tick, ms);
  }

  // focusFirstError puts keyboard focus on the first field in error (else on the form's
  // error message) after a form came back with errors.
  function focusFirstError() {
    const field = $("[aria-invalid=true]");
    if (field) {
      field.focus();
      return;
    }
    const warn = $("#disrupt-warning");
    if (warn) {
      warn.focus();
      return;
    }
    const err = $("#form-error");
    if (err) err.focus();
  }

  // disableWith disables (and empties) the inputs while the checkbox is checked.
  function disableWith(checkboxSel, ...inputSels) {
    const box = $(checkboxSel);
    if (!box) return;
    box.addEventListener("change", () => {
      for (const s of inputSels) {
        const input = $(s);
        if (!input) continue;
        input.disabled = box.checked;
        if (box.checked) input.value = "";
      }
    });
  }

  function start() {
    if (body.dataset.page === "status") {
      document.addEventListener("visibilitychange", () => {
        if (!document.hidden && timer === null && !running) poll();
      });
      poll();
    }
    const calls = $("#calls[data-refresh]");
    if (calls) refreshPart("#calls", Number(calls.dataset.refresh) || 3000);
    const turn = $("#turn[data-refresh]");
    if (turn) refreshPart("#turn", Number(turn.dataset.refresh) || 3000);
    const syncs = $("#syncs-card");
    if (syncs && syncs.dataset.running === "true") refreshPart("#syncs-card", 1000, () => $("#syncs-card").dataset.running === "true");
    disableWith("#clearSecret", "#sharedSecret", "#confirmSharedSecret");
    disableWith("#clearPasscode", "#passcode");
    focusFirstError();
    // The API browser's index: show the object types whose name or path has what is typed.
    const search = $("#api-search");
    if (search) {
      search.addEventListener("input", () => {
        const q = search.value.trim().toLowerCase();
        for (const a of document.querySelectorAll("#api-collections a[data-path]")) {
          a.parentElement.hidden = q !== "" && !a.textContent.toLowerCase().includes(q);
        }
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
