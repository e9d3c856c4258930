// The syncer dashboard: vanilla JS over the /api/v1 routes, no build step.
// The key is given once (the form, or #key=... in the address, removed at once) and kept in
// sessionStorage. Every value is put in the page as text (never as HTML).
"use strict";

(function () {
  const API = "/api/v1";
  const STORE = "syncer.apiKey";
  const POLL_MS = 6000; // six calls a refresh: 60 a minute, under the default limit of 100
  const FINAL = new Set(["success", "failed", "rolled_back", "cancelled"]);

  let key = null;
  let timer = null;
  let busy = false;
  let again = false; // a refresh was asked for while one ran
  let pausedUntil = 0;
  const seen = {}; // section -> signature of the data last rendered (no re-render, no flicker)
  const openLogs = new Set(); // deployment ids whose log is shown
  const logCache = new Map(); // deployment id -> detail

  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, code, message, reset) {
      super(message);
      this.status = status;
      this.code = code;
      this.reset = reset;
    }
  }

  // --- small DOM helpers -------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function badge(value, kind) {
    const text = value === null || value === undefined || value === "" ? "—" : String(value);
    return el("span", { class: "badge " + (kind || tone(text)), text });
  }

  function tone(text) {
    const t = String(text).toLowerCase();
    if (["running", "success", "healthy", "in sync", "delivered", "reachable", "active", "ok"].includes(t)) return "good";
    // (a Swarm service's words: `failing`, none of its tasks runs after failures; `degraded`, some run)
    if (["failed", "unhealthy", "dead", "unreachable", "error", "conflict", "drifted",
         "failing"].includes(t)) return "bad";
    if (["exited", "stopped", "created", "paused", "held stopped", "pending", "sending", "starting",
         "restarting", "running…", "rolled back", "degraded"].includes(t)) return "warn";
    return "plain";
  }

  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
                                         second: "2-digit" });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  const short = (commit) => (commit ? String(commit).slice(0, 12) : "—");

  // A table that turns into cards on a phone: each cell carries its column's label.
  function table(columns, rows, cells, rowAttrs) {
    if (!rows.length) return null;
    const head = el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", text: c }))));
    const body = el("tbody", {}, rows.map((row) => {
      const values = cells(row);
      return el("tr", rowAttrs ? rowAttrs(row) : {},
        values.map((v, i) => el("td", { "data-label": columns[i] }, v === null || v === undefined ? "—" : v)));
    }));
    return el("div", { class: "scroll" }, el("table", { class: "cards" }, head, body));
  }

  function empty(text) {
    return el("p", { class: "empty", text });
  }

  // --- notices -----------------------------------------------------------------------------

  let noticeTimer = null;
  function notice(text, kind) {
    const box = $("notice");
    box.textContent = text;
    box.className = "notice notice-" + (kind || "info");
    box.hidden = false;
    clearTimeout(noticeTimer);
    if (kind !== "error") noticeTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  function clearNotice() {
    $("notice").hidden = true;
  }

  // --- the API -----------------------------------------------------------------------------

  async function api(path, method) {
    let response;
    try {
      response = await fetch(API + path, {
        method: method || "GET",
        headers: { Authorization: "Bearer " + key, Accept: "application/json" },
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError(0, "unreachable", "the syncer server cannot be reached (" + e.message + ")");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok || !body || body.success !== true) {
      const err = body && body.error ? body.error
        : { code: "http_" + response.status, message: "HTTP " + response.status + " " + response.statusText };
      throw new ApiError(response.status, err.code, err.message, Number(response.headers.get("X-RateLimit-Reset")));
    }
    return body;
  }

  // --- the key -----------------------------------------------------------------------------

  function takeKeyFromAddress() {
    const match = /(?:^#|&)key=([^&]*)/.exec(location.hash);
    if (!match) return;
    let given = "";
    try {
      given = decodeURIComponent(match[1]).trim();
    } catch (e) {
      given = match[1].trim();
    }
    if (given) sessionStorage.setItem(STORE, given);
    // the key leaves the address bar (and the history) at once
    history.replaceState(null, "", location.pathname + location.search);
  }

  function showLogin(message) {
    key = null;
    stop();
    $("dash").hidden = true;
    $("login").hidden = false;
    $("refresh").hidden = true;
    $("forget").hidden = true;
    $("live").textContent = "not connected";
    $("live").className = "live";
    $("project").textContent = "";
    const error = $("login-error");
    error.textContent = message || "";
    error.hidden = !message;
    $("key-input").focus();
  }

  function showDashboard() {
    $("login").hidden = true;
    $("dash").hidden = false;
    $("refresh").hidden = false;
    $("forget").hidden = false;
    for (const name of Object.keys(seen)) delete seen[name];
    refresh();
  }

  // --- live refresh ------------------------------------------------------------------------

  function stop() {
    clearTimeout(timer);
    timer = null;
  }

  function schedule() {
    stop();
    if (!key || document.hidden) return;
    timer = setTimeout(refresh, Math.max(POLL_MS, pausedUntil - Date.now()));
  }

  const CALLS = {
    status: "/status?drift=true&per_page=100", // the summary, and the drifted rows only
    definitions: "/definitions?per_page=100",
    instances: "/instances?per_page=100",
    deployments: "/deployments?per_page=25",
    servers: "/servers?per_page=100",
    deliveries: "/webhooks/deliveries?per_page=25",
  };

  async function refresh() {
    if (!key) return;
    if (busy) { again = true; return; }
    busy = true;
    again = false;
    stop();
    const live = $("live");
    try {
      const names = Object.keys(CALLS);
      const results = await Promise.allSettled(names.map((n) => api(CALLS[n])));
      const got = {};
      const failed = {};
      names.forEach((n, i) => {
        if (results[i].status === "fulfilled") got[n] = results[i].value;
        else failed[n] = results[i].reason;
      });
      const errors = Object.values(failed);
      if (errors.some((e) => e.status === 401)) {
        sessionStorage.removeItem(STORE);
        showLogin("The server refused this key: " + errors.find((e) => e.status === 401).message);
        return;
      }
      const limited = errors.find((e) => e.status === 429);
      if (limited) {
        pausedUntil = limited.reset ? limited.reset * 1000 : Date.now() + 30000;
        notice("Too many requests with this key: " + limited.message + ". Refresh resumes after the window.", "error");
      }
      render(got, failed);
      const down = errors.length === names.length;
      live.textContent = down ? "offline — " + errors[0].message
        : "live · updated " + new Date().toLocaleTimeString();
      live.className = "live " + (down ? "bad" : errors.length ? "warn" : "good");
    } catch (e) {
      live.textContent = "error: " + e.message;
      live.className = "live bad";
    } finally {
      busy = false;
      if (again && key) refresh(); else schedule();
    }
  }

  function section(name, error, data, draw) {
    const box = $(name);
    const err = box.querySelector(".error");
    if (error) {
      err.textContent = "Could not load: " + error.message + (error.code ? " (" + error.code + ")" : "");
      err.hidden = false;
    } else {
      err.hidden = true;
    }
    if (data === undefined) return;
    const signature = JSON.stringify(data, (k, v) => (k === "uptime_seconds" || k === "checked_at" ? undefined : v));
    if (seen[name] === signature) return;
    seen[name] = signature;
    const body = box.querySelector(".body");
    try {
      body.replaceChildren(draw(data) || empty("Nothing yet."));
    } catch (e) {
      body.replaceChildren(el("p", { class: "error", text: "Could not show this part: " + e.message }));
    }
  }

  function render(got, failed) {
    const status = got.status && got.status.data;
    const instances = got.instances ? got.instances.data : undefined;
    if (status && status.project) $("project").textContent = status.project;
    section("overview", failed.status, status, drawOverview);
    const defs = got.definitions ? { list: got.definitions.data, status, instances } : undefined;
    section("definitions", failed.definitions, defs, drawDefinitions);
    section("instances", failed.instances, instances, drawInstances);
    section("plan", failed.status, status, drawPlan);
    section("deployments", failed.deployments, got.deployments && got.deployments.data, drawDeployments);
    section("servers", failed.servers, got.servers && got.servers.data, drawServers);
    section("deliveries", failed.deliveries, got.deliveries && got.deliveries.data, drawDeliveries);
    refreshOpenLogs(got.deployments && got.deployments.data);
  }

  // --- the sections ------------------------------------------------------------------------

  function drawOverview(s) {
    const apply = s.last_apply;
    const facts = [
      ["Project", s.project || "—"],
      ["Commit", el("span", {}, el("code", { text: short(s.commit) }), " ", s.commit_message || "",
        s.dirty ? badge("uncommitted changes", "warn") : null)],
      ["Drift", s.in_sync === null ? "—" : s.in_sync ? badge("in sync") : badge(s.drifted + " drifted", "bad")],
      ["Last apply", apply ? el("span", {}, badge(apply.status), " ", when(apply.finished_at || apply.started_at),
        " · " + apply.trigger) : "never"],
      ["Last commit seen", seenCommit(s.last_commit_seen)],
    ];
    const out = el("div", {}, el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)])));
    const problems = [s.error && s.error.message, ...(s.validation_error ? [].concat(s.validation_error) : [])]
      .filter(Boolean);
    if (problems.length) {
      out.append(el("div", { class: "problem" }, el("strong", { text: "Problems: " }),
        el("ul", {}, problems.map((p) => el("li", { text: typeof p === "string" ? p : JSON.stringify(p) })))));
    }
    return out;
  }

  function seenCommit(seen) {  // GET /status: {sha, message} (a string from an older syncer)
    if (!seen || typeof seen !== "object") return short(seen);
    return el("span", {}, el("code", { text: short(seen.sha) }), " ", seen.message || "");
  }

  function drawDefinitions({ list, status, instances }) {
    // /status lists the drifted definitions only: any other is in sync once all drifted ones are here
    const drift = new Map(((status && status.definitions) || []).map((d) => [d.name, d]));
    const allDrifted = status && status.in_sync !== null && status.drifted <= (status.definitions || []).length;
    const mine = (name) => (instances || []).filter((i) => i.definition === name);
    return table(["Name", "Template", "Server", "Revision", "Drift", "Health", "Containers"], list, (d) => {
      const row = drift.get(d.name);
      const insts = mine(d.name);
      const running = insts.filter((i) => i.status === "running").length;
      const unhealthy = insts.filter((i) => i.health === "unhealthy").length;
      // N/M: M is as many as it wants (its replicas) even where fewer rows are listed
      const wanted = Math.max(insts.length, d.replicas || 0);
      const health = !insts.length ? badge(d.status === "active" ? "no containers" : d.status, "warn")
        : unhealthy ? badge(unhealthy + " unhealthy", "bad")
          : running === wanted ? badge(insts.some((i) => i.health === "healthy") ? "healthy" : "running")
            : badge(running + "/" + wanted + " running", "warn");
      const removed = d.status === "removed";  // (gone from git, its containers removed: no revision runs)
      const driftCell = removed ? badge("removed", "warn") : !row ? (allDrifted ? badge("in sync") : "—")
        : row.in_sync ? badge("in sync")
        : el("div", {}, badge("drifted", "bad"),
          row.held_until ? el("span", { class: "muted", text: " held until " + row.held_until }) : null,
          el("ul", { class: "reasons" },
          (row.drift || []).map((a) => el("li", { text: typeof a === "string" ? a : JSON.stringify(a) }))));
      const revision = d.current_revision === null || d.current_revision === undefined ? "—" : d.current_revision;
      const count = row ? row.containers : insts.length;
      return [el("strong", { text: d.name }), d.template, d.server, revision + (d.pinned ? " (pinned)" : ""),
        driftCell, health, d.replicas === null || d.replicas === undefined ? String(count) : count + " of " + d.replicas];
    }, (d) => ({ "data-definition": d.name }));
  }

  function drawInstances(list) {
    return table(["Name", "Definition", "Server", "State", "Health", "Up", "Actions"], list, (i) => {
      const state = el("span", {}, badge(i.status), i.held_stopped ? [" ", badge("held stopped", "warn")]
        : i.finished ? [" ", badge("finished")] : null);
      const actions = el("div", { class: "actions" }, ["start", "stop", "restart"].map((action) =>
        el("button", { type: "button", class: "act " + action, "data-action": action, "data-id": i.id,
                       "data-name": i.container_name, text: action[0].toUpperCase() + action.slice(1),
                       disabled: (action === "start" && i.status === "running") ||
                                 (action === "stop" && i.status !== "running"),
                       onclick: () => act(i, action) })));
      return [el("strong", { text: i.container_name }), i.definition, i.server, state, i.health || "—",
        i.status === "running" ? duration(i.uptime_seconds) : "—", actions];
    }, (i) => ({ "data-instance": i.container_name, "data-status": i.status }));
  }

  function drawPlan(s) {
    const out = el("div", {});
    const apply = s.last_apply;
    if (apply) {
      const sum = apply.summary || {};
      out.append(el("p", {}, "Last run ", el("code", { text: apply.id }), " (", apply.trigger, ", commit ",
        el("code", { text: short(apply.commit) }), "): ", badge(apply.status)));
      const counts = Object.entries(sum).filter(([, v]) => v);
      if (counts.length) out.append(el("ul", { class: "counts" }, counts.map(([k, v]) => el("li", {}, el("strong", { text: v }), " " + k))));
    }
    const drifted = (s.definitions || []).filter((d) => !d.in_sync);
    if (s.in_sync === null && !drifted.length) {
      out.append(empty("Drift could not be computed."));
    } else if (!drifted.length) {
      out.append(el("p", { class: "ok", text: "Everything matches git: a plan now has no action." }));
    } else {
      out.append(el("p", { text: "A plan now would do:" }));
      out.append(el("ul", { class: "reasons" }, drifted.map((d) => el("li", {}, el("strong", { text: d.name + ": " }),
        el("ul", {}, (d.drift || []).map((a) => el("li", { text: typeof a === "string" ? a : JSON.stringify(a) })))))));
      if (s.drifted > drifted.length) out.append(el("p", { class: "muted", text: "and " + (s.drifted - drifted.length) + " more drifted definitions" }));
    }
    if (s.checked_at) out.append(el("p", { class: "muted", text: "Checked " + when(s.checked_at) }));
    return out;
  }

  function drawDeployments(list) {
    if (!list.length) return empty("No deployment yet.");
    return el("ol", { class: "timeline" }, list.map((d) => {
      const logBox = el("div", { class: "log", "data-log": d.id, hidden: !openLogs.has(d.id) });
      if (openLogs.has(d.id) && logCache.has(d.id)) logBox.replaceChildren(drawLog(logCache.get(d.id)));
      const toggle = el("button", { type: "button", class: "link", "aria-expanded": String(openLogs.has(d.id)),
                                    text: openLogs.has(d.id) ? "Hide log" : "Show log",
                                    onclick: () => toggleLog(d, logBox, toggle) });
      return el("li", { "data-deployment": d.id, class: "dep " + (d.status || "") },
        el("div", { class: "dep-head" }, badge(d.rolled_back ? "rolled back" : d.status),
          el("strong", { text: d.definition }), el("span", { class: "muted", text: " on " + d.server + " · rev " + d.revision }),
          el("span", { class: "muted when", text: when(d.started_at || d.created_at) })),
        el("div", { class: "dep-meta" }, d.trigger + " · commit ", el("code", { text: short(d.commit) }),
          d.finished_at && d.started_at ? " · took " + duration((new Date(d.finished_at) - new Date(d.started_at)) / 1000) : ""),
        (d.actions && d.actions.length) ? el("ul", { class: "reasons" }, d.actions.map((a) => el("li", { text: a }))) : null,
        d.error ? el("p", { class: "error", text: d.error }) : null,
        toggle, logBox);
    }));
  }

  function drawLog(detail) {
    const lines = detail.logs || [];
    if (!lines.length) return empty("No log lines.");
    return el("pre", {}, lines.map((l) => el("span", { class: "line" },
      el("span", { class: "t", text: when(l.at) + "  " }), (l.line !== undefined ? l.line : JSON.stringify(l)) + "\n")));
  }

  async function loadLog(id, box) {
    try {
      const detail = (await api("/deployments/" + encodeURIComponent(id))).data;
      logCache.set(id, detail);
      box.replaceChildren(drawLog(detail));
    } catch (e) {
      box.replaceChildren(el("p", { class: "error", text: "Could not load the log: " + e.message }));
    }
  }

  function toggleLog(d, box, button) {
    const open = !openLogs.has(d.id);
    if (open) openLogs.add(d.id); else openLogs.delete(d.id);
    box.hidden = !open;
    button.textContent = open ? "Hide log" : "Show log";
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      if (!logCache.has(d.id)) box.replaceChildren(empty("Loading…"));
      loadLog(d.id, box);
    }
  }

  function refreshOpenLogs(list) {
    // an open log of a deployment still running is read again
    for (const d of list || []) {
      if (openLogs.has(d.id) && !FINAL.has(d.status)) {
        const box = document.querySelector('[data-log="' + CSS.escape(d.id) + '"]');
        if (box) loadLog(d.id, box);
      }
    }
  }

  function drawServers(list) {
    return table(["Name", "Reachable", "Engine", "Environment", "Containers", "Swarm nodes"], list, (s) => [
      el("strong", { text: s.name }),
      s.reachable ? badge("reachable") : el("span", {}, badge("unreachable"), s.error ? el("div", { class: "error", text: s.error }) : null),
      s.engine_version ? s.engine_version + (s.api_version ? " (API " + s.api_version + ")" : "") : "—",
      s.environment || "—",
      s.containers ? s.containers.running + " running of " + s.containers.total : "—",
      // a Swarm manager: its nodes, and each one Swarm cannot place tasks on, with why
      s.swarm && s.swarm.error ? el("div", { class: "error", text: s.swarm.error }) :
      s.swarm ? el("span", {}, s.swarm.ready + " ready of " + s.swarm.nodes,
                   ...s.swarm.not_ready.map((n) => el("div", { class: "error", text: n }))) : "—",
    ]);
  }

  function drawDeliveries(list) {
    if (!list.length) return empty("No webhook delivery yet.");
    return table(["Event", "URL", "Status", "Attempts", "Created", "Last error"], list, (w) => [
      el("strong", { text: w.event }), el("code", { class: "url", text: w.url }), badge(w.status),
      Array.isArray(w.attempts) ? w.attempts.length : w.attempts,
      when(w.created_at),
      w.last_error || (w.last_status_code ? "HTTP " + w.last_status_code : "—"),
    ]);
  }

  // --- instance actions --------------------------------------------------------------------

  async function act(instance, action) {
    const buttons = document.querySelectorAll('button.act[data-id="' + CSS.escape(instance.id) + '"]');
    const was = Array.from(buttons, (b) => b.disabled);
    buttons.forEach((b) => { b.disabled = true; });
    notice(action + " of " + instance.container_name + "…", "info");
    try {
      await api("/instances/" + encodeURIComponent(instance.id) + "/" + action, "POST");
      notice(instance.container_name + ": " + action + " done.", "ok");
    } catch (e) {
      if (e.status === 403) {
        notice("Not allowed: this API key may only read — start, stop and restart need a write key. (" + e.message + ")", "error");
      } else {
        notice(instance.container_name + ": " + action + " failed: " + e.message, "error");
      }
    } finally {
      buttons.forEach((b, n) => { b.disabled = was[n]; });
      delete seen.instances;
      refresh();
    }
  }

  // --- start -------------------------------------------------------------------------------

  function start() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const given = $("key-input").value.trim();
      if (!given) return;
      sessionStorage.setItem(STORE, given);
      $("key-input").value = "";
      key = given;
      clearNotice();
      showDashboard();
    });
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(STORE);
      clearNotice();
      showLogin("");
    });
    $("refresh").addEventListener("click", () => { pausedUntil = 0; refresh(); });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) stop();
      else if (key) refresh();
    });
    window.addEventListener("hashchange", () => {
      takeKeyFromAddress();
      const stored = sessionStorage.getItem(STORE);
      if (stored && stored !== key) { key = stored; showDashboard(); }
    });
    takeKeyFromAddress();
    key = sessionStorage.getItem(STORE);
    if (key) showDashboard(); else showLogin("");
  }

  window.addEventListener("error", (event) => notice("The dashboard hit an error: " + event.message, "error"));
  window.addEventListener("unhandledrejection", (event) =>
    notice("The dashboard hit an error: " + (event.reason && event.reason.message ? event.reason.message : event.reason), "error"));

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
