// Models: the model repository's versions (format, runtime, precision), the endpoint registry's A/B weights,
// and per model version the outcomes of this tenant's newest jobs that used it (events and detections per minute of
// video among them), side by side.
import { ApiError, get } from "../api.js";
import { fmtSeconds, fmtTime, h } from "../dom.js";

const OUTCOME_JOBS = 500;

export function modelsPage(main) {
  const repo = h("section", { id: "models" });
  const registry = h("section", { id: "model-endpoints" });
  const outcomes = h("section", { id: "model-outcomes" });
  main.append(h("h1", {}, "Models"), repo, registry, outcomes);
  get(`/v1/jobs?limit=${OUTCOME_JOBS}`).then(({ jobs }) => renderOutcomes(outcomes, jobs))
    .catch((err) => outcomes.replaceChildren(h("p", { class: "error" }, err.message)));

  get("/v1/models").then(({ models }) => {
    repo.replaceChildren(h("h2", {}, "Repository"), models.length ? h("table", {},
      h("tr", {}, ["Model", "Version", "Format", "Runtime", "Precision", "Input (h×w)", "Classes", "Added"].map((t) => h("th", {}, t))),
      models.map((m) => h("tr", {}, h("td", {}, m.name), h("td", {}, m.version), h("td", {}, m.format),
        h("td", {}, m.runtime), h("td", {}, m.precision), h("td", {}, (m.input_size_hw || []).join("×")),
        h("td", {}, m.classes), h("td", {}, fmtTime(m.created_at)))))
      : h("p", { class: "muted" }, "no model yet: framequeue models add NAME FILE --format FORMAT"));
  }).catch((err) => repo.replaceChildren(h("p", { class: "error" }, err.message)));

  get("/v1/model-endpoints").then(({ model_endpoints: eps }) => {
    const totals = new Map();
    for (const e of eps) if (e.state === "active") totals.set(e.model, (totals.get(e.model) || 0) + e.weight);
    registry.replaceChildren(h("h2", {}, "Endpoint registry (A/B weights)"), eps.length ? h("table", {},
      h("tr", {}, ["Model", "Version", "URL", "State", "Weight", "Share of traffic"].map((t) => h("th", {}, t))),
      eps.map((e) => {
        const share = e.state === "active" && totals.get(e.model) ? (100 * e.weight) / totals.get(e.model) : 0;
        return h("tr", {}, h("td", {}, e.model), h("td", {}, e.version), h("td", { class: "mono" }, e.url),
          h("td", {}, e.state), h("td", {}, e.weight),
          h("td", {}, h("div", { class: "progress share" }, h("div", { class: "bar", style: `width:${share}%` }),
            h("span", {}, `${share.toFixed(0)}%`))));
      }))
      : h("p", { class: "muted" }, "no endpoint registered: every model runs in the worker (local)"));
  }).catch((err) => registry.replaceChildren(h("h2", {}, "Endpoint registry"), h("p", { class: "muted" },
    err instanceof ApiError && err.status === 403 ? "the registry needs an admin key" : err.message)));
}

// Jobs per (model, version) as their params name them: finished, failed, mean processing time, mean frames/s,
// and what the succeeded jobs found per minute of the video they processed (the record's video_s; a still or a
// job from before video_s was recorded has none): events/min = sum of events_total / sum of their video
// minutes, detections/min likewise from detections_total (null when no job of the version counted them).
export function outcomesByVersion(jobs) {
  const groups = new Map();
  for (const job of jobs) {
    const { model, model_version: version } = job.params || {};
    if (!model || !version) continue;
    const key = `${model} v${version}`;
    const g = groups.get(key) || { key, model, version, jobs: 0, succeeded: 0, failed: 0, seconds: 0, frames: 0,
      events: 0, eventsVideoS: 0, detections: 0, detectionsVideoS: 0 };
    g.jobs += 1;
    if (job.status === "succeeded") {
      g.succeeded += 1;
      const s = (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000;
      if (s > 0) { g.seconds += s; g.frames += job.progress?.frames_done || 0; }
      if (job.video_s > 0) {
        if (job.events_total != null) { g.events += job.events_total; g.eventsVideoS += job.video_s; }
        if (job.detections_total != null) { g.detections += job.detections_total; g.detectionsVideoS += job.video_s; }
      }
    }
    if (job.status === "failed" || job.status === "expired") g.failed += 1;
    groups.set(key, g);
  }
  for (const g of groups.values()) {
    g.eventsPerMin = g.eventsVideoS ? g.events / (g.eventsVideoS / 60) : null;
    g.detectionsPerMin = g.detectionsVideoS ? g.detections / (g.detectionsVideoS / 60) : null;
  }
  return [...groups.values()].sort((a, b) => a.key.localeCompare(b.key));
}

const perMin = (rate) => (rate == null ? "" : rate.toFixed(1));

function renderOutcomes(box, jobs) {
  const rows = outcomesByVersion(jobs);
  const head = ["Model version", "Jobs", "Succeeded", "Failed", "Failure rate", "Mean processing", "Mean speed",
    "Events / min of video", "Detections / min of video"];
  box.replaceChildren(h("h2", {}, `Outcomes per version (this tenant's ${jobs.length} newest jobs)`), rows.length ? h("table", {},
    h("tr", {}, head.map((t) => h("th", {}, t))),
    rows.map((g) => h("tr", { dataset: { version: g.key } }, h("td", {}, g.key), h("td", {}, g.jobs), h("td", {}, g.succeeded),
      h("td", {}, g.failed), h("td", {}, `${((100 * g.failed) / g.jobs).toFixed(0)}%`),
      h("td", {}, g.succeeded ? fmtSeconds(g.seconds / g.succeeded) : ""),
      h("td", {}, g.seconds ? `${(g.frames / g.seconds).toFixed(1)} frames/s` : ""),
      h("td", { class: "events-per-min" }, perMin(g.eventsPerMin)),
      h("td", { class: "detections-per-min" }, perMin(g.detectionsPerMin)))))
    : h("p", { class: "muted" }, "no job names a model version yet"));
}
