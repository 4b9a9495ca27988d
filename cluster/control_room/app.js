// The control room page: the alert queue (live), one alert's evidence side by side with the
// watchlist photo, one-click adjudication with a reason, camera health and deployment figures.
// Everything comes from the API with the officer's key, kept in sessionStorage for this tab only.
// An auditor gets the same records read-only: no faces, no decisions, no live stream (the queue
// is read again with the status instead), as the API allows an auditor (cluster/api/auth.py).
// The Cases view lists what retrospective and social-media searches found (cluster/cases): each
// case's authorisation, and its candidates with their crops for an officer to confirm or reject,
// once each and with a reason, like alerts; an auditor reads the cases and decisions only.
// Social search (operators and supervisors) uploads a photo with the officer's reason and shows the
// posts the face appears in, with each post's provenance and text flag, and a link into the case it opened.
// The live stream is read with fetch (EventSource cannot send the key), resuming from the last
// event id after a reconnect, so no event is lost or shown twice.
"use strict";

const TOKEN_KEY = "lfr.token";
const OPEN_STATES = ["new", "acknowledged"];
const QUEUE_LIMIT = 200;
const THUMBNAILS = 60;
const STATUS_PERIOD_MS = 15000;
const RETRY_MS = 2000;
const STALE_STATUS_S = 60;
const STATUS_AFTER_EVENT_MS = 1500;
const AUDIT_PAGE = 50;
const CASES_LIMIT = 100;
const REASONS = {
  confirm: ["Identity verified on engagement", "Identity verified against ID document"],
  reject: ["Not the watchlist person", "Poor image quality", "Person not located"],
};
const CASE_REASONS = {
  confirm: ["Same person on close comparison of the faces"],
  reject: ["Not the same person", "Poor image quality"],
};

const state = {
  token: null,
  me: null,
  alerts: new Map(),
  filter: "open",
  selectedId: null,
  selectedSighting: null,
  detail: null,
  lastEventId: 0,
  stream: null,
  statusTimer: null,
  statusSoon: null,
  images: new Map(),
  busy: false,
  dialogSubmit: null,
  caseId: null,
};

const $ = (id) => document.getElementById(id);
const actsLive = () => Boolean(state.me) && state.me.role !== "auditor";
const oversees = () => Boolean(state.me) && ["auditor", "supervisor"].includes(state.me.role);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ---- time and numbers ---------------------------------------------------------------------

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function dateTime(seconds) {
  return new Date(seconds * 1000).toLocaleString([], {
    day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit",
  });
}

function dayTime(seconds) {
  return new Date(seconds * 1000).toLocaleString([], {
    day: "2-digit", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

function ago(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

const count = (n) => Number(n).toLocaleString();
const percent = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`);

// ---- API ----------------------------------------------------------------------------------

class Unauthorised extends Error {}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  let body = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (options.form !== undefined) body = options.form;
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body,
    signal: options.signal,
    cache: "no-store",
  });
  if (response.status === 401) throw new Unauthorised("Your key was not accepted.");
  if (!response.ok) throw new Error(await errorText(response));
  return options.raw ? response : response.json();
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ");
  } catch (_) {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`;
}

function failed(error) {
  if (error instanceof Unauthorised) {
    signOut(error.message);
    return;
  }
  toast(error.message, true);
}

async function image(url) {
  if (!url) return null;
  if (!state.images.has(url)) {
    state.images.set(url, api(url, { raw: true })
      .then((response) => response.blob())
      .then((blob) => URL.createObjectURL(blob))
      .catch(() => null));
  }
  return state.images.get(url);
}

function showImage(img, url) {
  img.classList.remove("loaded");
  img.removeAttribute("src");
  image(url).then((src) => {
    if (src && img.dataset.want === url) {
      img.src = src;
      img.classList.add("loaded");
    }
  });
  img.dataset.want = url || "";
}

// ---- sign in ------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  state.me = await api("/me");
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = `${state.me.name} · ${state.me.role}`;
  document.querySelectorAll(".supervisor-only").forEach((node) => { node.hidden = state.me.role !== "supervisor"; });
  document.querySelectorAll(".operator-only").forEach((node) => { node.hidden = !actsLive(); });
  document.querySelectorAll(".overseer-only").forEach((node) => { node.hidden = !oversees(); });
  $("oversight-note").hidden = actsLive();
  await loadQueue();
  if (actsLive()) followEvents();
  else setLive("read-only");
  loadStatus();
  state.statusTimer = setInterval(refresh, STATUS_PERIOD_MS);
}

function refresh() {
  loadStatus();
  if (!actsLive()) loadQueue().catch(failed);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.stream) state.stream.abort();
  clearInterval(state.statusTimer);
  clearTimeout(state.statusSoon);
  if ($("audit-dialog").open) $("audit-dialog").close();
  if ($("cases-dialog").open) $("cases-dialog").close();
  if ($("social-dialog").open) $("social-dialog").close();
  for (const pending of state.images.values()) pending.then((src) => src && URL.revokeObjectURL(src));
  Object.assign(state, {
    token: null, me: null, alerts: new Map(), selectedId: null, detail: null, stream: null, images: new Map(),
    statusSoon: null, caseId: null,
  });
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

// ---- the queue ----------------------------------------------------------------------------

async function loadQueue() {
  const query = new URLSearchParams({ limit: String(QUEUE_LIMIT) });
  if (state.filter === "open") OPEN_STATES.forEach((s) => query.append("state", s));
  const page = await api(`/alerts?${query}`);
  state.alerts = new Map(page.alerts.map((alert) => [alert.alert_id, alert]));
  if (!state.stream) state.lastEventId = page.last_event_id;
  renderQueue();
  if (!state.selectedId && visibleAlerts().length) select(visibleAlerts()[0].alert_id);
}

function visibleAlerts() {
  const alerts = [...state.alerts.values()].filter((a) => state.filter === "all" || OPEN_STATES.includes(a.state));
  return alerts.sort((a, b) => b.created_at - a.created_at || (a.alert_id < b.alert_id ? 1 : -1));
}

function renderQueue(freshId) {
  const alerts = visibleAlerts();
  const list = $("queue");
  list.replaceChildren(...alerts.map((alert, index) => queueItem(alert, index < THUMBNAILS, alert.alert_id === freshId)));
  $("queue-empty").hidden = alerts.length > 0;
  const open = [...state.alerts.values()].filter((a) => OPEN_STATES.includes(a.state)).length;
  $("queue-count").textContent = `${open} open`;
}

function queueItem(alert, withThumbnail, fresh) {
  const thumb = el("img", { className: "thumb", alt: "" });
  if (withThumbnail && alert.best_crop_url && actsLive()) showImage(thumb, alert.best_crop_url);
  const item = el("li", {
    className: `queue-item${fresh ? " fresh" : ""}`,
    dataset: { alertId: alert.alert_id },
    "aria-selected": alert.alert_id === state.selectedId ? "true" : "false",
    onclick: () => select(alert.alert_id),
  },
  thumb,
  el("div", { className: "queue-main" },
    el("div", { className: "queue-person" }, alert.person_id),
    el("div", { className: "queue-meta" },
      `${alert.cameras.join(", ")} · ${(alert.confidence * 100).toFixed(0)}%`)),
  el("div", { className: "queue-side" },
    el("span", { className: `badge ${alert.state}`, dataset: { state: alert.state } }, alert.state),
    el("span", { className: "queue-time", title: dateTime(alert.created_at) }, clock(alert.created_at))));
  return item;
}

function move(step) {
  const alerts = visibleAlerts();
  if (!alerts.length) return;
  const index = alerts.findIndex((a) => a.alert_id === state.selectedId);
  const next = index < 0 ? 0 : Math.min(alerts.length - 1, Math.max(0, index + step));
  select(alerts[next].alert_id);
}

// ---- one alert ----------------------------------------------------------------------------

async function select(alertId) {
  state.selectedId = alertId;
  state.selectedSighting = null;
  document.querySelectorAll(".queue-item").forEach((node) => {
    const selected = node.dataset.alertId === alertId;
    node.setAttribute("aria-selected", selected ? "true" : "false");
    if (selected) node.scrollIntoView({ block: "nearest" });
  });
  try {
    const detail = await api(`/alerts/${encodeURIComponent(alertId)}`);
    if (state.selectedId === alertId) renderDetail(detail);
  } catch (error) {
    failed(error);
  }
}

function renderDetail(detail) {
  state.detail = detail;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("detail-person").textContent = detail.person_id;
  $("detail-sub").textContent = `${detail.watchlist_id} · ${detail.deployment_id} · alert ${detail.alert_id}`;
  const badge = $("detail-state");
  badge.className = `badge ${detail.state}`;
  badge.dataset.state = detail.state;
  badge.textContent = detail.held ? `${detail.state} · held` : detail.state;

  const sightings = [...detail.sightings_detail].sort((a, b) => b.similarity - a.similarity);
  const chosen = sightings.find((s) => s.sighting_id === state.selectedSighting) || sightings[0];
  state.selectedSighting = chosen.sighting_id;
  const faces = actsLive();
  if (faces) showImage($("live-crop"), chosen.crop_url);
  $("live-caption").textContent = `${chosen.camera_id} · ${clock(chosen.first_seen)} · score ${chosen.similarity.toFixed(3)}`;
  if (faces) showImage($("watchlist-photo"), detail.watchlist_photo_url);
  $("watchlist-caption").textContent = `${detail.person_id} · ${detail.watchlist_id}`;

  $("sightings").replaceChildren(...sightings.map((s) => {
    const thumb = el("img", { alt: "" });
    if (s.crop_url && faces) showImage(thumb, s.crop_url);
    return el("button", {
      type: "button", className: "sighting", "aria-pressed": s.sighting_id === chosen.sighting_id ? "true" : "false",
      title: `${s.camera_id}, ${s.frames} frames`,
      onclick: () => { state.selectedSighting = s.sighting_id; renderDetail(state.detail); },
    }, thumb, el("span", {}, s.camera_id), el("span", { className: "similarity" }, s.similarity.toFixed(3)));
  }));

  const facts = [
    ["Confidence", `${(detail.confidence * 100).toFixed(1)}%`],
    ["Cameras", detail.cameras.join(", ")],
    ["Seen", `${clock(detail.first_seen)} – ${clock(detail.last_seen)}`],
    ["Raised", `${dateTime(detail.created_at)} (${ago(detail.created_at)})`],
    ["Threshold", thresholdText(detail)],
    ["Model scores", modelScores(chosen)],
  ];
  $("facts").replaceChildren(...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));

  $("history").replaceChildren(
    el("li", {}, el("span", { className: "when" }, clock(detail.created_at)), "raised by the system"),
    ...detail.adjudications.map((a) => el("li", {},
      el("span", { className: "when" }, clock(a.at)),
      `${a.state} by ${a.officer}`, a.reason ? ` — ${a.reason}` : "")));

  $("act-acknowledge").disabled = detail.state !== "new";
  $("act-confirm").disabled = detail.state !== "acknowledged";
  $("act-reject").disabled = !OPEN_STATES.includes(detail.state);
  $("act-hold").hidden = state.me.role !== "supervisor" || detail.held;
  $("act-release").hidden = state.me.role !== "supervisor" || !detail.held;
}

function thresholdText(d) {
  const base = `${d.threshold.toFixed(3)} · ${d.model}`;
  if (d.target_fpir == null) return `${base} (uncalibrated)`;
  const tpir = d.expected_tpir == null ? "" : `, expected TPIR ${d.expected_tpir.toFixed(2)}`;
  return `${base} · FPIR 1 in ${Math.round(1 / d.target_fpir).toLocaleString()}${tpir}`;
}

function modelScores(sighting) {
  const entries = Object.entries(sighting.model_scores || {});
  if (!entries.length) return "—";
  return entries.map(([model, cosine]) => `${model} ${cosine.toFixed(3)}`).join(", ");
}

function applyDetail(detail) {
  const { sightings_detail: _s, adjudications: _a, watchlist_photo_url: _w, ...summary } = detail;
  state.alerts.set(detail.alert_id, summary);
  renderQueue();
  if (state.selectedId === detail.alert_id) renderDetail(detail);
}

// ---- decisions ----------------------------------------------------------------------------

async function decide(action, reason) {
  const alertId = state.selectedId;
  if (!alertId || state.busy) return;
  state.busy = true;
  try {
    const detail = await api(`/alerts/${encodeURIComponent(alertId)}/${action}`, {
      method: "POST", body: { reason },
    });
    applyDetail(detail);
    toast(`${detail.person_id}: ${action === "release" ? "hold released" : detail.state}`);
    return true;
  } catch (error) {
    failed(error);
    return false;
  } finally {
    state.busy = false;
  }
}

function acknowledge() {
  if (state.detail && state.detail.state === "new") decide("acknowledge", "");
}

function askReason(action) {
  const detail = state.detail;
  if (!detail) return;
  const allowed = {
    confirm: detail.state === "acknowledged",
    reject: OPEN_STATES.includes(detail.state),
    hold: !detail.held,
    release: detail.held,
  }[action];
  if (!allowed) {
    toast(action === "confirm" && detail.state === "new"
      ? "Acknowledge the alert first (a): confirming needs an officer who took it on."
      : `Cannot ${action} an alert that is ${detail.state}${detail.held ? " and held" : ""}.`, true);
    return;
  }
  const titles = {
    confirm: "Confirm: this is the watchlist person",
    reject: "Reject: false alert (not this person: their repeats here are counted, not alerted)",
    hold: "Hold for an investigation",
    release: "Release the hold",
  };
  openReason(titles[action], `${detail.person_id} · alert ${detail.alert_id}`, REASONS[action],
    (reason) => decide(action, reason));
}

// The reason dialog, for an alert's decision or a case candidate's: `submit(reason)` resolves true once done.
function openReason(title, hint, chips, submit) {
  state.dialogSubmit = submit;
  $("reason-title").textContent = title;
  $("reason-hint").textContent = hint;
  $("reason-chips").replaceChildren(...(chips || []).map((text) => el("button", {
    type: "button", onclick: () => { $("reason").value = text; $("reason").focus(); },
  }, text)));
  $("reason").value = "";
  $("reason-error").textContent = "";
  $("reason-dialog").showModal();
  $("reason").focus();
}

async function submitReason(event) {
  event.preventDefault();
  const reason = $("reason").value.trim();
  if (!reason) {
    $("reason-error").textContent = "A reason is required: say what was checked.";
    return;
  }
  if (await state.dialogSubmit(reason)) $("reason-dialog").close();
}

// ---- live stream --------------------------------------------------------------------------

function setLive(status) {
  const live = $("live");
  live.dataset.state = status;
  live.textContent = status;
}

async function followEvents() {
  const controller = new AbortController();
  state.stream = controller;
  while (state.stream === controller) {
    try {
      const response = await api("/events", {
        raw: true, signal: controller.signal, headers: { "Last-Event-ID": String(state.lastEventId) },
      });
      setLive("live");
      await readEvents(response.body.getReader(), controller);
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof Unauthorised) { failed(error); return; }
    }
    if (state.stream !== controller) return;
    setLive("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

async function readEvents(reader, controller) {
  const decoder = new TextDecoder();
  let buffer = "";
  while (state.stream === controller) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = parseMessage(block);
      if (message && message.event === "alert") onEvent(message);
    }
  }
}

function parseMessage(block) {
  const message = { event: "message", data: [], id: null };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") message.event = value;
    else if (field === "data") message.data.push(value);
    else if (field === "id") message.id = value;
  }
  return message.data.length ? message : null;
}

function onEvent(message) {
  const event = JSON.parse(message.data.join("\n"));
  if (event.event_id <= state.lastEventId) return;
  state.lastEventId = event.event_id;
  if (event.alert === null) state.alerts.delete(event.alert_id);
  else state.alerts.set(event.alert_id, event.alert);
  renderQueue(event.kind === "raised" ? event.alert_id : null);
  if (event.kind === "raised") toast(`New alert: ${event.alert ? event.alert.person_id : event.alert_id}`);
  if (!state.statusSoon) {
    state.statusSoon = setTimeout(() => { state.statusSoon = null; loadStatus(); }, STATUS_AFTER_EVENT_MS);
  }
  if (event.alert_id === state.selectedId) {
    if (event.alert === null) clearDetail();
    else select(event.alert_id);
  } else if (!state.selectedId && event.alert) {
    select(event.alert_id);
  }
}

function clearDetail() {
  state.selectedId = null;
  state.detail = null;
  $("detail-body").hidden = true;
  $("detail-empty").hidden = false;
}

// ---- deployment and cameras ---------------------------------------------------------------

async function loadStatus() {
  try {
    renderStatus(await api("/deployments"));
  } catch (error) {
    failed(error);
  }
}

function item(label, value, className) {
  return el("div", { className: "item" },
    el("span", { className: "label" }, label), el("span", { className: `value ${className || ""}` }, value));
}

function renderStatus(deployments) {
  const cameras = deployments.flatMap((d) => d.cameras.map((c) => ({ ...c, deployment: d.deployment_id })));
  const d = deployments[0];
  if (!d) {
    $("deployment").replaceChildren(item("Deployment", "no status published"));
    $("figures").replaceChildren();
  } else {
    const now = Date.now() / 1000;
    const active = d.starts_at <= now && now < d.ends_at;
    $("deployment").replaceChildren(
      item("Deployment", `${d.place}`),
      item("Window", `${dateTime(d.starts_at)} – ${dateTime(d.ends_at)}${active ? "" : " (closed)"}`, active ? "" : "stale"),
      item("Watchlist", `${d.watchlist_id} v${d.watchlist_version}`),
      item("Threshold", thresholdText(d)),
      item("Faces seen", count(d.faces_seen)),
      item("Alerts", count(d.alerts)),
      item("Non-matches deleted", count(d.non_match_deletions)),
      item("Updated", ago(d.published_at), d.age_s > STALE_STATUS_S ? "stale" : ""));
    const figures = [
      ["Confirmed", count(d.adjudication.confirmed)],
      ["Rejected", count(d.adjudication.rejected)],
      ["Open", count(d.adjudication.new + d.adjudication.acknowledged)],
      ["Held", count(d.adjudication.held)],
      ["False-alert rate", percent(d.adjudication.false_alert_rate)],
      ["Repeats suppressed", count(d.adjudication.suppressed_repeats)],
    ];
    $("figures").replaceChildren(...figures.flatMap(([label, value]) => [
      el("span", { className: "label" }, label), el("span", { className: "value" }, value)]));
  }
  $("cameras").replaceChildren(...cameras.map((c) => el("li", { className: "camera", dataset: { cameraId: c.camera_id } },
    el("span", { className: `dot ${c.state}`, title: c.state }),
    el("span", { className: "camera-name" }, c.camera_id),
    el("span", { className: "camera-state" }, c.state.replace("_", " ")),
    el("span", { className: "camera-meta" },
      `${c.fps_out.toFixed(1)} fps · ${c.last_frame_time ? `frame ${ago(c.last_frame_time)}` : "no frame yet"}`
      + ` · ${count(c.frames_dropped)} dropped${c.last_error ? ` · ${c.last_error}` : ""}`))));
  $("cameras-empty").hidden = cameras.length > 0;
  const streaming = cameras.filter((c) => c.state === "streaming").length;
  $("camera-count").textContent = cameras.length ? `${streaming}/${cameras.length} streaming` : "";
}

// ---- the audit log (auditors and supervisors) ----------------------------------------------

async function showAudit(after) {
  try {
    let start = after;
    if (start === undefined) {
      const { head_seq: head } = await api("/audit?limit=1");
      start = Math.max(0, head - AUDIT_PAGE);
    }
    const page = await api(`/audit?after=${start}&limit=${AUDIT_PAGE}`);
    const entries = [...page.entries].reverse();
    $("audit-entries").replaceChildren(...entries.map((e) => el("tr", { dataset: { seq: e.seq } },
      el("td", {}, e.seq),
      el("td", {}, dateTime(e.at)),
      el("td", {}, e.actor),
      el("td", {}, e.action),
      el("td", { className: "subject", title: e.subject }, e.subject),
      el("td", {}, auditOutcome(e.details)))));
    const first = page.entries.length ? page.entries[0].seq : start;
    $("audit-range").textContent = page.entries.length
      ? `Entries ${first} to ${page.entries[page.entries.length - 1].seq} of ${page.head_seq}, newest first.`
      : "No entries.";
    $("audit-older").disabled = first <= 1;
    $("audit-older").onclick = () => showAudit(Math.max(0, first - 1 - AUDIT_PAGE));
    if (!$("audit-dialog").open) $("audit-dialog").showModal();
  } catch (error) {
    failed(error);
  }
}

function auditOutcome(details) {
  if (details.status !== undefined) return `${details.method || ""} ${details.status}${details.count ? ` ×${details.count}` : ""}`;
  if (details.to !== undefined) return `${details.from} → ${details.to}`;
  return details.change || details.deployment_id || details.outcome || "";
}

// ---- cases (retrospective and social-media searches) ---------------------------------------

async function showCases() {
  try {
    const page = await api(`/cases?limit=${CASES_LIMIT}`);
    renderCases(page.cases);
    if (!$("cases-dialog").open) $("cases-dialog").showModal();
    const chosen = page.cases.find((c) => c.case_id === state.caseId) || page.cases[0];
    if (chosen) await selectCase(chosen.case_id);
    else $("case-detail").hidden = true;
  } catch (error) {
    failed(error);
  }
}

function renderCases(cases) {
  $("cases-list").replaceChildren(...cases.map((c) => el("tr", {
    dataset: { caseId: c.case_id },
    "aria-selected": c.case_id === state.caseId ? "true" : "false",
    onclick: () => selectCase(c.case_id).catch(failed),
  },
  el("td", { title: dateTime(c.opened_at) }, dateTime(c.opened_at)),
  el("td", {}, c.kind),
  el("td", { className: "officer" }, c.officer),
  el("td", { className: "reason", title: c.reason }, c.reason),
  el("td", { className: "pending" }, c.pending),
  el("td", { className: "confirmed" }, c.confirmed),
  el("td", { className: "rejected" }, c.rejected))));
  $("cases-empty").hidden = cases.length > 0;
}

async function selectCase(caseId) {
  state.caseId = caseId;
  document.querySelectorAll("#cases-list tr").forEach((row) => {
    row.setAttribute("aria-selected", row.dataset.caseId === caseId ? "true" : "false");
  });
  const detail = await api(`/cases/${encodeURIComponent(caseId)}`);
  if (state.caseId === caseId) renderCase(detail);
}

function renderCase(detail) {
  $("case-detail").hidden = false;
  $("case-title").textContent = `${detail.kind} case · ${detail.officer}`;
  const held = detail.held ? ` · held by ${detail.held_by}` : "";
  $("case-sub").textContent = `${detail.reason} · ${detail.query} · threshold ${detail.threshold.toFixed(3)}`
    + ` · ${count(detail.faces_seen)} faces searched · opened ${dateTime(detail.opened_at)}${held}`;
  const faces = actsLive();
  $("case-items").replaceChildren(...detail.items_detail.map((item) => {
    const crop = el("img", {
      className: "case-crop",
      alt: item.crop_url ? "" : "no crop: the post's image could not be read",
      title: item.crop_url ? "" : "No crop: the post's image could not be read when the case was opened",
    });
    if (faces && item.crop_url) showImage(crop, item.crop_url);
    const where = item.frame_time_s == null ? item.source : `${item.source} at ${item.frame_time_s.toFixed(1)} s`;
    const decided = item.decided_by
      ? el("div", { className: "decision" }, `${item.state} by ${item.decided_by} — ${item.decision_reason}`)
      : null;
    const actions = faces && item.state === "pending"
      ? [
        el("button", { type: "button", className: "action confirm", onclick: () => askCaseReason(detail, item, "confirm") },
          "Confirm"),
        el("button", { type: "button", className: "action reject", onclick: () => askCaseReason(detail, item, "reject") },
          "Reject"),
      ]
      : [];
    return el("li", { className: "case-item", dataset: { number: item.number, state: item.state } },
      faces ? crop : el("span", {}),
      el("div", {},
        el("div", { className: "label" }, item.label),
        el("div", { className: "meta" }, `${item.person_id} · ${where}`),
        el("div", { className: "meta score" },
          `score ${item.score.toFixed(3)} (threshold ${item.threshold.toFixed(3)})`),
        decided),
      el("div", { className: "case-actions" },
        el("span", { className: `badge ${item.state}` }, item.state), ...actions));
  }));
}

function askCaseReason(detail, item, action) {
  const titles = {
    confirm: "Confirm: this candidate is the person searched for",
    reject: "Reject: not the person searched for",
  };
  openReason(titles[action], `${item.label} · case ${detail.case_id}, candidate ${item.number}`, CASE_REASONS[action],
    (reason) => decideItem(detail.case_id, item.number, action, reason));
}

async function decideItem(caseId, number, action, reason) {
  if (state.busy) return false;
  state.busy = true;
  try {
    const detail = await api(`/cases/${encodeURIComponent(caseId)}/items/${number}/${action}`, {
      method: "POST", body: { reason },
    });
    if (state.caseId === caseId) renderCase(detail);
    renderCases((await api(`/cases?limit=${CASES_LIMIT}`)).cases);
    toast(`case ${caseId}, candidate ${number}: ${action === "confirm" ? "confirmed" : "rejected"}`);
    return true;
  } catch (error) {
    failed(error);
    return false;
  } finally {
    state.busy = false;
  }
}

// ---- social search (operators and supervisors) ---------------------------------------------

function showSocial() {
  $("social-error").textContent = "";
  if (!$("social-dialog").open) $("social-dialog").showModal();
  $("social-photo").focus();
}

async function submitSocial(event) {
  event.preventDefault();
  if (state.busy) return;
  const photo = $("social-photo").files[0];
  const reason = $("social-reason").value.trim();
  if (!photo) { $("social-error").textContent = "Choose a photo of the face to search with."; return; }
  if (!reason) {
    $("social-error").textContent = "A reason is required: the investigation, and why this search is necessary.";
    return;
  }
  const form = new FormData();
  form.append("photo", photo, photo.name);
  form.append("reason", reason);
  if ($("social-face").value !== "") form.append("face", $("social-face").value);
  state.busy = true;
  $("social-submit").disabled = true;
  $("social-submit").textContent = "Searching…";
  $("social-error").textContent = "";
  try {
    renderSocial(await api("/social/search", { method: "POST", form }));
  } catch (error) {
    if (error instanceof Unauthorised) failed(error);
    else $("social-error").textContent = error.message;
  } finally {
    state.busy = false;
    $("social-submit").disabled = false;
    $("social-submit").textContent = "Search";
  }
}

function renderSocial(result) {
  const found = result.matches.length;
  $("social-found").hidden = false;
  $("social-summary").replaceChildren(
    `${found} post${found === 1 ? "" : "s"} with face ${result.face} of ${result.probe}`
    + ` at or above ${result.min_similarity.toFixed(3)} (${count(result.faces_searched)} faces searched) · `,
    el("a", { id: "social-case", href: "#", onclick: (event) => { event.preventDefault(); openCase(result.case_id); } },
      `case ${result.case_id}: confirm or reject each candidate`));
  $("social-results").replaceChildren(...result.matches.map((m) => {
    const crop = el("img", { className: "case-crop", alt: "" });
    if (m.crop_url) showImage(crop, m.crop_url);
    const flag = m.flagged === null
      ? el("span", { className: "badge" }, "post deleted")
      : el("span", { className: `badge ${m.flagged ? "flagged" : "calm"}`, title: m.triage_model },
        m.flagged ? "text flagged for review" : "text not flagged");
    return el("li", { className: "social-match", dataset: { postId: m.post_id, platform: m.platform } },
      crop,
      el("div", {},
        el("div", { className: "label" }, `${m.platform} post ${m.post_id}`,
          m.author ? el("span", { className: "author" }, ` by ${m.author}`) : null),
        el("div", { className: "meta when-where" },
          `${dayTime(m.posted_at)}${m.place ? ` · ${m.place}` : ""}`),
        el("a", { className: "meta url", href: m.url, target: "_blank", rel: "noopener noreferrer" }, m.url),
        el("div", { className: "meta score" }, `similarity ${m.similarity.toFixed(3)} · candidate ${m.case_item}`)),
      el("div", { className: "case-actions" }, flag));
  }));
}

function openCase(caseId) {
  state.caseId = caseId;
  $("social-dialog").close();
  showCases();
}

// ---- feedback and keys --------------------------------------------------------------------

let toastTimer = null;
function toast(text, bad) {
  const node = $("toast");
  node.textContent = text;
  node.classList.toggle("bad", Boolean(bad));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.textContent = ""; }, 6000);
}

function onKey(event) {
  if ($("app").hidden || $("reason-dialog").open || $("audit-dialog").open || $("cases-dialog").open || $("social-dialog").open || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
  const actions = {
    j: () => move(1),
    k: () => move(-1),
    ...(actsLive() ? { a: acknowledge, c: () => askReason("confirm"), r: () => askReason("reject") } : {}),
  };
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

function setFilter(filter) {
  state.filter = filter;
  document.querySelectorAll(".tabs button").forEach((tab) => {
    tab.setAttribute("aria-selected", tab.dataset.filter === filter ? "true" : "false");
  });
  loadQueue().catch(failed);
}

function init() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    signIn($("token").value.trim()).catch((error) => {
      signOut(error instanceof Unauthorised ? "That key was not accepted." : error.message);
    });
  });
  $("logout").addEventListener("click", () => signOut(""));
  $("act-acknowledge").addEventListener("click", acknowledge);
  $("act-confirm").addEventListener("click", () => askReason("confirm"));
  $("act-reject").addEventListener("click", () => askReason("reject"));
  $("act-hold").addEventListener("click", () => askReason("hold"));
  $("act-release").addEventListener("click", () => askReason("release"));
  $("reason-form").addEventListener("submit", submitReason);
  $("open-audit").addEventListener("click", () => showAudit());
  $("audit-close").addEventListener("click", () => $("audit-dialog").close());
  $("open-cases").addEventListener("click", () => showCases());
  $("cases-close").addEventListener("click", () => $("cases-dialog").close());
  $("open-social").addEventListener("click", showSocial);
  $("social-close").addEventListener("click", () => $("social-dialog").close());
  $("social-form").addEventListener("submit", submitSocial);
  $("reason-cancel").addEventListener("click", () => $("reason-dialog").close());
  $("reason").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("reason-form").requestSubmit();
    }
  });
  document.querySelectorAll(".tabs button").forEach((tab) => tab.addEventListener("click", () => setFilter(tab.dataset.filter)));
  document.addEventListener("keydown", onKey);

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved).catch(() => signOut("Your session ended: sign in again."));
  else signOut("");
}

document.addEventListener("DOMContentLoaded", init);
