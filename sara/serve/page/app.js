// sara serve web page: no dependencies, no external assets.  Talks to the JSON API of the same origin;
// with a server token, every request (audio and images included) carries it, so media are fetched as blobs.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
let token = sessionStorage.getItem("sara-token") || "";

function authHeaders(extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
  if (response.status === 401) $("#token-box").hidden = false;
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

async function blobUrl(path) {
  return URL.createObjectURL(await (await api(path)).blob());
}

async function loadModels() {
  const data = await (await api("/v1/models")).json();
  const select = $("#model");
  select.replaceChildren(...data.models.map((m) => new Option(m.name, m.name, m.default, m.default)));
  select.onchange = () => showDefaults(data.models.find((m) => m.name === select.value));
  showDefaults(data.models.find((m) => m.default));
}

function showDefaults(model) {
  const d = (model && model.defaults) || {};
  for (const name of ["duration", "steps", "guidance"]) {
    $(`#${name}`).placeholder = d[name] == null ? "default" : String(d[name]);
  }
}

function formBody() {
  const body = { prompt: $("#prompt").value, model: $("#model").value || null, format: $("#format").value };
  const negative = $("#negative_prompt").value;
  if (negative.trim()) body.negative_prompt = negative;
  for (const [name, parse] of [["duration", Number], ["steps", Number], ["guidance", Number], ["seed", Number]]) {
    const text = $(`#${name}`).value.trim();
    if (text !== "") body[name] = parse(text);
  }
  return body;
}

function newCard(title, settings) {
  const card = $("#result-template").content.firstElementChild.cloneNode(true);
  $(".title", card).textContent = title;
  $(".settings", card).textContent = settings;
  $(".status", card).textContent = "queued";
  $(".remove", card).onclick = () => { card.remove(); $("#empty").hidden = $("#results").children.length > 0; };
  $("#results").prepend(card);
  $("#empty").hidden = true;
  return card;
}

function describe(params) {
  return ["duration", "steps", "guidance", "seed"].filter((k) => params[k] != null)
    .map((k) => `${k} ${params[k]}`).join(" · ");
}

function update(card, job) {
  $(".bar", card).style.width = `${Math.round(100 * (job.state === "done" ? 1 : job.progress))}%`;
  const text = { queued: "queued", running: `running ${Math.round(100 * job.progress)}%`,
                 failed: `failed: ${job.error}`, cancelled: "cancelled", done: "done" }[job.state];
  $(".status", card).textContent = text;
  card.className = `result ${job.state}`;
  if (job.params) $(".settings", card).textContent = describe(job.params);
}

// Server-sent events read through fetch (EventSource cannot send the Authorization header).
async function follow(id, card) {
  const response = await api(`/v1/jobs/${id}/events`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", job = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, end).split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
      buffer = buffer.slice(end + 2);
      if (data.length) { job = JSON.parse(data.join("\n")); update(card, job); }
    }
  }
  return job || (await (await api(`/v1/jobs/${id}`)).json());
}

async function showResult(card, job) {
  const audioUrl = await blobUrl(job.result.audio_url);
  const audio = $("audio", card);
  audio.dataset.jobId = job.id;
  audio.dataset.serverUrl = job.result.audio_url;
  audio.src = audioUrl;
  const link = $(".download", card);
  link.href = audioUrl;
  link.download = `sara-${job.id}.${job.result.format}`;
  link.textContent = `Download ${job.result.format.toUpperCase()} (${job.result.duration_s.toFixed(2)} s)`;
  $(".output", card).hidden = false;
  $(".spectrogram", card).src = await blobUrl(job.result.spectrogram_url);
}

async function run(card, submit) {
  try {
    const accepted = await (await submit()).json();
    card.dataset.jobId = accepted.id;
    const job = await follow(accepted.id, card);
    update(card, job);
    if (job.state === "done") await showResult(card, job);
  } catch (err) {
    update(card, { state: "failed", error: err.message, progress: 0 });
  }
}

async function onGenerate(event) {
  event.preventDefault();
  $("#form-error").hidden = true;
  const body = formBody();
  if (!body.prompt.trim()) { showError("type a prompt first"); return; }
  const button = $("#generate");
  button.disabled = true;
  const card = newCard(body.prompt, describe(body));
  const submit = () => api("/v1/generate", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(body) });
  setTimeout(() => { button.disabled = false; }, 300);  // allow queueing several prompts
  await run(card, submit);
}

// Audio-to-audio: the operation's own fields, plus the prompt and settings of the generate form.
const OPERATION_FIELDS = { reconstruct: [], edit: ["strength"], inpaint: ["start", "end"], extend: ["seconds", "before"] };
const BUTTON_LABELS = { reconstruct: "Reconstruct", edit: "Edit", inpaint: "Inpaint", extend: "Extend" };

function showOperation() {
  const op = $("#operation").value;
  for (const box of document.querySelectorAll("[data-op]")) box.hidden = box.dataset.op !== op;
  $("#run-audio").textContent = BUTTON_LABELS[op];
}

function audioQuery(op) {
  const body = formBody();
  const query = new URLSearchParams({ format: body.format });
  if (body.model) query.set("model", body.model);
  if (body.seed != null) query.set("seed", body.seed);
  if (op === "reconstruct") return query;
  for (const name of ["steps", "guidance", "negative_prompt"]) if (body[name] != null) query.set(name, body[name]);
  if (body.prompt.trim()) query.set("prompt", body.prompt);
  for (const name of OPERATION_FIELDS[op]) query.set(name, $(`#${name}`).value);
  return query;
}

async function onAudio(event) {
  event.preventDefault();
  $("#form-error").hidden = true;
  const file = $("#upload").files[0], op = $("#operation").value;
  if (!file) { showError(`choose an audio file to ${op}`); return; }
  if ((op === "edit" || op === "inpaint") && !$("#prompt").value.trim()) { showError(`type a prompt to ${op} with`); return; }
  const query = audioQuery(op);
  const title = query.get("prompt") ? `${op}: ${file.name} · ${query.get("prompt")}` : `${op}: ${file.name}`;
  const card = newCard(title, "");
  await run(card, () => api(`/v1/${op}?${query}`, { method: "POST", body: file,
                                                   headers: { "Content-Type": "application/octet-stream" } }));
}

function showError(message) {
  const box = $("#form-error");
  box.textContent = message;
  box.hidden = false;
}

function onToken() {
  token = $("#token").value.trim();
  sessionStorage.setItem("sara-token", token);
  $("#token-box").hidden = true;
  loadModels().catch((err) => showError(err.message));
}

document.addEventListener("DOMContentLoaded", () => {
  $("#generate-form").addEventListener("submit", onGenerate);
  $("#audio-form").addEventListener("submit", onAudio);
  $("#operation").addEventListener("change", showOperation);
  showOperation();
  $("#token-save").addEventListener("click", onToken);
  loadModels().catch((err) => showError(err.message));
});
