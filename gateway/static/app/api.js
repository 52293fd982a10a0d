// The jetscribe HTTP API as the page uses it: requests with the API key, uploads with progress, event streams.
// Every failure becomes an ApiError whose message is the gateway's own explanation (`{"error": "..."}`).

const KEY_STORAGE = "jetscribe.apiKey";

export class ApiError extends Error {
  constructor(status, message, retryAfterS = null) {
    super(message);
    this.status = status; // 0: no answer at all
    this.retryAfterS = retryAfterS;
  }
}

export const apiKey = {
  get: () => localStorage.getItem(KEY_STORAGE) || "",
  set: (key) => (key ? localStorage.setItem(KEY_STORAGE, key) : localStorage.removeItem(KEY_STORAGE)),
};

// Asked when the gateway answers 401: resolves once the person gave a key, rejects if they decline.
// Installed by the page; requests that meet a 401 meanwhile wait for the same answer.
let askForKey = async () => {
  throw new ApiError(401, "this jetscribe needs an API key");
};
let pendingKey = null;

export function onKeyNeeded(ask) {
  askForKey = ask;
}

async function keyAfter401(message) {
  pendingKey ??= askForKey(message).finally(() => (pendingKey = null));
  return pendingKey;
}

function authHeaders() {
  const key = apiKey.get();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) message = body.error;
  } catch {
    // Not JSON: keep the status line.
  }
  const retry = Number(response.headers.get("Retry-After"));
  return new ApiError(response.status, message, Number.isFinite(retry) && retry > 0 ? retry : null);
}

// fetch() against the gateway; a 401 asks for a key and tries again. Resolves to the Response (status < 400).
export async function request(path, options = {}) {
  for (;;) {
    let response;
    try {
      response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
    } catch (error) {
      throw new ApiError(0, `no answer from jetscribe (${error.message}): is the service running?`);
    }
    if (response.status === 401) {
      await keyAfter401((await errorOf(response)).message);
      continue;
    }
    if (!response.ok && !(options.accept || []).includes(response.status)) throw await errorOf(response);
    return response;
  }
}

export const getJson = async (path, options) => (await request(path, options)).json();

// POST /jobs with upload progress (XMLHttpRequest's upload events; fetch has none). Resolves to the job id.
export function upload(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/jobs");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded, e.total);
    xhr.onerror = () => reject(new ApiError(0, "the upload was cut off: is the service running?"));
    xhr.onload = () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // keep {}
      }
      if (xhr.status === 202) return resolve(body.job_id);
      const retry = Number(xhr.getResponseHeader("Retry-After"));
      reject(new ApiError(xhr.status, body.error || `${xhr.status} ${xhr.statusText}`, retry > 0 ? retry : null));
    };
    xhr.send(form);
  }).catch(async (error) => {
    if (error.status !== 401) throw error;
    await keyAfter401(error.message);
    return upload(form, onProgress);
  });
}

// The job's Server-Sent Events, parsed as the HTML standard says (data lines joined by "\n"). fetch() rather
// than EventSource, which cannot send the API key. Yields {event, data, id}; ends when the stream closes.
export async function* events(jobId, lastEventId = null) {
  const headers = { Accept: "text/event-stream" };
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const response = await request(`/jobs/${jobId}/stream`, { headers });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let data = [];
  let type = "";
  let id = lastEventId;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      pending += value;
      const lines = pending.split(/\r\n|\r|\n/);
      pending = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event: type || "message", data: JSON.parse(data.join("\n")), id };
          data = [];
          type = "";
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const field = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (name === "data") data.push(field);
          else if (name === "event") type = field;
          else if (name === "id") id = field;
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// Follow a job to its end, surviving streams that close early; calls onProgress(percent). Resolves to the job.
export async function follow(jobId, onProgress) {
  let lastId = null;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const message of events(jobId, lastId)) {
        lastId = message.id;
        if (message.event === "progress") onProgress(message.data.percent, message.data.stage);
        if (message.event === "done") return message.data.job;
      }
    } catch (error) {
      // A refusal is final; a stream cut off (network, a gateway restarting) is followed again.
      if ((error instanceof ApiError && error.status !== 0) || attempt >= 5) throw error;
    }
    const job = await getJson(`/jobs/${jobId}`);
    if (["done", "failed", "cancelled"].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// Save a transcript in `format` as a file, through a Blob (a plain link could not carry the API key).
export async function download(jobId, format) {
  const response = await request(`/jobs/${jobId}/transcript?format=${format}`);
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: `${jobId}.${format}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
