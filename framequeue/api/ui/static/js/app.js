// The single-page app: hash routes (#/jobs, #/jobs/ID, #/queue, #/models, #/submit), one page at a time.
import { apiKey, setApiKey } from "./api.js";
import { showError } from "./dom.js";
import { jobsPage } from "./pages/jobs.js";
import { jobPage } from "./pages/job.js";
import { queuePage } from "./pages/queue.js";
import { modelsPage } from "./pages/models.js";
import { submitPage } from "./pages/submit.js";

const routes = [
  [/^#\/jobs\/([\w-]+)$/, jobPage, "jobs"],
  [/^#\/jobs$/, jobsPage, "jobs"],
  [/^#\/queue$/, queuePage, "queue"],
  [/^#\/models$/, modelsPage, "models"],
  [/^#\/submit$/, submitPage, "submit"],
];

let leave = null;

function route() {
  if (leave) leave();
  leave = null;
  showError("");
  const hash = location.hash || "#/jobs";
  const found = routes.find(([pattern]) => pattern.test(hash));
  if (!found) { location.hash = "#/jobs"; return; }
  const [pattern, page, nav] = found;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === nav);
  const main = document.getElementById("main");
  main.replaceChildren();
  main.dataset.page = nav;
  leave = page(main, ...hash.match(pattern).slice(1)) || null;
}

function askKey() {
  const dialog = document.getElementById("key-dialog");
  if (dialog.open) return;
  document.getElementById("key-input").value = apiKey() || "";
  dialog.showModal();
}

document.getElementById("key-dialog").addEventListener("close", (ev) => {
  const dialog = ev.target;
  if (dialog.returnValue === "save") setApiKey(document.getElementById("key-input").value.trim());
  if (dialog.returnValue === "forget") setApiKey(null);
  route();
});
document.getElementById("key-button").addEventListener("click", askKey);
document.addEventListener("fq-need-key", askKey);
window.addEventListener("hashchange", route);
route();
