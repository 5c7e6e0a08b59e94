// Submit: upload a video (POST /v1/uploads), pick a pipeline and its params, submit, then watch the job.
import { call, get, post } from "../api.js";
import { h, showError } from "../dom.js";

const EXAMPLE_PARAMS = {
  detect: {},
  road: { speed_mps: 27, following: { profile: "two_second_rule" } },
  driver: {},
  noop: {},
};

export function submitPage(main) {
  const file = h("input", { type: "file", name: "file", id: "submit-file", accept: "video/*,image/jpeg,image/png", required: true });
  const pipeline = h("select", { name: "pipeline", id: "submit-pipeline", onchange: () => {
    params.value = JSON.stringify(EXAMPLE_PARAMS[pipeline.value] ?? {}, null, 2); } });
  const params = h("textarea", { name: "params", id: "submit-params", rows: 8, cols: 60, spellcheck: "false" }, "{}");
  const attributes = h("input", { name: "attributes", id: "submit-attributes", placeholder: "key=value, key=value" });
  const status = h("p", { class: "muted", id: "submit-status" });
  const button = h("button", { type: "submit", id: "submit-button" }, "Upload and submit");
  main.append(h("h1", {}, "Submit"), h("form", { class: "submit", onsubmit: submit },
    h("label", {}, "Video or image", file), h("label", {}, "Pipeline", pipeline),
    h("label", {}, "Params (JSON)", params), h("label", {}, "Attributes", attributes), button, status));

  get("/v1/pipelines").then(({ pipelines }) => {
    pipeline.replaceChildren(...pipelines.map((p) => h("option", { value: p, selected: p === "detect" }, p)));
    pipeline.dispatchEvent(new Event("change"));
  }).catch((err) => showError(err.message));

  async function submit(ev) {
    ev.preventDefault();
    let parsed;
    try { parsed = JSON.parse(params.value || "{}"); } catch (err) { showError(`params are not JSON: ${err.message}`); return; }
    const attrs = Object.fromEntries(attributes.value.split(",").map((s) => s.trim()).filter(Boolean)
      .map((pair) => pair.split("=").map((s) => s.trim())));
    const chosen = file.files[0];
    if (!chosen) { showError("choose a file to upload"); return; }
    button.disabled = true;
    showError("");
    try {
      status.textContent = `uploading ${chosen.name} (${(chosen.size / 1e6).toFixed(1)} MB)…`;
      const uploaded = await call("POST", `/v1/uploads?filename=${encodeURIComponent(chosen.name)}`,
        { body: chosen, headers: { "Content-Type": "application/octet-stream" } });
      status.textContent = "submitting…";
      const job = await post("/v1/jobs", { pipeline: pipeline.value, input: { key: uploaded.key }, params: parsed, attributes: attrs });
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      showError(err.message);
      status.textContent = "";
    } finally {
      button.disabled = false;
    }
  }
}
