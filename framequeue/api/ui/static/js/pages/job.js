// Job: the annotated video, its timeline and contact sheet, the pipeline's events (click one: the video
// seeks to its start), params, attempts, error, webhook deliveries with replay, downloads. Live while it runs.
// A long video split across workers shows its segments (state, attempts, progress, each a link); a segment
// links back to its job.
import { get, mediaUrl, post } from "../api.js";
import { fmtSeconds, fmtTime, h, progressBar, showError } from "../dom.js";
import { follow } from "../live.js";
import { retryBody } from "./jobs.js";

const VIDEO_OUTPUTS = ["video"];
const IMAGE_OUTPUTS = [["timeline", "Timeline"], ["contact_sheet", "Contact sheet"]];
const EVENT_OUTPUTS = ["road", "driver"];
const TERMINAL = ["succeeded", "failed", "cancelled", "expired"];

export function jobPage(main, id) {
  const summary = h("div", { class: "summary" });
  const media = h("section", { class: "media" });
  const details = h("section", { class: "details" });
  const deliveries = h("section", { class: "deliveries" });
  main.append(h("h1", {}, "Job ", h("span", { class: "mono", id: "job-id" }, id)), summary, media, details, deliveries);
  let shownOutputs = false;
  let lastDrawn = null;

  async function refresh() {
    const job = await get(`/v1/jobs/${id}`);
    const drawn = JSON.stringify(job);
    if (drawn === lastDrawn) return;  // nothing new: keep the page (and its buttons) as they are
    lastDrawn = drawn;
    renderSummary(summary, job);
    renderDetails(details, job);
    if (job.status === "succeeded" && !shownOutputs) {
      shownOutputs = true;
      await renderOutputs(media, job);
    }
    if (TERMINAL.includes(job.status)) await renderDeliveries(deliveries, id);
  }

  const stop = follow(`/v1/jobs/${id}/events`, async () => {
    try { await refresh(); } catch (err) { showError(err.message); }
  });
  return stop;
}

function renderSummary(box, job) {
  const p = job.progress || {};
  const rows = [
    ["Status", h("span", { class: `status ${job.status}`, id: "job-status" }, job.status)],
    ["Progress", progressBar(p, job.status)],
    ["Frames", p.frames_total ? `${p.frames_done} / ${p.frames_total}` : p.frames_done ?? ""],
    ["Stage", p.stage || ""],
    ["Speed", p.fps ? `${p.fps.toFixed(1)} fps` : ""],
    ["ETA", p.eta_s !== undefined && job.status === "running" ? fmtSeconds(p.eta_s) : ""],
    ["Segments", Array.isArray(job.segments) ? `${job.segments_done ?? 0} of ${job.segments_total} done` : ""],
    ["Part of", job.parent_id ? h("a", { href: `#/jobs/${job.parent_id}`, id: "job-parent" },
      `job ${job.parent_id}`, `, segment ${job.segment_index}`) : ""],
    ["Pipeline", `${job.pipeline}${job.pipeline_version ? ` v${job.pipeline_version}` : ""}`],
    ["Endpoint", job.endpoint || ""],
    ["Created", fmtTime(job.created_at)], ["Started", fmtTime(job.started_at)], ["Finished", fmtTime(job.finished_at)],
  ];
  const actions = h("div", { class: "actions" },
    TERMINAL.includes(job.status) ? null : h("button", { type: "button", class: "cancel", onclick: () =>
      post(`/v1/jobs/${job.id}/cancel`).catch((err) => showError(err.message)) }, "Cancel"),
    h("button", { type: "button", class: "retry", onclick: async () => {
      try { location.hash = `#/jobs/${(await post("/v1/jobs", retryBody(job))).id}`; } catch (err) { showError(err.message); }
    } }, "Retry"));
  const shown = rows.filter(([, v]) => v !== "" && v !== null && v !== undefined);
  box.replaceChildren(h("dl", {}, shown.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])), actions);
}

function renderDetails(box, job) {
  const attempts = job.attempt_history;
  box.replaceChildren(h("div", {},
    h("h2", {}, "Params"), h("pre", { class: "params" }, JSON.stringify(job.params, null, 2)),
    Array.isArray(job.segments) && job.segments.length ? [h("h2", {}, `Segments (${job.segments.length})`),
      h("table", { id: "job-segments" },
        h("tr", {}, ["Segment", "Status", "Progress", "Attempts", "Error"].map((t) => h("th", {}, t))),
        job.segments.map((seg) => h("tr", { class: "segment", dataset: { index: String(seg.index), status: seg.status } },
          h("td", {}, h("a", { href: `#/jobs/${seg.id}` }, String(seg.index))),
          h("td", {}, h("span", { class: `status ${seg.status}` }, seg.status)),
          h("td", {}, progressBar(seg, seg.status)),
          h("td", {}, String(seg.attempts)),
          h("td", {}, seg.error ? `${seg.error.code}: ${seg.error.message}` : ""))))] : null,
    h("h2", {}, "Attempts"),
    h("p", {}, `${job.attempts} of at most ${job.max_attempts}`),
    Array.isArray(attempts) && attempts.length ? h("table", { id: "job-attempts" },
      h("tr", {}, ["Attempt", "Worker", "Started", "Ended", "Outcome", "Error"].map((t) => h("th", {}, t))),
      attempts.map((a) => h("tr", { class: "attempt" }, h("td", {}, String(a.attempt)), h("td", { class: "mono" }, a.worker || ""),
        h("td", {}, fmtTime(a.started_at)), h("td", {}, fmtTime(a.ended_at)),
        h("td", { class: "outcome" }, a.outcome || (a.ended_at ? "" : "running")),
        h("td", {}, a.error ? `${a.error.code}: ${a.error.message}` : "")))) : null,
    job.error ? [h("h2", {}, "Error"), h("p", { class: "error", id: "job-error" }, h("code", {}, job.error.code), " ", job.error.message)] : null,
    Object.keys(job.attributes || {}).length ? [h("h2", {}, "Attributes"), h("pre", {}, JSON.stringify(job.attributes, null, 2))] : null,
    h("h2", {}, "Downloads"),
    h("ul", { class: "downloads" }, Object.keys(job.outputs).map((name) => h("li", {},
      h("a", { href: `/v1/jobs/${job.id}/outputs/${name}`, onclick: (ev) => download(ev, job.id, name) }, name))))));
}

async function download(ev, id, name) {
  const a = ev.currentTarget;
  if (a.dataset.ready) return;  // the blob URL is set: let the click through
  ev.preventDefault();
  try {
    a.href = await mediaUrl(`/v1/jobs/${id}/outputs/${name}`);
    a.download = name;
    a.dataset.ready = "1";
    a.click();
  } catch (err) { showError(err.message); }
}

async function renderOutputs(box, job) {
  const out = (name) => `/v1/jobs/${job.id}/outputs/${name}`;
  const videoName = VIDEO_OUTPUTS.find((n) => n in job.outputs);
  let video = null;
  const player = h("div", { class: "player" });
  box.append(player);
  if (videoName) {
    video = h("video", { id: "job-video", controls: true, muted: true, playsinline: true, preload: "auto" });
    video.src = await mediaUrl(out(videoName));
    player.append(h("div", {}, h("h2", {}, "Annotated video"), video));
  }
  const events = await pipelineEvents(job, out);
  if (events !== null) {
    player.append(h("div", {}, h("h2", {}, `Events (${events.length})`), events.length ? h("ol", { class: "events", id: "job-events" },
      events.map((e) => h("li", {},
        h("button", { type: "button", class: "event", dataset: { start: String(e.start_s) }, onclick: () => {
          if (video) { video.currentTime = e.start_s; video.play().catch(() => {}); }
        } }, `${fmtSeconds(e.start_s)}`), " ", h("strong", {}, e.type || e.kind || "event"),
        e.end_s !== undefined ? ` until ${fmtSeconds(e.end_s)}` : "",
        e.severity ? ` (${e.severity})` : ""))) : h("p", { class: "muted" }, "no events in this video")));
  }
  for (const [name, title] of IMAGE_OUTPUTS) {
    if (!(name in job.outputs)) continue;
    const img = h("img", { alt: title, class: name });
    img.src = await mediaUrl(out(name));
    box.append(h("h2", {}, title), img);
  }
}

// The record's own list when it has one (committed with the outputs); else the events output's JSON
// (records written before the list existed); null: this pipeline reports no events.
async function pipelineEvents(job, out) {
  if (Array.isArray(job.events) && job.events.length) return job.events;
  const name = EVENT_OUTPUTS.find((n) => n in job.outputs);
  if (!name) return Array.isArray(job.events) && EVENT_OUTPUTS.includes(job.pipeline) ? job.events : null;
  const doc = await get(out(name));
  return Array.isArray(doc.events) ? doc.events : null;
}

async function renderDeliveries(box, id) {
  const { deliveries } = await get(`/v1/jobs/${id}/deliveries`);
  if (!deliveries.length) { box.replaceChildren(); return; }
  box.replaceChildren(h("h2", {}, "Webhook deliveries"), h("table", {},
    h("tr", {}, ["Event", "URL", "State", "Attempts", "Last error", ""].map((t) => h("th", {}, t))),
    deliveries.map((d) => h("tr", {}, h("td", {}, d.type || d.id), h("td", { class: "mono" }, d.url),
      h("td", {}, d.state), h("td", {}, d.attempts), h("td", {}, d.last_error || ""),
      h("td", {}, h("button", { type: "button", onclick: () => post(`/v1/deliveries/${d.id}/replay`)
        .then(() => renderDeliveries(box, id)).catch((err) => showError(err.message)) }, "Replay"))))));
}
