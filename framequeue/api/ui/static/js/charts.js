// Inline SVG charts drawn from numbers: bars per bucket, and a line over samples.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function frame(title, max, width, height) {
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  const t = svg("text", { x: 4, y: 14, class: "chart-title" });
  t.textContent = `${title} (max ${max})`;
  root.append(t, svg("line", { x1: 0, y1: height - 1, x2: width, y2: height - 1, class: "axis" }));
  return root;
}

export function barChart(title, values, { width = 480, height = 120, cls = "" } = {}) {
  const max = Math.max(1, ...values);
  const root = frame(title, max, width, height);
  const w = width / Math.max(1, values.length);
  values.forEach((v, i) => {
    const bh = ((height - 22) * v) / max;
    const bar = svg("rect", { x: i * w + 0.5, y: height - 1 - bh, width: Math.max(1, w - 1), height: bh, class: `bar ${cls}` });
    const tip = svg("title", {});
    tip.textContent = `${values.length - i} min ago: ${v}`;
    bar.append(tip);
    root.append(bar);
  });
  return root;
}

export function lineChart(title, samples, { width = 480, height = 120, cls = "" } = {}) {
  const max = Math.max(1, ...samples.map((s) => s.value));
  const root = frame(title, Math.round(max * 10) / 10, width, height);
  if (samples.length < 2) return root;
  const t0 = samples[0].t, span = Math.max(1, samples[samples.length - 1].t - t0);
  const points = samples.map((s) => `${(width * (s.t - t0)) / span},${height - 1 - ((height - 22) * s.value) / max}`);
  root.append(svg("polyline", { points: points.join(" "), class: `line ${cls}` }));
  return root;
}
