// The REST API: one fetch wrapper (auth header, JSON errors) and the SSE stream reader.

const KEY_STORE = "ragchat.apiKey";
const SETTINGS_STORE = "ragchat.settings";

/** Settings kept in localStorage (never a cookie). */
export const settings = {
  get apiKey() { return localStorage.getItem(KEY_STORE) || ""; },
  set apiKey(value) {
    if (value) localStorage.setItem(KEY_STORE, value);
    else localStorage.removeItem(KEY_STORE);
  },
  get retrieval() {
    try { return JSON.parse(localStorage.getItem(SETTINGS_STORE) || "{}"); }
    catch { return {}; }
  },
  set retrieval(value) { localStorage.setItem(SETTINGS_STORE, JSON.stringify(value)); },
};

/** An API failure with a message a person can act on. */
export class ApiError extends Error {
  constructor(status, code, detail, retryAfter) {
    super(describe(status, code, detail, retryAfter));
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

function describe(status, code, detail, retryAfter) {
  const said = detail ? ` (${detail})` : "";
  switch (status) {
    case 0: return "Cannot reach the server. Check your connection and try again.";
    case 401: return "An API key is required, or the one saved was refused. Enter a valid key in Settings.";
    case 403: return `This API key may not do that${said}.`;
    case 404: return `Not found${said}.`;
    case 409: return `That conflicts with the current state${said}. Refresh and try again.`;
    case 413: return `Too large${said}.`;
    case 415: return `This file type is not supported${said}.`;
    case 422: return `The request was not accepted${said}.`;
    case 429: {
      const wait = retryAfter ? ` in ${retryAfter} s` : " in a moment";
      return `Too many requests: the server is busy. Try again${wait}.`;
    }
    case 503: return "The service is temporarily unavailable. Try again shortly.";
    case 504: return "The server took too long to answer. Try again.";
    default:
      return status >= 500 ? `The server failed${said}. Try again.` : `Request failed: ${code}${said}.`;
  }
}

function headers(extra) {
  const out = { ...extra };
  if (settings.apiKey) out.Authorization = `Bearer ${settings.apiKey}`;
  return out;
}

async function failure(response) {
  let code = `http_${response.status}`;
  let detail = "";
  try {
    const body = await response.json();
    code = body.error || code;
    detail = typeof body.detail === "string" ? body.detail : "";
  } catch { /* not JSON: the status says enough */ }
  return new ApiError(response.status, code, detail, response.headers.get("Retry-After"));
}

async function send(path, init) {
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "");
  }
  if (!response.ok) throw await failure(response);
  return response;
}

/** JSON request; resolves to the body (null for 204), rejects with ApiError. */
export async function request(method, path, body) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await send(path, init);
  return response.status === 204 ? null : response.json();
}

/** POST /upload with one file. */
export async function upload(file, tags) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (tags) form.append("tags", tags);
  const response = await send("/upload", { method: "POST", headers: headers({}), body: form });
  return response.json();
}

/** POST /query/stream; calls onDelta(text) per delta, resolves to the `done` payload. */
export async function streamQuery(body, onDelta) {
  const response = await send("/query/stream", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify(body),
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
      if (event.name === "delta") onDelta(event.data.text || "");
      else if (event.name === "done") return event.data;
      else if (event.name === "error") {
        const d = event.data;
        throw new ApiError(d.status || 500, d.error || "stream_error", d.detail || "");
      }
    }
  }
  throw new ApiError(502, "stream_ended", "the answer stream ended early");
}

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  let parsed = {};
  try { parsed = JSON.parse(data.join("\n") || "{}"); } catch { /* keep {} */ }
  return { name, data: parsed };
}
