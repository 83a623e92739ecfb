// The pyconvex dashboard: plain JavaScript over the admin routes
// (/api/admin/*, /api/dashboard/*), every request with the admin key.
"use strict";

const KEY = "pyconvex-admin-key";
let page = 0; // bumps on every page change: a stale long-poll stops

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const show = (value) => JSON.stringify(value);
const pretty = (value) => JSON.stringify(value, null, 2);

function key() {
  return sessionStorage.getItem(KEY);
}

async function api(method, path, body, identity) {
  let auth = "Convex " + key();
  // base64 of the identity's UTF-8 JSON: btoa alone takes Latin-1 text only.
  if (identity) auth += ":" + btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(identity))));
  const answer = await fetch(path, {
    method,
    headers: { Authorization: auth, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await answer.json().catch(() => ({}));
  if (answer.status === 401) {
    logout("The admin key was refused.");
    throw new Error("the admin key was refused");
  }
  if (!answer.ok) throw new Error((data.code ? data.code + ": " : "") + (data.message || answer.status));
  return data;
}

function logout(message) {
  sessionStorage.removeItem(KEY);
  document.getElementById("app").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

function main(...children) {
  const el = document.getElementById("page");
  el.replaceChildren(...children);
  return el;
}

function failure(e) {
  return h("p", { class: "error" }, String(e.message || e));
}

// ---- validators (Convex's validator JSON) as short types --------------------
function typeOf(v) {
  if (!v) return "any";
  switch (v.type) {
    case "id": return `Id<"${v.tableName}">`;
    case "literal": return show(v.value);
    case "array": return `${typeOf(v.value)}[]`;
    case "record": return `Record<${typeOf(v.keys)}, ${typeOf(v.values)}>`;
    case "union": return v.value.map(typeOf).join(" | ");
    case "object":
      return "{ " + Object.entries(v.value)
        .map(([k, f]) => `${k}${f.optional ? "?" : ""}: ${typeOf(f.fieldType)}`).join("; ") + " }";
    default: return v.type;
  }
}

// ---- Data ---------------------------------------------------------------------
async function dataPage(selected) {
  const { tables, system } = await api("GET", "/api/dashboard/tables");
  const names = [...tables.map((t) => t.name), ...system];
  const current = selected || names[0];
  const list = h("div", { class: "list" },
    names.map((n) => h("button", { class: n === current ? "active" : "", "data-table": n,
      onclick: () => dataPage(n) }, n)));
  const body = h("div", { style: "flex:1" });
  main(h("h2", {}, "Data"), h("div", { class: "split" }, list, body));
  if (current) await documentsView(body, current);
}

async function documentsView(body, table) {
  const cursors = [null];
  let filter = {};
  const status = h("p", { class: "error" });
  const filterInput = h("input", { type: "text", id: "filter", placeholder: 'field = "value"  (JSON)' });
  const grid = h("div");
  const pager = h("div", { class: "row" });

  async function load(index) {
    status.textContent = "";
    let result;
    try {
      result = await api("POST", "/api/dashboard/documents",
        { table, numItems: 25, cursor: cursors[index], filter });
    } catch (e) {
      status.textContent = e.message;
      return;
    }
    cursors[index + 1] = result.done ? undefined : result.cursor;
    grid.replaceChildren(documentsTable(table, result.documents, () => load(index), status));
    pager.replaceChildren(
      h("button", { disabled: index === 0, onclick: () => load(index - 1) }, "Newer"),
      h("span", { class: "muted" }, `page ${index + 1}, ${result.documents.length} documents`),
      h("button", { id: "next-page", disabled: result.done, onclick: () => load(index + 1) }, "Older"),
    );
  }

  function applyFilter() {
    const text = filterInput.value.trim();
    filter = {};
    if (text) {
      const at = text.indexOf("=");
      try {
        if (at < 1) throw new Error('write a filter as field = JSON value, e.g. author = "ann"');
        filter[text.slice(0, at).trim()] = JSON.parse(text.slice(at + 1));
      } catch (e) {
        status.textContent = e.message;
        return;
      }
    }
    cursors.length = 1;
    load(0);
  }

  body.replaceChildren(
    h("div", { class: "row" }, h("strong", {}, table), filterInput,
      h("button", { id: "apply-filter", onclick: applyFilter }, "Filter")),
    status, grid, pager);
  await load(0);
}

function documentsTable(table, docs, reload, status) {
  if (!docs.length) return h("p", { class: "muted" }, "No documents.");
  const fields = [...new Set(docs.flatMap((d) => Object.keys(d)))]
    .sort((a, b) => (a.startsWith("_") ? -1 : 0) - (b.startsWith("_") ? -1 : 0) || a.localeCompare(b));
  return h("table", { id: "documents" },
    h("tr", {}, fields.map((f) => h("th", {}, f)), h("th", {}, "")),
    docs.map((doc) => h("tr", { "data-id": doc._id },
      fields.map((f) => h("td", { class: "mono" }, f in doc ? show(doc[f]) : "")),
      h("td", {},
        h("button", { class: "edit", onclick: (ev) => editRow(ev.target.closest("tr"), doc, reload, status) }, "Edit"),
        " ",
        h("button", { class: "delete", onclick: async (ev) => {
          if (ev.target.textContent !== "Confirm") { ev.target.textContent = "Confirm"; return; }
          try { await api("POST", "/api/dashboard/documents/delete", { ids: [doc._id] }); reload(); }
          catch (e) { status.textContent = e.message; }
        } }, "Delete")))));
}

function editRow(row, doc, reload, status) {
  const fields = Object.fromEntries(Object.entries(doc).filter(([k]) => !k.startsWith("_")));
  const editor = h("textarea", { class: "editor" }, pretty(fields));
  const error = h("p", { class: "error edit-error" });
  const save = h("button", { class: "save", onclick: async () => {
    error.textContent = "";
    let value;
    try { value = JSON.parse(editor.value); } catch (e) { error.textContent = e.message; return; }
    try {
      await api("POST", "/api/dashboard/documents/update", { id: doc._id, fields: value });
      reload();
    } catch (e) { error.textContent = e.message; }
  } }, "Save");
  const cell = h("td", { colspan: row.children.length }, editor, h("div", { class: "row" }, save,
    h("button", { onclick: reload }, "Cancel")), error);
  row.replaceChildren(cell);
  status.textContent = "";
}

// ---- Functions ----------------------------------------------------------------
async function functionsPage() {
  const { functions, http } = await api("GET", "/api/admin/functions");
  const out = h("div", { class: "panel", id: "run-panel" }, h("p", { class: "muted" }, "Pick a function to run it."));
  main(h("h2", {}, "Functions"),
    h("table", { id: "functions" },
      h("tr", {}, h("th", {}, "function"), h("th", {}, "kind"), h("th", {}, "arguments"), h("th", {}, "returns"), h("th", {}, "")),
      functions.map((f) => h("tr", { "data-path": f.path },
        h("td", {}, f.path, f.visibility === "internal" ? h("span", { class: "muted" }, " (internal)") : ""),
        h("td", {}, f.kind), h("td", { class: "mono" }, typeOf(f.args)), h("td", { class: "mono" }, typeOf(f.returns)),
        h("td", {}, h("button", { class: "run", onclick: () => runForm(out, f) }, "Run"))))),
    http.length ? h("p", { class: "muted" }, "HTTP routes: " + http.map((r) => `${r.method} ${r.path}`).join(", ")) : "",
    out);
}

function runForm(out, f) {
  const args = h("textarea", { id: "run-args" }, "{}");
  const identity = h("input", { type: "text", id: "run-identity", placeholder: '{"subject": "user-1", "issuer": "https://..."} (optional)' });
  const result = h("pre", { id: "run-result" });
  out.replaceChildren(
    h("h3", {}, `Run ${f.path} (${f.kind})`), h("p", { class: "muted mono" }, "arguments: " + typeOf(f.args)),
    args, h("div", { class: "row" }, h("label", {}, "Act as user: ", identity),
      h("button", { id: "run-go", onclick: async () => {
        result.className = "";
        let body, who;
        try {
          body = JSON.parse(args.value);
          who = identity.value.trim() ? JSON.parse(identity.value) : undefined;
          // The server takes an identity with both (else it reads the header as a wrong key).
          if (who !== undefined && (typeof who?.subject !== "string" || typeof who?.issuer !== "string"))
            throw new Error('act as a user: the identity needs "subject" and "issuer" strings');
        } catch (e) { result.className = "error"; result.textContent = e.message; return; }
        try {
          const answer = await api("POST", "/api/function", { path: f.path, args: body, format: "json" }, who);
          const lines = (answer.logLines || []).join("\n");
          if (answer.status === "success") { result.className = "ok"; result.textContent = pretty(answer.value) + (lines ? "\n\n" + lines : ""); }
          else { result.className = "error"; result.textContent = answer.errorMessage + (lines ? "\n\n" + lines : ""); }
        } catch (e) { result.className = "error"; result.textContent = e.message; }
      } }, "Run")), result);
}

// ---- Logs ---------------------------------------------------------------------
async function logsPage() {
  const mine = page;
  const lines = h("div", { id: "log-lines" });
  main(h("h2", {}, "Logs"), h("p", { class: "muted" }, "Every call as it happens (the last 100 first)."), lines);
  const add = (entries) => {
    for (const e of entries) {
      const when = new Date(e.ts).toLocaleTimeString();
      const text = `${when} ${e.kind[0].toUpperCase()} ${e.path}  ${e.durationMs.toFixed(1)} ms  ` +
        (e.ok ? "ok" : `error [Request ID: ${e.requestId}] ${e.error}`) +
        e.logLines.map((l) => "\n    " + l).join("");
      lines.append(h("div", { class: e.ok ? "log-line" : "log-line failed" }, text));
    }
    lines.scrollTop = lines.scrollHeight;
  };
  let next;
  try {
    const first = await api("GET", "/api/admin/logs");
    add(first.entries);
    next = first.next;
  } catch (e) { lines.append(failure(e)); return; }
  while (mine === page) {
    try {
      const more = await api("GET", `/api/admin/logs?after=${next}&wait=20`);
      if (mine !== page) return;
      add(more.entries);
      next = more.next;
    } catch (e) {
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

// ---- Files --------------------------------------------------------------------
async function filesPage() {
  const { files, enabled } = await api("GET", "/api/dashboard/files");
  if (!enabled) return main(h("h2", {}, "Files"), h("p", {}, "This backend has no file storage."));
  main(h("h2", {}, "Files"), files.length ? h("table", { id: "files" },
    h("tr", {}, ["id", "size", "content type", "sha256", ""].map((t) => h("th", {}, t))),
    files.map((f) => h("tr", {},
      h("td", { class: "mono" }, f.url ? h("a", { href: f.url, target: "_blank" }, f._id) : f._id),
      h("td", {}, show(f.size)), h("td", {}, f.contentType || ""), h("td", { class: "mono" }, f.sha256 || ""),
      h("td", {}, h("button", { onclick: async () => {
        await api("POST", "/api/dashboard/files/delete", { id: f._id }); filesPage();
      } }, "Delete"))))) : h("p", { class: "muted" }, "No files."));
}

// ---- Schedules ----------------------------------------------------------------
async function schedulesPage() {
  const [{ jobs }, { crons }] = await Promise.all([
    api("GET", "/api/dashboard/scheduled"), api("GET", "/api/dashboard/crons")]);
  const pending = (j) => j.state && (j.state.kind === "pending" || j.state.kind === "inProgress");
  main(h("h2", {}, "Scheduled functions"),
    jobs.length ? h("table", { id: "jobs" },
      h("tr", {}, ["function", "scheduled for", "state", "arguments", ""].map((t) => h("th", {}, t))),
      jobs.map((j) => h("tr", { "data-id": j._id },
        h("td", {}, j.name), h("td", {}, new Date(j.scheduledTime).toLocaleString()),
        h("td", { class: "state" }, j.state ? j.state.kind : ""), h("td", { class: "mono" }, show(j.args)),
        h("td", {}, pending(j) ? h("button", { class: "cancel", onclick: async () => {
          await api("POST", "/api/dashboard/scheduled/cancel", { id: j._id }); schedulesPage();
        } }, "Cancel") : "")))) : h("p", { class: "muted" }, "None."),
    h("h2", { style: "margin-top:20px" }, "Cron jobs"),
    crons.length ? h("table", { id: "crons" },
      h("tr", {}, ["name", "schedule", "function", "arguments"].map((t) => h("th", {}, t))),
      crons.map((c) => h("tr", {}, h("td", {}, c.name), h("td", {}, c.schedule), h("td", {}, c.function),
        h("td", { class: "mono" }, show(c.args))))) : h("p", { class: "muted" }, "None (functions/crons.py defines them)."));
}

// ---- Schema -------------------------------------------------------------------
async function schemaPage() {
  const { tables } = await api("GET", "/api/dashboard/tables");
  main(h("h2", {}, "Schema and indexes"),
    tables.map((t) => h("div", { class: "panel" }, h("h3", {}, t.name),
      h("p", { class: "mono" }, t.validator ? typeOf(t.validator) : "no schema: any document"),
      Object.keys(t.indexes).length ? h("p", {}, "Indexes: ",
        Object.entries(t.indexes).map(([n, f]) => `${n} (${f.join(", ")})`).join("; ")) : "",
      Object.keys(t.searchIndexes).length ? h("p", {}, "Search indexes: ",
        Object.entries(t.searchIndexes).map(([n, s]) => `${n} (${s.searchField}; filters ${s.filterFields.join(", ") || "none"})`).join("; ")) : "")),
    h("p", { class: "muted" }, "Indexes are built when the schema is pushed (the dev server does it on reload); build progress shows in the logs."));
}

// ---- Environment --------------------------------------------------------------
async function environmentPage() {
  const { variables } = await api("GET", "/api/admin/env");
  const name = h("input", { type: "text", id: "env-name", placeholder: "NAME" });
  const value = h("input", { type: "text", id: "env-value", placeholder: "value" });
  const error = h("p", { class: "error" });
  const change = async (changes) => {
    try { await api("POST", "/api/admin/env", { changes }); environmentPage(); }
    catch (e) { error.textContent = e.message; }
  };
  main(h("h2", {}, "Environment variables"),
    h("table", { id: "env" }, Object.entries(variables).sort().map(([k, v]) => h("tr", {},
      h("td", { class: "mono" }, k), h("td", { class: "mono" }, v),
      h("td", {}, h("button", { onclick: () => change({ [k]: null }) }, "Remove"))))),
    h("div", { class: "row", style: "margin-top:10px" }, name, value,
      h("button", { id: "env-set", onclick: () => change({ [name.value]: value.value }) }, "Set")),
    error);
}

// ---- navigation -----------------------------------------------------------------
const PAGES = { data: dataPage, functions: functionsPage, logs: logsPage, files: filesPage,
  schedules: schedulesPage, schema: schemaPage, environment: environmentPage };

async function route() {
  page += 1;
  const name = (location.hash.slice(1) || "data").split("/")[0];
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name);
  try { await (PAGES[name] || dataPage)(); } catch (e) { if (key()) main(failure(e)); }
}

function enter() {
  if (!key()) return logout("");
  document.getElementById("login").hidden = true;
  document.getElementById("app").hidden = false;
  route();
}

function start() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("key")) { // from `python -m runtime dashboard --with-key`: kept, then dropped from the URL
    sessionStorage.setItem(KEY, hash.get("key"));
    history.replaceState(null, "", location.pathname + "#data");
  }
  document.getElementById("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById("login-key").value.trim());
    enter();
  });
  document.getElementById("logout").onclick = () => logout("");
  window.onhashchange = route;
  enter();
}

start();
