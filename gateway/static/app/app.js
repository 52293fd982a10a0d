// The jetscribe web page: upload files, follow them live, browse jobs, read and play transcripts.
// Plain JavaScript modules served by the gateway; the API is the only thing it talks to.

import { ApiError, apiKey, download, follow, getJson, onKeyNeeded, request, upload } from "./api.js";
import { buildOptions } from "./options.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 20;
const LIST_REFRESH_MS = 4000;
const HEALTH_REFRESH_MS = 10000;
const FORMATS = ["txt", "srt", "vtt", "json"];
const ENDED = new Set(["done", "failed", "cancelled"]);

// Audio uploaded from this page, by job id: what the job view's player plays (the gateway keeps no copy to play).
const localAudio = new Map();
let addOptions = () => {};

// ---- small DOM helpers -------------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// Seconds as h:mm:ss.s, or m:ss.s under an hour.
function clock(seconds) {
  const tenths = Math.round(Math.max(0, seconds) * 10);
  const h = Math.floor(tenths / 36000);
  const m = Math.floor((tenths % 36000) / 600);
  const s = ((tenths % 600) / 10).toFixed(1).padStart(4, "0");
  return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${s}`;
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB"];
  let unit = 0;
  while (n >= 1000 && unit < units.length - 1) {
    n /= 1000;
    unit++;
  }
  return `${n.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// ---- notices -----------------------------------------------------------------------------------------------

function notify(message, kind = "error", key = null) {
  if (key && document.querySelector(`[data-notice="${key}"]`)) return;
  const close = el("button", { type: "button", className: "quiet", textContent: "×", title: "Dismiss" });
  const notice = el("div", { className: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, el("span", { textContent: message }), close);
  if (key) notice.dataset.notice = key;
  close.onclick = () => notice.remove();
  $("notices").append(notice);
}

function clearNotice(key) {
  document.querySelector(`[data-notice="${key}"]`)?.remove();
}

// What an API error means for a person; the gateway's own message says what to do about it.
function explain(error) {
  if (!(error instanceof ApiError)) return String(error.message || error);
  if (error.status === 429) return `The queue is full: ${error.message}`;
  if (error.status === 413) return `The file is too large: ${error.message}`;
  return error.message;
}

// ---- API key -----------------------------------------------------------------------------------------------

function askForKey(reason) {
  const dialog = $("key-dialog");
  $("key-reason").textContent = reason ? `This jetscribe needs an API key: ${reason}` : "API key for this jetscribe.";
  $("key-input").value = apiKey.get();
  return new Promise((resolve, reject) => {
    dialog.onclose = () => {
      const choice = dialog.returnValue;
      if (choice === "save" && $("key-input").value.trim()) {
        apiKey.set($("key-input").value.trim());
        resolve();
      } else {
        if (choice === "forget") apiKey.set("");
        reject(new ApiError(401, "no API key given: the page cannot reach the API without one"));
      }
    };
    dialog.showModal();
  });
}

// ---- health ------------------------------------------------------------------------------------------------

async function refreshHealth() {
  const pill = $("health");
  try {
    const health = await getJson("/health", { accept: [503] });
    if (!health.workers) {
      // Without a valid API key /health says only whether the service is up; the detail needs the key.
      pill.textContent = health.status === "ok" ? "up" : health.status;
      pill.className = `pill ${health.status === "ok" ? "ok" : "warn"}`;
      clearNotice("unreachable");
      return;
    }
    const workers = health.workers.length;
    const queued = health.queue ? health.queue.pending : 0;
    pill.textContent = `${workers} worker${workers === 1 ? "" : "s"} · ${queued} waiting`;
    pill.className = `pill ${health.status === "ok" ? "ok" : "warn"}`;
    if (workers === 0) {
      notify("No worker is running: jobs wait in the queue until one starts.", "warn", "no-worker");
    } else clearNotice("no-worker");
    if (!health.nats_connected) notify(`The service is unavailable: ${health.problems.join("; ")}`, "error", "nats");
    else clearNotice("nats");
  } catch (error) {
    pill.textContent = "unreachable";
    pill.className = "pill bad";
    notify(explain(error), "error", "unreachable");
    return;
  }
  clearNotice("unreachable");
}

// ---- uploads -----------------------------------------------------------------------------------------------

function uploadCard(title, detail) {
  const status = el("span", { className: "status", textContent: "waiting" });
  const bar = el("progress", { max: 100, value: 0 });
  const message = el("p", { className: "error", hidden: true });
  const result = el("div", { className: "result" });
  const heading = el("div", { className: "row" }, el("strong", { className: "name", textContent: title }), el("span", { className: "grow" }), status);
  const card = el("li", { className: "card upload" }, heading, el("div", { className: "muted", textContent: detail }), bar, message, result);
  card.dataset.name = title;
  $("uploads").prepend(card);
  return { card, status, bar, message, result };
}

function setStage(view, stage, percent = null) {
  view.status.textContent = stage;
  view.status.dataset.status = stage;
  view.card.dataset.stage = stage;
  if (percent !== null) view.bar.value = percent;
}

// Refusals that may pass a moment later: no answer, a full queue, a busy or restarting gateway.
const RETRYABLE = new Set([0, 429, 502, 503, 504]);

function showFailure(view, text, retry) {
  view.message.hidden = false;
  view.message.textContent = text;
  if (retry) {
    const again = el("button", { type: "button", textContent: "Try again" });
    again.onclick = () => {
      view.message.hidden = true;
      again.remove();
      retry();
    };
    view.message.append(" ", again);
  }
}

function options() {
  const form = new FormData();
  addOptions(form);
  return form;
}

async function submitFile(file, view = uploadCard(file.name, bytes(file.size))) {
  const form = options();
  form.append("audio", file, file.name);
  setStage(view, "uploading", 0);
  let jobId;
  try {
    jobId = await upload(form, (sent, total) => setStage(view, "uploading", Math.round((100 * sent) / total)));
  } catch (error) {
    setStage(view, error.status === 429 ? "queue full" : "refused");
    return showFailure(view, explain(error), RETRYABLE.has(error.status) && (() => submitFile(file, view)));
  }
  localAudio.set(jobId, URL.createObjectURL(file));
  await followUpload(jobId, view);
}

async function submitUrl(url, view = uploadCard(url, "from the web")) {
  const form = options();
  form.append("audio_url", url);
  setStage(view, "sending");
  let jobId;
  try {
    jobId = await getJson("/jobs", { method: "POST", body: form }).then((body) => body.job_id);
  } catch (error) {
    setStage(view, error.status === 429 ? "queue full" : "refused");
    return showFailure(view, explain(error), RETRYABLE.has(error.status) && (() => submitUrl(url, view)));
  }
  await followUpload(jobId, view);
}

async function followUpload(jobId, view) {
  view.card.dataset.job = jobId;
  const name = view.card.querySelector(".name");
  name.replaceWith(el("a", { className: "name", href: `#job/${jobId}`, textContent: name.textContent }));
  setStage(view, "queued", 0);
  refreshList();
  let job;
  try {
    job = await follow(jobId, (percent, stage) =>
      setStage(view, stage === "diarizing" ? "diarizing" : percent > 0 ? "transcribing" : "queued", percent),
    );
  } catch (error) {
    setStage(view, "lost");
    return showFailure(view, `Following the job failed: ${explain(error)}`);
  }
  setStage(view, job.status, job.status === "done" ? 100 : view.bar.value);
  if (job.status === "done") {
    // Diarized: one line per speaker turn, "SPEAKER_00: …".
    const turns = [];
    for (const s of job.segments) {
      const last = turns.at(-1);
      if (last && last.speaker === s.speaker) last.text += ` ${s.text.trim()}`;
      else turns.push({ speaker: s.speaker, text: s.text.trim() });
    }
    const text = turns.map((t) => (t.speaker ? `${t.speaker}: ${t.text}` : t.text)).join(job.speakers ? "\n" : " ");
    view.result.append(el("p", { className: "transcript", textContent: text || "(no speech found)" }), downloads(jobId));
  } else {
    showFailure(view, job.error || `The job was ${job.status}.`);
  }
  refreshList();
}

function downloads(jobId) {
  const row = el("span", { className: "row downloads" });
  for (const format of FORMATS) {
    const button = el("button", { type: "button", className: "quiet", textContent: format.toUpperCase(), title: `Download the transcript as ${format}` });
    button.dataset.format = format;
    button.onclick = () => download(jobId, format).catch((error) => notify(explain(error)));
    row.append(button);
  }
  return row;
}

function takeFiles(files) {
  for (const file of files) submitFile(file);
}

// ---- job list ----------------------------------------------------------------------------------------------

const list = { cursors: [null], page: 0, next: null, timer: null, loading: false };

async function refreshList() {
  if (list.loading) return;
  list.loading = true;
  const status = $("status-filter").value;
  const params = new URLSearchParams({ limit: PAGE_SIZE });
  if (status) params.set("status", status);
  if (list.cursors[list.page]) params.set("cursor", list.cursors[list.page]);
  try {
    const page = await getJson(`/jobs?${params}`);
    list.next = page.next_cursor;
    renderList(page.jobs);
    clearNotice("list");
  } catch (error) {
    notify(`The job list cannot be read: ${explain(error)}`, "error", "list");
  } finally {
    list.loading = false;
  }
  $("newer").disabled = list.page === 0;
  $("older").disabled = !list.next;
}

function renderList(jobs) {
  $("job-list-empty").hidden = jobs.length > 0;
  $("job-list").replaceChildren(
    ...jobs.map((job) => {
      const facts = [when(job.created_at), job.language, job.duration_secs ? clock(job.duration_secs) : null, job.filename ? job.id.slice(0, 8) : null]
        .filter(Boolean)
        .join(" · ");
      const item = el(
        "li",
        { className: "card job" },
        el("a", { href: `#job/${job.id}`, className: "row" }, el("strong", { className: "name", textContent: job.filename || job.id }), el("span", { className: "grow" }), statusBadge(job.status)),
        el("div", { className: "muted", textContent: facts }),
        job.status === "running" || job.status === "queued" ? el("progress", { max: 100, value: job.progress }) : null,
        job.error && job.status !== "done" ? el("div", { className: "error small", textContent: job.error }) : null,
      );
      item.dataset.job = job.id;
      item.dataset.status = job.status;
      return item;
    }),
  );
}

function statusBadge(status) {
  const badge = el("span", { className: "status", textContent: status });
  badge.dataset.status = status;
  return badge;
}

// ---- job view ----------------------------------------------------------------------------------------------

const shown = { jobId: null };

async function showJob(jobId) {
  shown.jobId = jobId;
  $("home").hidden = true;
  $("job").hidden = false;
  $("job-title").textContent = `Job ${jobId.slice(0, 12)}`;
  $("segments").replaceChildren();
  $("downloads").replaceChildren();
  const player = $("player");
  const audio = localAudio.get(jobId);
  player.hidden = !audio;
  $("player-hint").hidden = Boolean(audio);
  if (audio && player.src !== audio) player.src = audio;
  try {
    let job = await getJson(`/jobs/${jobId}`);
    renderJob(job);
    if (!ENDED.has(job.status)) {
      job = await follow(jobId, (percent) => shown.jobId === jobId && updateProgress(percent));
      if (shown.jobId === jobId) renderJob(job);
    }
  } catch (error) {
    if (shown.jobId === jobId) notify(explain(error), "error");
  }
}

function updateProgress(percent) {
  $("job-progress").value = percent;
  const status = $("job-status");
  if (percent > 0 && status.textContent === "queued") status.replaceChildren(statusBadge("running"));
}

function renderJob(job) {
  $("job-title").textContent = job.filename || `Job ${job.id}`;
  $("job-status").replaceChildren(statusBadge(job.status));
  $("job-progress").value = job.status === "done" ? 100 : job.progress;
  const facts = [
    ["Job", job.id],
    ["Task", job.task],
    ["Language", job.language || "detecting"],
    ["Audio", job.duration_secs ? clock(job.duration_secs) : null],
    ["Submitted", when(job.created_at)],
    ["Ended", when(job.completed_at)],
    ["Model", job.model],
  ].filter(([, value]) => value);
  $("job-facts").replaceChildren(...facts.flatMap(([name, value]) => [el("dt", { textContent: name }), el("dd", { textContent: value })]));
  $("job-error").hidden = !job.error || job.status === "done";
  $("job-error").textContent = job.error || "";
  $("job-cancel").hidden = ENDED.has(job.status);
  $("downloads").replaceChildren(...(job.status === "done" ? [downloads(job.id)] : []));
  $("segments").replaceChildren(
    ...job.segments.map((segment) => {
      const item = el(
        "li",
        { className: "segment", tabIndex: 0 },
        el("span", { className: "time", textContent: `${clock(segment.start)} – ${clock(segment.end)}` }),
        el(
          "span",
          { className: "text" },
          ...(segment.speaker ? [el("span", { className: "speaker", textContent: segment.speaker }), " "] : []),
          segment.text.trim(),
        ),
      );
      item.dataset.start = segment.start;
      item.dataset.end = segment.end;
      return item;
    }),
  );
}

function seekTo(segment) {
  const player = $("player");
  if (player.hidden) return;
  player.currentTime = Number(segment.dataset.start);
  player.play().catch(() => {});
}

function highlightCurrent() {
  const t = $("player").currentTime;
  let current = null;
  for (const segment of $("segments").children) {
    const on = t >= Number(segment.dataset.start) && t < Number(segment.dataset.end);
    segment.classList.toggle("current", on);
    if (on) current = segment;
  }
  current?.scrollIntoView({ block: "nearest" });
}

async function cancelShownJob() {
  const jobId = shown.jobId;
  try {
    await request(`/jobs/${jobId}`, { method: "DELETE" });
    notify(`Job ${jobId.slice(0, 12)} is cancelled.`, "info");
  } catch (error) {
    notify(explain(error));
  }
  if (shown.jobId === jobId) renderJob(await getJson(`/jobs/${jobId}`));
  refreshList();
}

// ---- routing and start -------------------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#job\/([A-Za-z0-9_-]+)$/);
  if (match) return showJob(match[1]);
  shown.jobId = null;
  $("job").hidden = true;
  $("home").hidden = false;
  refreshList();
}

function wire() {
  const drop = $("drop");
  $("files").onchange = (e) => {
    takeFiles(e.target.files);
    e.target.value = "";
  };
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add("over");
  };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    takeFiles(e.dataTransfer.files);
  };
  $("url-submit").onclick = () => {
    const url = $("url").value.trim();
    if (!url) return;
    $("url").value = "";
    submitUrl(url);
  };
  $("status-filter").onchange = () => {
    list.cursors = [null];
    list.page = 0;
    refreshList();
  };
  $("older").onclick = () => {
    if (!list.next) return;
    list.cursors[++list.page] = list.next;
    refreshList();
  };
  $("newer").onclick = () => {
    if (list.page === 0) return;
    list.page--;
    refreshList();
  };
  $("segments").onclick = (e) => {
    const segment = e.target.closest(".segment");
    if (segment) seekTo(segment);
  };
  $("segments").onkeydown = (e) => {
    if (e.key === "Enter" && e.target.classList.contains("segment")) seekTo(e.target);
  };
  $("player").ontimeupdate = highlightCurrent;
  $("job-cancel").onclick = cancelShownJob;
  $("key-button").onclick = () => askForKey("").then(refreshList, () => {});
  window.onhashchange = route;
}

async function start() {
  onKeyNeeded(askForKey);
  wire();
  addOptions = await buildOptions($("options"));
  route();
  refreshHealth();
  setInterval(refreshHealth, HEALTH_REFRESH_MS);
  setInterval(() => !document.hidden && !$("home").hidden && refreshList(), LIST_REFRESH_MS);
}

start();
