// cronwell dashboard: local times, actions through the JSON API (with the session's
// CSRF token), the job forms, a running execution's live output, and pages that follow
// the event stream. No dependencies.
"use strict";

const TERMINAL = ["completed", "failed", "timeout", "cancelled", "missed", "skipped", "abandoned"];
const FIELD_HEADER = "X-Cronwell-Field";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// Every call the pages make: same-origin, JSON, the CSRF token on each request.
async function callApi(method, url, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  const message = data && (data.detail || data.error || data.message);
  return { ok: response.ok, status: response.status, data, message, field: response.headers.get(FIELD_HEADER) };
}

function flash(text, isError) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = text;
  box.classList.toggle("bad", Boolean(isError));
  box.hidden = false;
}

// -- times: the browser's zone shown, UTC kept in the title -----------------------------
const LOCAL = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
});

function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    el.title = el.textContent;  // the server wrote the UTC time
    el.textContent = LOCAL.format(when);
  }
}

// -- actions ----------------------------------------------------------------------------
const JOBS = "/api/scheduler/jobs/";

async function act(button) {
  const job = button.dataset.job ? encodeURIComponent(button.dataset.job) : null;
  const action = button.dataset.action;
  let result;
  if (action === "run") {
    result = await callApi("POST", JOBS + job + "/run");
    if (result.ok) { location.assign("/ui/executions/" + result.data.execution_id); return; }
  } else if (action === "pause" || action === "resume") {
    result = await callApi("PATCH", JOBS + job + "/" + action);
  } else if (action === "enable" || action === "disable") {
    result = await callApi("PUT", JOBS + job, { is_enabled: action === "enable" });
  } else if (action === "delete") {
    if (!window.confirm('Delete the job "' + button.dataset.name + '"? Its executions stay as history.')) return;
    result = await callApi("DELETE", JOBS + job);
    if (result.ok) { location.assign("/ui/"); return; }
  } else if (action === "create-key") {
    result = await callApi("POST", "/api/users/" + encodeURIComponent(button.dataset.user) + "/keys", { name: "dashboard" });
    if (result.ok) {
      const box = document.getElementById("new-key");
      document.getElementById("new-key-value").textContent = result.data.api_key;
      box.hidden = false;
      box.focus();
      return;
    }
  } else if (action === "revoke-key") {
    const self = button.dataset.self ? " It is the key this session signed in with: you will be signed out." : "";
    if (!window.confirm("Revoke the key " + button.dataset.name + "…? It is refused from the next request on." + self)) return;
    result = await callApi("DELETE", "/api/users/" + encodeURIComponent(button.dataset.user) + "/keys/" + encodeURIComponent(button.dataset.key));
  } else if (action === "delete-user") {
    if (!window.confirm('Delete the user "' + button.dataset.name + '", their jobs, servers and keys?')) return;
    result = await callApi("DELETE", "/api/users/" + encodeURIComponent(button.dataset.user));
  } else if (action === "delete-server") {
    if (!window.confirm('Delete the server "' + button.dataset.name + '"?')) return;
    result = await callApi("DELETE", "/api/servers/" + encodeURIComponent(button.dataset.server));
  } else if (action === "cancel") {
    if (!window.confirm("Cancel this execution?")) return;
    result = await callApi("POST", "/api/scheduler/executions/" + encodeURIComponent(button.dataset.execution) + "/cancel");
  } else {
    return;
  }
  if (result.ok) location.reload();
  else flash(result.message || "The request failed (" + result.status + ")", true);
}

function wireActions(root) {
  for (const button of (root || document).querySelectorAll("button[data-action]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try { await act(button); } finally { button.disabled = false; }
    });
  }
}

// -- a running execution: its output as it is printed (GET .../stream, Server-Sent Events) --
function watchExecution() {
  const watch = document.getElementById("exec-watch");
  if (!watch || typeof EventSource === "undefined") return;
  const out = document.getElementById("exec-live");
  const status = document.getElementById("exec-status");
  const source = new EventSource(watch.dataset.stream, { withCredentials: true });
  source.addEventListener("output", (event) => {
    const data = JSON.parse(event.data);
    if (data.stream === "stderr") {
      const span = document.createElement("span");
      span.className = "err-text";
      span.textContent = data.text;
      out.append(span);
    } else {
      out.append(document.createTextNode(data.text));
    }
    if (status.textContent !== "running") {
      status.textContent = "running";
      status.className = "status st-running";
    }
    out.scrollTop = out.scrollHeight;
  });
  source.addEventListener("end", (event) => {
    source.close();
    const data = JSON.parse(event.data);
    status.textContent = data.status;
    status.className = "status st-" + data.status;
    document.getElementById("exec-live-note").textContent = "Ended: " + data.status + ". Showing its record…";
    setTimeout(() => location.reload(), 300);
  });
}

// -- pages that follow the event stream (GET /api/scheduler/events): on any job or
// execution event the page is read again (at most once a second) and its live regions
// replaced, so the list updates by itself without losing the filters or the focus.
function subscribeToEvents(url) {
  const regions = document.querySelectorAll("[data-live-region]");
  if (!url || !regions.length || typeof EventSource === "undefined") return;
  const source = new EventSource(url, { withCredentials: true });
  let timer = null;
  const refresh = async () => {
    timer = null;
    const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const region of document.querySelectorAll("[data-live-region]")) {
      const replacement = fresh.getElementById(region.id);
      if (!replacement || region.contains(document.activeElement)) continue;
      region.innerHTML = replacement.innerHTML;
      localTimes(region);
      wireActions(region);
    }
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  };
  const onEvent = () => { if (timer === null) timer = setTimeout(refresh, 1000); };
  for (const name of ["job_added", "job_modified", "job_paused", "job_resumed", "job_removed",
    "execution_queued", "execution_running", "execution_completed", "execution_failed",
    "execution_timeout", "execution_cancelled", "execution_missed", "execution_skipped"]) {
    source.addEventListener(name, onEvent);
  }
  source.addEventListener("gap", onEvent);
}

// -- small forms posting to the JSON API (a user, a server) -------------------------------
function wireApiForms() {
  for (const form of document.querySelectorAll("form.api-form")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const top = form.querySelector(".form-error");
      top.hidden = true;
      const body = {};
      for (const el of form.querySelectorAll("[name]")) {
        const text = el.value.trim();
        if (!text) continue;
        body[el.name] = el.dataset.kind === "integer" ? Number(text) : text;
      }
      const result = await callApi(form.dataset.method, form.dataset.url, body);
      if (result.ok) { location.reload(); return; }
      placeError(form, result);
    });
  }
}

// -- the job forms ------------------------------------------------------------------------
function clearErrors(form) {
  for (const p of form.querySelectorAll(".error")) { p.hidden = true; p.textContent = ""; }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function showError(form, field, message) {
  const holder = field ? form.querySelector('[data-field="' + CSS.escape(field) + '"]') : null;
  const p = holder ? holder.querySelector(".error") : document.getElementById(field + "-error");
  if (!p) {
    const top = form.querySelector(".form-error");
    top.textContent = message;
    top.hidden = false;
    top.focus();
    return null;
  }
  p.textContent = message;
  p.hidden = false;
  const input = holder ? holder.querySelector("input, select, textarea") : null;
  if (input) input.setAttribute("aria-invalid", "true");
  return input;
}

// Which field(s) an API error is about: the X-Cronwell-Field header, the class's
// argument a "needs pub_args[0]: recipient" message names, or a list of missing fields.
function placeError(form, result) {
  const message = result.message || "The request failed (" + result.status + ")";
  let fields = [];
  const needs = /needs pub_(?:args\[\d+\]: |kwargs\.)(\w+)/.exec(message);
  if (needs && form.querySelector('[data-field="arg-' + needs[1] + '"]')) fields = ["arg-" + needs[1]];
  else if (result.field) fields = [result.field];
  else {
    const missing = /^Missing required fields?: (.+)$/.exec(message);
    if (missing) fields = missing[1].split(",").map((s) => s.trim());
  }
  let first = null;
  for (const f of fields) {
    const input = showError(form, f, message);
    first = first || input;
  }
  if (!fields.length) showError(form, null, message);
  if (first) first.focus();
}

function value(form, name) {
  const el = form.elements.namedItem(name);
  if (!el) return undefined;
  if (el.type === "checkbox") return el.checked;
  return el.value.trim();
}

function changed(form, name) {
  const el = form.elements.namedItem(name);
  if (!el) return false;
  const now = el.type === "checkbox" ? (el.checked ? "on" : "") : el.value.trim();
  return now !== (el.dataset.initial || "");
}

function lines(text) {
  return text.split("\n").map((s) => s.trim()).filter((s) => s.length);
}

function policyValues(form, body, onlyChanged) {
  for (const el of form.querySelectorAll("details.policy [name]")) {
    if (onlyChanged && !changed(form, el.name)) continue;
    const text = el.value.trim();
    if (!text) continue;
    if (el.dataset.kind === "boolean") body[el.name] = text === "true";
    else if (el.dataset.kind === "integer" || el.dataset.kind === "number") body[el.name] = Number(text);
    else body[el.name] = text;
  }
}

function isoWithOffset(local) {
  if (!local) return "";
  const when = new Date(local);
  if (Number.isNaN(when.getTime())) return local;
  const minutes = -when.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  const pad = (n) => String(n).padStart(2, "0");
  const text = local.length === 16 ? local + ":00" : local;
  return text + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
}

// Arguments of a job class, from the available-jobs metadata: positional ones fill
// pub_args in order, an argument named pub_args takes the rest of the list, keyword
// ones fill pub_kwargs, one named pub_kwargs takes any other keys.
let classes = {};

function argInput(arg, current) {
  const id = "arg-" + arg.name;
  const holder = document.createElement("div");
  holder.className = "field";
  holder.dataset.field = id;
  const label = document.createElement("label");
  label.htmlFor = "in-" + id;
  label.textContent = arg.name + (arg.required ? " *" : "");
  let input;
  const json = arg.type === "array" || arg.type === "object";
  if (json) {
    input = document.createElement("textarea");
    input.rows = 2;
  } else {
    input = document.createElement("input");
    input.type = arg.type === "integer" || arg.type === "number" ? "number" : "text";
  }
  input.id = "in-" + id;
  input.dataset.arg = arg.name;
  input.dataset.type = arg.type;
  input.dataset.source = arg.source;
  if (arg.required) input.setAttribute("aria-required", "true");
  if (arg.default !== null && arg.default !== undefined) {
    input.placeholder = json ? JSON.stringify(arg.default) : String(arg.default);
  }
  if (current !== undefined) input.value = json ? JSON.stringify(current) : String(current);
  const hint = document.createElement("p");
  hint.className = "hint";
  hint.id = id + "-hint";
  hint.textContent = arg.type + (arg.source === "pub_args" ? ", positional" : ", keyword") + (arg.description ? ": " + arg.description : "");
  const error = document.createElement("p");
  error.className = "error";
  error.id = id + "-error";
  error.hidden = true;
  input.setAttribute("aria-describedby", error.id + " " + hint.id);
  holder.append(label, input, hint, error);
  return holder;
}

function renderArgs(form, classString, initial) {
  const box = document.getElementById("class-args");
  const hint = document.getElementById("job_class_string-hint");
  const meta = classes[classString];
  box.querySelectorAll(".field, p").forEach((el) => el.remove());
  hint.textContent = meta ? meta.description : "";
  if (!meta) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "Choose a job class to see its arguments.";
    box.append(p);
    return;
  }
  if (!meta.arguments.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "This job class takes no arguments.";
    box.append(p);
  }
  const args = (initial && initial.pub_args) || [];
  const kwargs = Object.assign({}, (initial && initial.pub_kwargs) || {});
  const positional = meta.arguments.filter((a) => a.source === "pub_args" && a.name !== "pub_args");
  for (const arg of meta.arguments) {
    let current;
    if (initial) {
      if (arg.source === "pub_args") {
        current = arg.name === "pub_args" ? args.slice(positional.length) : args[positional.indexOf(arg)];
        if (arg.name === "pub_args" && !current.length) current = undefined;
      } else if (arg.name !== "pub_kwargs") {
        current = kwargs[arg.name];
        delete kwargs[arg.name];
      }
    }
    box.append(argInput(arg, current));
  }
  const rest = box.querySelector('[data-arg="pub_kwargs"]');
  if (initial && rest && Object.keys(kwargs).length) rest.value = JSON.stringify(kwargs);
}

function collectArgs(form) {
  const pubArgs = [];
  const pubKwargs = {};
  let rest = [];
  let extra = {};
  let bad = false;
  for (const input of form.querySelectorAll("#class-args [data-arg]")) {
    const text = input.value.trim();
    if (!text) continue;
    let v = text;
    if (input.dataset.type === "array" || input.dataset.type === "object") {
      try {
        v = JSON.parse(text);
      } catch (_) {
        showError(form, "arg-" + input.dataset.arg, input.dataset.arg + " is not valid JSON");
        bad = true;
        continue;
      }
    } else if (input.dataset.type === "integer" || input.dataset.type === "number") {
      v = Number(text);
    }
    if (input.dataset.arg === "pub_args") rest = v;
    else if (input.dataset.arg === "pub_kwargs") extra = v;
    else if (input.dataset.source === "pub_args") pubArgs.push(v);
    else pubKwargs[input.dataset.arg] = v;
  }
  return { bad, pubArgs: Array.isArray(rest) ? pubArgs.concat(rest) : rest, pubKwargs: Object.assign({}, extra, pubKwargs) };
}

async function loadClasses(form) {
  const select = form.elements.namedItem("job_class_string");
  const result = await callApi("GET", "/api/scheduler/available-jobs");
  if (!result.ok) { showError(form, "job_class_string", result.message || "Could not read the available jobs"); return; }
  select.innerHTML = "";
  const none = new Option("choose a job class", "");
  select.add(none);
  for (const job of result.data.jobs) {
    classes[job.class_string] = job;
    select.add(new Option(job.name + " (" + job.class_string + ")", job.class_string));
  }
  const initial = select.dataset.initial;
  const dataEl = document.getElementById("job-data");
  const jobData = dataEl ? JSON.parse(dataEl.textContent) : null;
  if (initial) {
    if (!classes[initial]) select.add(new Option(initial, initial));
    select.value = initial;
  }
  renderArgs(form, select.value, jobData);
  select.addEventListener("change", () => renderArgs(form, select.value, null));
}

function classBody(form, editing) {
  const body = {};
  const args = collectArgs(form);
  if (args.bad) return null;
  // one kind of schedule: a cron line or an interval, when given, instead of the fields
  const other = ["cron", "interval_seconds"].filter((n) => value(form, n) && (!editing || changed(form, n)));
  const fields = ["minute", "hour", "day_of_month", "month", "day_of_week", "week"];
  for (const name of ["user_id", "job_class_string", "name", ...(other.length ? [] : fields), "timezone", ...other]) {
    const v = value(form, name);
    if (v && (!editing || changed(form, name))) body[name] = name === "interval_seconds" ? Number(v) : v;
  }
  if (!editing || changed(form, "description")) {
    const d = value(form, "description");
    if (d || editing) body.description = d;
  }
  if (!editing || changed(form, "is_enabled")) body.is_enabled = value(form, "is_enabled");
  body.pub_args = args.pubArgs;
  body.pub_kwargs = args.pubKwargs;
  policyValues(form, body, editing);
  return body;
}

async function submitJob(form) {
  clearErrors(form);
  document.getElementById("form-error").hidden = true;
  const mode = form.dataset.mode;
  const job = form.dataset.job ? encodeURIComponent(form.dataset.job) : "";
  let result;
  if (mode === "create-script") {
    const body = {
      job_id: value(form, "job_id"),
      job_type: value(form, "job_type"),
      script_path: value(form, "script_path"),
      run_date: isoWithOffset(value(form, "run_date")),
      args: lines(form.elements.namedItem("args").value),
      replace_existing: value(form, "replace_existing"),
    };
    for (const k of ["job_id", "script_path", "run_date"]) if (!body[k]) delete body[k];
    result = await callApi("POST", "/api/schedule-job", body);
    if (result.ok) { location.assign("/ui/jobs/" + encodeURIComponent(result.data.job.job_id)); return; }
  } else if (mode === "edit-script") {
    const body = {};
    if (changed(form, "name")) body.name = value(form, "name");
    if (changed(form, "description")) body.description = value(form, "description");
    if (changed(form, "pub_args")) body.pub_args = lines(form.elements.namedItem("pub_args").value);
    policyValues(form, body, true);
    if (!Object.keys(body).length) { showError(form, null, "Nothing changed."); return; }
    result = await callApi("PUT", JOBS + job, body);
    if (result.ok) { location.assign("/ui/jobs/" + job); return; }
  } else {
    const editing = mode === "edit-class";
    const body = classBody(form, editing);
    if (body === null) return;
    result = await callApi(editing ? "PUT" : "POST", editing ? JOBS + job : "/api/scheduler/jobs", body);
    if (result.ok) { location.assign("/ui/jobs/" + encodeURIComponent(editing ? form.dataset.job : result.data.job_id)); return; }
  }
  placeError(form, result);
}

function wireForm() {
  const form = document.getElementById("job-form");
  if (!form) return;
  if (form.dataset.mode.endsWith("class")) loadClasses(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitJob(form);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  wireActions(document);
  wireForm();
  wireApiForms();
  watchExecution();
  subscribeToEvents(document.body.dataset.eventsUrl);
});
