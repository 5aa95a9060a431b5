// trial.js: the trial page (/searches/<id>/trials/<n>): state, configuration, the strategy's
// prediction beside the outcome, metrics per fidelity (table and chart), the scheduler's decisions
// and model downloads.

import {
  API, ApiError, clear, detailSuffix, directionArrow, el, fmtDate, fmtDuration, fmtValue, getJSON,
  objectivesOf, pathParts, reportError, secondsBetween, tableHead, toNumber,
} from "./api.js";
import { draw, loadPlotly, reportsFigure } from "./charts.js";

const [, searchId, , number] = pathParts();
const searchBase = `${API}/searches/${encodeURIComponent(searchId || "")}`;
const $ = (id) => document.getElementById(id);

function kvRows(tbody, entries) {
  clear(tbody);
  for (const [key, value] of entries) {
    tbody.append(el("tr", {}, el("th", {}, key), el("td", { class: "mono" }, fmtValue(value))));
  }
}

function renderHeader(trial, search) {
  const title = `Trial #${trial.number}`;
  document.title = `${title} · ${search ? search.name : searchId} · supernas`;
  $("trial-title").textContent = search ? `${title} of ${search.name}` : title;
  $("crumb-trial").textContent = `trial #${trial.number}`;
  const crumb = $("crumb-search");
  crumb.href = `/searches/${encodeURIComponent(searchId)}`;
  crumb.textContent = search ? search.name : searchId;
  const state = $("trial-state");
  state.textContent = trial.state;
  state.className = `badge state-big ${trial.state}`;
  $("trial-reason").textContent = trial.state_reason || "";
  const duration = trial.started_at ? secondsBetween(trial.started_at, trial.finished_at) : null;
  const meta = clear($("trial-meta"));
  const item = (label, value) => meta.append(el("span", {}, `${label} `, el("b", {}, value)));
  item("Fidelity", fmtValue(trial.fidelity));
  item("Created", fmtDate(trial.created_at));
  item("Started", fmtDate(trial.started_at));
  item("Finished", fmtDate(trial.finished_at));
  item(trial.finished_at ? "Took" : "Running for", fmtDuration(duration));
  renderRetries(trial.retries || []);
}

/** Each retry after an error or a lost worker: when, which attempt, why. */
function renderRetries(retries) {
  const box = clear($("trial-retries"));
  box.hidden = retries.length === 0;
  if (!retries.length) return;
  box.append(el("h3", {}, `Retried ${retries.length} time${retries.length === 1 ? "" : "s"} (from its last checkpoint)`));
  const list = el("ul", { class: "retries" });
  for (const retry of retries) {
    list.append(el("li", {}, `${fmtDate(retry.at)} · attempt ${retry.attempt ?? "?"}: ${retry.reason || "no reason recorded"}`));
  }
  box.append(list);
}

function predictedText(p, suggestion) {
  if (!p) return suggestion ? "not predicted" : "—";
  const std = toNumber(p.std);
  return `${fmtValue(p.mean)}${std !== null ? ` \u00b1 ${fmtValue(p.std)}` : ""}`;
}

/** The predicted {mean, std} of a metric from a suggestion's `predicted` entry (a number or an object). */
function prediction(entry) {
  if (entry === null || entry === undefined) return null;
  if (typeof entry === "object") return { mean: entry.mean, std: entry.std };
  return { mean: entry, std: null };
}

/** actual − predicted mean, and how many standard deviations that is (green within 2). */
function difference(actual, p) {
  const a = toNumber(actual);
  const mean = p ? toNumber(p.mean) : null;
  if (a === null || mean === null || !Number.isFinite(a) || !Number.isFinite(mean)) return { text: "", cls: "" };
  const delta = a - mean;
  const std = toNumber(p.std);
  const text = `${delta >= 0 ? "+" : ""}${fmtValue(delta)}`;
  if (std === null || !(std > 0)) return { text, cls: "" };
  const z = Math.abs(delta) / std;
  return { text: `${text} (${z.toFixed(1)}\u03c3)`, cls: z <= 2 ? "pred-ok" : "pred-off" };
}

function renderPrediction(trial, objectives) {
  const box = clear($("trial-prediction"));
  const suggestion = trial.suggestion;
  if (!suggestion) {
    box.append(el("p", { class: "empty", id: "no-prediction", "data-testid": "no-prediction" },
      "No prediction recorded for this trial."));
  }
  // strategies record `predictions` ({metric: {mean, std}}); `predicted` is accepted as well
  const predicted = (suggestion && (suggestion.predictions || suggestion.predicted)) || {};
  if (suggestion && !Object.keys(predicted).length) {
    const strategy = suggestion.strategy ? ` (${suggestion.strategy})` : "";
    box.append(el("p", { class: "empty", id: "no-prediction", "data-testid": "no-prediction" },
      `No prediction recorded: the strategy${strategy} chose this configuration without predicting its metrics.`));
  }
  const objectiveMetrics = objectives.map((o) => o.metric);
  const metrics = [...objectiveMetrics, ...Object.keys(predicted).filter((m) => !objectiveMetrics.includes(m))];
  const rows = metrics.map((metric) => {
    const objective = objectives.find((o) => o.metric === metric);
    const p = prediction(predicted[metric]);
    const actual = trial.metrics ? trial.metrics[metric] : undefined;
    const diff = difference(actual, p);
    return el("tr", { "data-metric": metric },
      el("th", {}, metric, objective ? ` ${directionArrow(objective.direction)}` : ""),
      el("td", { class: "num", "data-testid": `predicted-${metric}` },
        predictedText(p, suggestion)),
      el("td", { class: "num", "data-testid": `actual-${metric}` },
        actual === undefined ? "not measured" : fmtValue(actual)),
      el("td", { class: `num ${diff.cls}` }, diff.text),
    );
  });
  box.append(el("table", { class: "data", id: "prediction-table" },
    tableHead("Metric", "Predicted (mean \u00b1 std)#", "Actual#", "Actual \u2212 predicted#"),
    el("tbody", {}, rows)));
  if (suggestion) {
    const others = Object.entries(suggestion).filter(([key]) => key !== "predicted" && key !== "predictions");
    if (others.length) {
      const tbody = el("tbody");
      kvRows(tbody, others);
      box.append(el("h3", {}, "Strategy's suggestion"));
      box.append(el("table", { class: "data kv", id: "suggestion-table" }, tbody));
    }
  }
}

function renderReports(trial, objectives) {
  const reports = trial.reports || [];
  const table = $("trial-reports");
  $("reports-empty").hidden = reports.length > 0;
  table.hidden = reports.length === 0;
  const keys = [];
  for (const o of objectives) if (reports.some((r) => r.metrics && o.metric in r.metrics)) keys.push(o.metric);
  for (const r of reports) for (const key of Object.keys(r.metrics || {})) if (!keys.includes(key)) keys.push(key);
  clear(table.tHead).append(el("tr", {},
    el("th", { class: "num" }, "Step"), el("th", { class: "num" }, "Fidelity"),
    keys.map((k) => el("th", { class: "num" }, k)), el("th", {}, "Time")));
  const body = clear(table.tBodies[0]);
  for (const r of reports) {
    body.append(el("tr", {},
      el("td", { class: "num" }, String(r.step)), el("td", { class: "num" }, fmtValue(r.fidelity)),
      keys.map((k) => el("td", { class: "num" }, fmtValue(r.metrics ? r.metrics[k] : null))),
      el("td", { class: "small muted" }, fmtDate(r.created_at))));
  }
  const select = clear($("report-metric"));
  const numeric = keys.filter((k) => reports.some((r) => r.metrics && Number.isFinite(toNumber(r.metrics[k]))));
  for (const k of numeric) select.append(el("option", { value: k }, k));
  if (!numeric.length) {
    $("reports-chart").hidden = true;
    select.disabled = true;
    return;
  }
  const drawChart = () => {
    draw("reports-chart", reportsFigure(reports, select.value))
      .catch((err) => reportError(err, "Could not draw the chart"));
  };
  select.addEventListener("change", drawChart);
  drawChart();
}

// the badge colour of a scheduler action (the state badges' classes)
const ACTION_BADGES = {
  continue: "promoted", promote: "promoted", start: "running", resume: "running", pause: "paused", stop: "stopped",
};

/** A decision's predicted {fidelity, mean, std} (or a bare number) as "mean ± std (at fidelity)". */
function decisionPrediction(predicted) {
  if (predicted === null || predicted === undefined) return "—";
  if (typeof predicted !== "object") return fmtValue(predicted);
  const std = toNumber(predicted.std);
  const at = predicted.fidelity === null || predicted.fidelity === undefined ? "" : ` (at ${fmtValue(predicted.fidelity)})`;
  return `${fmtValue(predicted.mean)}${std !== null ? ` \u00b1 ${fmtValue(predicted.std)}` : ""}${at}`;
}

/** Each decision of the multi-fidelity scheduler, oldest first; hidden when there is none. */
function renderDecisions(decisions) {
  const box = $("trial-decisions");
  box.hidden = decisions.length === 0;
  const table = $("decisions-table");
  clear(table.tHead).append(tableHead(
    "Time", "Action", "Fidelity#", "Rung#", "Predicted (mean \u00b1 std)#", "Acquisition#", "Reason").firstChild);
  const body = clear(table.tBodies[0]);
  for (const d of decisions) {
    const action = d.action || "?";
    body.append(el("tr", { "data-action": action },
      el("td", { class: "small muted" }, fmtDate(d.at)),
      el("td", {}, el("span", { class: `badge ${ACTION_BADGES[action] || ""}` }, action)),
      el("td", { class: "num" }, fmtValue(d.fidelity)),
      el("td", { class: "num" }, fmtValue(d.rung)),
      el("td", { class: "num" }, decisionPrediction(d.predicted)),
      el("td", { class: "num" }, fmtValue(d.acquisition)),
      el("td", {}, d.reason || "—")));
  }
}

// A quantized search's genes: qw_{unit} (weights) and qa_{unit} (activations, only with quantized weights).
function policyOf(config) {
  return Object.keys(config || {}).filter((k) => k.startsWith("qw_")).map((k) => {
    const unit = k.slice(3);
    const weights = String(config[k]);
    const activations = weights === "float" ? "float" : String(config[`qa_${unit}`] ?? "float");
    return { unit, weights, activations };
  });
}

function renderPolicy(trial) {
  const policy = policyOf(trial.config);
  const section = $("trial-policy");
  section.hidden = policy.length === 0;
  if (!policy.length) return;
  const quantized = policy.filter((p) => p.weights !== "float").length;
  const m = trial.metrics || {};
  let summary = `${quantized} of ${policy.length} layers quantized.`;
  if (Number.isFinite(toNumber(m.fake_quant_accuracy)) && Number.isFinite(toNumber(m.accuracy))) {
    const gap = (toNumber(m.fake_quant_accuracy) - toNumber(m.accuracy)) * 100;
    summary += ` Real model (ONNX Runtime): accuracy ${fmtValue(m.accuracy)}; fake-quantized estimate `
      + `${fmtValue(m.fake_quant_accuracy)} (gap ${gap.toFixed(2)} points).`;
  }
  $("policy-summary").textContent = summary;
  const table = $("policy-table");
  clear(table.tHead).append(el("tr", {}, ["layer", "weights", "activations"].map((h) => el("th", {}, h))));
  const body = clear(table.tBodies[0]);
  for (const p of policy) {
    body.append(el("tr", { "data-unit": p.unit }, [
      el("td", {}, p.unit), el("td", {}, p.weights), el("td", {}, p.activations)]));
  }
}

function renderArtifacts(trial) {
  const box = clear($("artifacts"));
  const formats = trial.model_formats || (trial.has_model ? ["torchscript", "onnx", "manifest"] : []);
  if (!formats.length) {
    const why = trial.state === "succeeded"
      ? "none was exported"
      : "only trials that ran to the last fidelity are exported";
    box.append(el("p", { class: "empty", id: "no-artifacts" },
      `No model: ${why}${trial.state_reason ? ` (${trial.state_reason})` : ""}.`));
    return;
  }
  box.append(el("div", { class: "row" }, formats.map((format) => el("a", {
    class: "button download",
    href: `${searchBase}/trials/${encodeURIComponent(number)}/model?format=${encodeURIComponent(format)}`,
    download: "",
    "data-format": format,
    "data-testid": `download-${format}`,
  }, `\u2913 ${format}`))));
}

async function main() {
  if (!searchId || number === undefined) return;
  const requests = Promise.allSettled([
    getJSON(`${searchBase}/trials/${encodeURIComponent(number)}`),
    getJSON(searchBase),
  ]);
  loadPlotly().catch(() => {}); // runs while the server answers; a failure shows when the chart is drawn
  const [trialResult, searchResult] = await requests;
  $("loading").hidden = true;
  if (trialResult.status === "rejected") {
    const err = trialResult.reason;
    const box = $("page-error");
    box.hidden = false;
    if (err instanceof ApiError && err.status === 404) {
      box.textContent = `Trial ${number} of search ${searchId} not found${detailSuffix(err)}.`;
    } else {
      box.textContent = `Could not load trial ${number}: ${err.message}`;
      if (err instanceof ApiError && err.isNetwork) reportError(err);
    }
    document.body.dataset.ready = "1";
    return;
  }
  const trial = trialResult.value;
  const search = searchResult.status === "fulfilled" ? searchResult.value : null;
  if (!search) reportError(searchResult.reason, "Could not load the search");
  const objectives = search ? objectivesOf(search) : [];
  $("trial-content").hidden = false;
  renderHeader(trial, search);
  kvRows($("trial-config").tBodies[0], Object.entries(trial.config || {}));
  kvRows($("trial-metrics").tBodies[0], Object.entries(trial.metrics || {}));
  renderPrediction(trial, objectives);
  renderReports(trial, objectives);
  renderDecisions(trial.decisions || []);
  renderPolicy(trial);
  renderArtifacts(trial);
  window.__dashboardReady = true;
  document.body.dataset.ready = "1";
}

main();
