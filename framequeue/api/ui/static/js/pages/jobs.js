// Jobs: the tenant's jobs with live status and progress, filters, search, cancel and retry.
import { ApiError, get, post } from "../api.js";
import { fmtTime, h, progressBar, showError } from "../dom.js";
import { follow } from "../live.js";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled", "expired"];
const SINCE = [["", "any time"], ["900", "last 15 min"], ["3600", "last hour"], ["86400", "last day"], ["604800", "last week"]];
const LIMIT = 200;

export function retryBody(job) {
  const body = { pipeline: job.pipeline, input: { key: job.input.key }, params: job.params, attributes: job.attributes };
  if (job.timeout_s) body.timeout_s = job.timeout_s;
  if (job.webhook) body.webhook = { url: job.webhook.url };
  return body;
}

export function jobsPage(main) {
  const filters = { status: "", pipeline: "", endpoint: "", since: "", search: "" };
  const choice = (name, options) => h("select", { name, onchange: (ev) => { filters[name] = ev.target.value; refresh(); } },
    options.map(([value, label]) => h("option", { value }, label)));
  const pipelines = choice("pipeline", [["", "any pipeline"]]);
  const endpoints = choice("endpoint", [["", "any endpoint"]]);
  const tbody = h("tbody");
  const count = h("span", { class: "muted" });
  main.append(
    h("h1", {}, "Jobs"),
    h("form", { class: "filters", onsubmit: (ev) => ev.preventDefault() },
      choice("status", STATUSES.map((s) => [s, s || "any status"])), pipelines, endpoints,
      choice("since", SINCE),
      h("input", { type: "search", name: "search", placeholder: "job id or attribute", oninput: (ev) => {
        filters.search = ev.target.value.trim().toLowerCase(); refresh(); } }),
      count),
    h("table", { class: "jobs" },
      h("thead", {}, h("tr", {}, ["Job", "Pipeline", "Endpoint", "Attributes", "Status", "Progress", "Created", "Attempts", ""].map((t) => h("th", {}, t)))),
      tbody));

  const fillOptions = (select, values) => {
    const have = new Set([...select.options].map((o) => o.value));
    for (const v of [...new Set(values)].sort()) if (v && !have.has(v)) select.append(h("option", { value: v }, v));
  };

  async function act(ev, fn) {
    ev.target.disabled = true;
    try { await fn(); await refresh(); } catch (err) { showError(err.message); } finally { ev.target.disabled = false; }
  }

  function row(job) {
    const terminal = !["queued", "running"].includes(job.status);
    return h("tr", { dataset: { id: job.id, status: job.status } },
      h("td", {}, h("a", { href: `#/jobs/${job.id}`, class: "mono" }, job.id)),
      h("td", {}, job.pipeline), h("td", {}, job.endpoint || ""),
      h("td", { class: "attributes" }, Object.entries(job.attributes || {}).map(([k, v]) => `${k}=${v}`).join(", ")),
      h("td", {}, h("span", { class: `status ${job.status}` }, job.status)),
      h("td", {}, progressBar(job.progress, job.status)),
      h("td", {}, fmtTime(job.created_at)), h("td", {}, `${job.attempts}/${job.max_attempts}`),
      h("td", { class: "actions" },
        terminal ? null : h("button", { type: "button", class: "cancel", onclick: (ev) => act(ev, () => post(`/v1/jobs/${job.id}/cancel`)) }, "Cancel"),
        h("button", { type: "button", class: "retry", onclick: (ev) => act(ev, async () => {
          const made = await post("/v1/jobs", retryBody(job));
          location.hash = `#/jobs/${made.id}`;
        }) }, "Retry")));
  }

  let lastDrawn = null;
  async function refresh() {
    const query = new URLSearchParams({ limit: String(LIMIT) });
    if (filters.status) query.set("status", filters.status);
    let page;
    try { page = await get(`/v1/jobs?${query}`); } catch (err) {
      showError(err instanceof ApiError && err.status === 401 ? "an API key is needed" : err.message);
      return;
    }
    fillOptions(pipelines, page.jobs.map((j) => j.pipeline));
    fillOptions(endpoints, page.jobs.map((j) => j.endpoint));
    const since = filters.since ? Date.now() - 1000 * Number(filters.since) : 0;
    const shown = page.jobs.filter((j) =>
      (!filters.pipeline || j.pipeline === filters.pipeline) &&
      (!filters.endpoint || j.endpoint === filters.endpoint) &&
      (!since || Date.parse(j.created_at) >= since) &&
      (!filters.search || j.id.toLowerCase().includes(filters.search) ||
        Object.entries(j.attributes || {}).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(filters.search))));
    const drawn = JSON.stringify(shown);
    if (drawn !== lastDrawn) tbody.replaceChildren(...shown.map(row));  // unchanged rows keep their buttons
    lastDrawn = drawn;
    count.textContent = `${shown.length} of ${page.jobs.length} newest`;
  }

  return follow("/v1/events", refresh);
}
