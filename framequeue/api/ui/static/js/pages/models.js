// Models: the model repository's versions (format, runtime, precision) and the endpoint registry's A/B weights.
import { ApiError, get } from "../api.js";
import { fmtTime, h } from "../dom.js";

export function modelsPage(main) {
  const repo = h("section", { id: "models" });
  const registry = h("section", { id: "model-endpoints" });
  main.append(h("h1", {}, "Models"), repo, registry);

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
