// The JSON API with the key this tab holds (sessionStorage), sent as "Authorization: Bearer fq_…".
// In development mode (no key exists on the server) no key is needed and none is sent.
const KEY = "framequeue.api_key";

export function apiKey() { return sessionStorage.getItem(KEY); }
export function setApiKey(key) { key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code;
  }
}

export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export async function call(method, path, { json, body, headers = {}, signal } = {}) {
  const init = { method, headers: { ...authHeaders(), ...headers }, signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  const res = await fetch(path, init);
  if (res.status === 401) document.dispatchEvent(new CustomEvent("fq-need-key"));
  if (!res.ok) {
    let problem = null;
    try { problem = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, problem);
  }
  return res.status === 204 ? null : res.json();
}

export const get = (path, opts) => call("GET", path, opts);
export const post = (path, json) => call("POST", path, { json });

// A URL an element (video, img, a) can load: the API's own while no key is needed (so a video seeks with
// Range requests); with a key, elements cannot send headers, so the file is fetched once into a blob URL.
export async function mediaUrl(path) {
  if (!apiKey()) return path;
  const res = await fetch(path, { headers: authHeaders() });
  if (!res.ok) throw new ApiError(res.status, null);
  return URL.createObjectURL(await res.blob());
}
