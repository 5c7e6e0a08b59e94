// A tiny element builder: h("td", {class: "x", onclick: f}, "text", child, ...)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function progressBar(progress, status) {
  const total = progress?.frames_total;
  const done = progress?.frames_done ?? 0;
  const finished = status === "succeeded";
  const pct = finished ? 100 : total ? Math.min(100, (100 * done) / total) : 0;
  return h("div", { class: `progress ${status}`, role: "progressbar", "aria-valuenow": pct.toFixed(1),
                    "aria-valuemin": "0", "aria-valuemax": "100", title: total ? `${done} / ${total} frames` : status },
           h("div", { class: "bar", style: `width:${pct}%` }),
           h("span", {}, total ? `${Math.round(pct)}%` : finished ? "100%" : ""));
}

export function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}
