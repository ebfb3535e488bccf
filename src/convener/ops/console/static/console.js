// The convener console: live view (polled every second), transcript lines over server-sent
// events, latency waterfalls, agents' health and the searchable call history. No dependencies.
"use strict";

const $ = (sel) => document.querySelector(sel);
const api = (path) => fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } })
  .then(async (r) => {
    if (r.status === 401) { location.href = "/console/login"; throw new Error("log in"); }
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  });

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
const day = (iso) => iso ? iso.replace("T", " ").slice(0, 19) + " UTC" : "";

// What the page measured (read by the browser test): seconds from "logged" to "on screen".
window.consoleStats = { lineLags: [], linesShown: 0, historyMs: null };

// ---- live -----------------------------------------------------------------------------------
function renderRooms(snap) {
  const box = $("#rooms");
  const rooms = snap.rooms || [];
  box.replaceChildren(...(rooms.length ? rooms.map((r) => {
    const callers = r.callers.map((c) => [c.name, c.number].filter(Boolean).join(" ") || c.id).join(", ");
    const dl = el("dl", {},
      el("dt", { text: "Callers" }), el("dd", { class: "callers", text: callers || "none" }),
      el("dt", { text: "Floor" }), el("dd", { class: "floor", text: r.floor.length ? r.floor.join(", ") : "convener" }),
      el("dt", { text: "Agents" }), el("dd", { class: "agents", text: r.agents.length ? r.agents.join(", ") : "none yet" }),
      el("dt", { text: "Speaking" }), el("dd", { text: r.speaking || "nobody" }));
    const head = el("h3", {}, "Room ", r.name);
    if (r.recording) head.append(" ", el("span", { class: "rec", text: "● recording" }));
    return el("div", { class: "room", "data-room": r.name, "data-conversation": r.conversation_id || "" }, head, dl);
  }) : [el("p", { class: "empty", text: "No rooms open." })]));
  const calls = snap.calls || [];
  $("#status").textContent = `${snap.ready ? "Connected to Asterisk" : "Asterisk not connected"} · ` +
    `${calls.length} call${calls.length === 1 ? "" : "s"} · ${rooms.length} room${rooms.length === 1 ? "" : "s"}`;
}

function bar(start, width) {
  const span = el("span");  // set through CSSOM: the page's CSP allows no inline style attributes
  span.style.left = `${(100 * start).toFixed(2)}%`;
  span.style.width = `${(100 * width).toFixed(2)}%`;
  return span;
}

function waterfallItem(t) {
  const total = Math.max(t.total_ms || 0, 1);
  const rows = t.bars.map((b) => el("li", {},
    el("span", { text: b.stage.replace(/_/g, " ") }),
    el("span", { class: "track", "aria-hidden": "true" }, bar(b.start_ms / total, b.duration_ms / total)),
    el("span", { class: "ms", text: `${Math.round(b.duration_ms)} ms` })));
  return el("li", { "data-turn": t.turn_id },
    el("strong", { text: `${Math.round(t.total_ms || 0)} ms` }), " ", el("q", { text: t.text }),
    el("ol", { class: "wf", "aria-label": `stages of turn ${t.turn_id}` }, ...rows));
}

function renderTurns(turns) {
  const box = $("#waterfalls");
  box.replaceChildren(...(turns.length ? turns.map(waterfallItem) : [el("li", { class: "empty", text: "No turns yet." })]));
}

function renderAgents(agents) {
  const body = $("#agents-table tbody");
  const rows = Object.entries(agents || {}).map(([name, a]) => el("tr", {},
    el("th", { scope: "row", text: name }),
    el("td", { class: `state-${a.state}`, text: a.state || "unknown" }),
    el("td", { text: a.last_latency_ms != null ? `${Math.round(a.last_latency_ms)} ms` : "–" }),
    el("td", { text: a.last_error || "" })));
  body.replaceChildren(...rows);
}

let lastTurns = "";
async function poll() {
  try {
    const snap = await api("/console/api/live");
    renderRooms(snap);
    // A turn is listed from its end of speech on and gains stages as its reply is made and played,
    // so the key holds each turn's stages, not only its id.
    const key = JSON.stringify(snap.turns.map((t) => [t.turn_id, t.bars.map((b) => b.stage)]));
    if (key !== lastTurns) { lastTurns = key; renderTurns(snap.turns); }
    renderAgents(snap.agents);
  } catch (e) {
    $("#status").textContent = `Console cannot reach convener: ${e.message}`;
  }
  setTimeout(poll, 1000);
}

function addLine(ev) {
  const list = $("#transcript");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(el("li", { "data-conversation": ev.conversation_id },
    el("span", { class: "when", text: clock(ev.at) }), " ", el("span", { class: "who", text: ev.who }),
    ev.floor_holder && ev.floor_holder !== ev.who ? ` (floor: ${ev.floor_holder})` : "", ": ", ev.text,
    ev.room ? el("span", { class: "hint", text: ` · ${ev.room}` }) : ""));
  while (list.children.length > 300) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
  window.consoleStats.linesShown += 1;
  window.consoleStats.lineLags.push(Date.now() / 1000 - ev.at);
}

function listen() {
  const src = new EventSource("/console/api/events");
  src.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "line") addLine(ev);
  };
  src.onerror = () => { $("#status").textContent = "Live stream interrupted; reconnecting…"; };
}

// ---- history --------------------------------------------------------------------------------
async function search(evt) {
  if (evt) evt.preventDefault();
  const params = new URLSearchParams();
  for (const [k, v] of new FormData($("#search"))) if (String(v).trim()) params.set(k, String(v).trim());
  const status = $("#history-status");
  const t0 = performance.now();
  try {
    const body = await api(`/console/api/history?${params}`);
    const list = $("#conversations");
    list.replaceChildren(...body.conversations.map((c) => el("li", {},
      el("button", { type: "button", "data-id": c.conversation_id },
        el("strong", { text: c.room }), ` · ${day(c.started_at)} · ${c.turn_count} turn${c.turn_count === 1 ? "" : "s"}`,
        c.ended_at ? "" : " · in progress"))));
    for (const b of list.querySelectorAll("button")) b.addEventListener("click", () => openConversation(b));
    const ms = performance.now() - t0;
    window.consoleStats.historyMs = ms;
    status.textContent = `${body.conversations.length} conversation${body.conversations.length === 1 ? "" : "s"}` +
      (body.conversations.length >= body.limit ? ` (the latest ${body.limit})` : "") + ` · ${Math.round(ms)} ms`;
    status.dataset.count = body.conversations.length;
  } catch (e) {
    status.textContent = `Search failed: ${e.message}`;
  }
}

async function openConversation(button) {
  for (const b of document.querySelectorAll("#conversations button")) b.removeAttribute("aria-current");
  button.setAttribute("aria-current", "true");
  const box = $("#conversation");
  try {
    const c = await api(`/console/api/conversations/${encodeURIComponent(button.dataset.id)}`);
    const parts = [el("h3", { text: `Room ${c.room} · ${day(c.started_at)}` }),
      el("p", { class: "hint", text: c.ended_at ? `ended ${day(c.ended_at)}${c.end_reason ? ` (${c.end_reason})` : ""}` : "in progress" })];
    if (c.recording) {
      parts.push(el("audio", { controls: "", preload: "metadata", src: `/console/api/recordings/${encodeURIComponent(c.recording)}`,
        "aria-label": `recording of room ${c.room}` }));
    } else {
      parts.push(el("p", { class: "hint", text: "No recording." }));
    }
    const t0 = Date.parse(c.started_at);
    parts.push(el("ol", { class: "transcript" }, ...c.turns.map((t) => el("li", {},
      el("span", { class: "when", text: `+${((Date.parse(t.at) - t0) / 1000).toFixed(1)} s` }), " ",
      el("span", { class: "who", text: t.speaker }), t.floor_holder && t.floor_holder !== t.speaker ? ` (floor: ${t.floor_holder})` : "",
      ": ", t.text))));
    box.replaceChildren(...parts);
    box.dataset.id = c.conversation_id;
    box.focus();
  } catch (e) {
    box.replaceChildren(el("p", { class: "error", text: `Could not open it: ${e.message}` }));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#search").addEventListener("submit", search);
  poll();
  listen();
  search();
});
