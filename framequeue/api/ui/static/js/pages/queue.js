// Queue and workers: backlog, in flight and the oldest job's age sampled while the page is open,
// finished and failed jobs per minute over the last hour, the workers with the job each holds, and the
// autoscaler's last decisions when `framequeue autoscale` runs with this deployment's home.
import { get } from "../api.js";
import { fmtSeconds, fmtTime, h, progressBar } from "../dom.js";
import { barChart, lineChart } from "../charts.js";
import { follow } from "../live.js";

const MAX_SAMPLES = 3600;

export function queuePage(main) {
  const numbers = h("div", { class: "numbers" });
  const charts = h("div", { class: "charts" });
  const workers = h("section", { class: "workers" });
  const autoscaler = h("section", { class: "autoscaler" });
  main.append(h("h1", {}, "Queue and workers"), numbers, charts, workers, autoscaler);
  const samples = { backlog: [], inflight: [], oldest: [] };

  async function refresh() {
    const view = await get("/v1/queue");
    const q = view.queue;
    const t = Date.now() / 1000;
    for (const [name, value] of [["backlog", q.backlog_jobs], ["inflight", q.in_flight_jobs], ["oldest", q.oldest_waiting_age_s ?? 0]]) {
      samples[name].push({ t, value });
      if (samples[name].length > MAX_SAMPLES) samples[name].shift();
    }
    const hour = view.last_hour;
    const sum = (xs) => xs.reduce((a, b) => a + b, 0);
    numbers.replaceChildren(...[
      ["Backlog", q.backlog_jobs, "queue-backlog"], ["In flight", q.in_flight_jobs, "queue-inflight"],
      ["Oldest waiting", q.oldest_waiting_age_s === null ? "n/a" : fmtSeconds(q.oldest_waiting_age_s), "queue-oldest"],
      ["Dead letters", q.dead_letter_jobs, "queue-dead"],
      ["Succeeded (1 h)", sum(hour.succeeded), "hour-succeeded"], ["Failed (1 h)", sum(hour.failed), "hour-failed"],
    ].map(([label, value, id]) => h("div", { class: "number" }, h("span", { class: "label" }, label), h("strong", { id }, value))));
    charts.replaceChildren(
      lineChart("Backlog (jobs, since this page opened)", samples.backlog),
      lineChart("In flight (jobs)", samples.inflight, { cls: "inflight" }),
      lineChart("Oldest waiting (s)", samples.oldest, { cls: "oldest" }),
      barChart("Throughput (jobs finished per minute, last hour)", hour.succeeded),
      barChart("Failures (per minute, last hour)", hour.failed, { cls: "failed" }));
    const byWorker = new Map();
    for (const job of view.running) {
      const w = job.worker || "unknown";
      byWorker.set(w, [...(byWorker.get(w) || []), job]);
    }
    workers.replaceChildren(h("h2", {}, `Workers with a job (${byWorker.size})`),
      byWorker.size ? h("table", { id: "workers" },
        h("tr", {}, ["Worker", "Job", "Pipeline", "Started", "Progress"].map((x) => h("th", {}, x))),
        [...byWorker].flatMap(([w, jobs]) => jobs.map((j) => h("tr", {}, h("td", { class: "mono" }, w),
          h("td", {}, h("a", { href: `#/jobs/${j.id}`, class: "mono" }, j.id)), h("td", {}, j.pipeline),
          h("td", {}, fmtTime(j.started_at)), h("td", {}, progressBar(j.progress, "running"))))))
        : h("p", { class: "muted" }, "no job is running"));
    renderDecisions(autoscaler, view.autoscaler);
  }

  return follow(null, refresh);
}

// Newest first: when, the backlog it saw, workers before and after, and why.
function renderDecisions(box, autoscaler) {
  if (!autoscaler) { box.replaceChildren(); return; }
  const rows = [...autoscaler.decisions].reverse();
  box.replaceChildren(h("h2", {}, `Autoscaler decisions (last ${rows.length})`), rows.length ? h("table", { id: "autoscaler-decisions" },
    h("tr", {}, ["Time", "Waiting", "In flight", "Workers before", "Workers after", "Reason"].map((x) => h("th", {}, x))),
    rows.map((d) => h("tr", { class: "decision" }, h("td", {}, fmtTime(d.time)), h("td", {}, d.waiting ?? ""),
      h("td", {}, d.in_flight ?? ""), h("td", { class: "before" }, d.current ?? ""),
      h("td", { class: "after" }, d.desired ?? ""), h("td", { class: "reason" }, d.reason || ""))))
    : h("p", { class: "muted" }, "the autoscaler has made no decision yet"));
}
