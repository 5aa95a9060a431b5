// search.js: the search page (/searches/<id>): header and lifecycle buttons, Pareto front (with time
// slider and comparison), hypervolume, trials table, learning curves, scheduler decisions, downloads,
// and live updates by polling /changes (no page reload).

import {
  API, ApiError, TERMINAL_SEARCH_STATES, badge, clear, debounce, detailSuffix, directionArrow, el,
  fmtDate, fmtDuration, fmtValue, getJSON, hideBanner, objectivesOf, pathParts, progressOf,
  reportError, request, showBanner, tableHead, toNumber,
} from "./api.js";
import {
  bestOverTimeFigure, curvesFigure, draw, frontFigure, hypervolumeFigure, loadPlotly, onPointClick,
  purge, referenceText, visibleIndices, webglAvailable,
} from "./charts.js";

const POLL_MS = 2000;
const TRIALS_PAGE_SIZE = 50;
const DECISIONS_PAGE_SIZE = 100;
const SLIDER_STEPS = 1000;
const ACTIONS = ["pause", "resume", "stop", "cancel"];
const MAX_DOWNLOADS = 100;

const searchId = pathParts()[1];
const base = `${API}/searches/${encodeURIComponent(searchId)}`;

// The front's points and the first trials page are requested at once, alongside the search itself
// (they do not depend on it); each is used by its first load only.
const prefetched = searchId
  ? {
    points: getJSON(`${base}/points`),
    trials: getJSON(`${base}/trials`, { page_size: TRIALS_PAGE_SIZE, sort: "number", order: "asc" }),
  }
  : {};
for (const promise of Object.values(prefetched)) promise.catch(() => {}); // errors are shown on use
if (searchId) loadPlotly().catch(() => {}); // runs while the server answers; a failure shows on use

function takePrefetched(name) {
  const promise = prefetched[name];
  delete prefetched[name];
  return promise;
}

const S = {
  search: null,
  objectives: [],
  points: null,
  view: { mode: "2d", pair: [0, 1] },
  sliderValue: SLIDER_STEPS, // SLIDER_STEPS: the latest front
  range: null, // {first, last} seconds since the start, over all points
  compare: null, // {id, name, points}
  pointsSeq: 0,
  trials: { tokens: [null], sort: "number", order: "asc", state: "", next: null, seq: 0 },
  curvesMetric: null,
  decisions: { items: [], next: null, total: 0 },
  cursor: null,
  polling: false,
  refreshing: null,
  refreshAgain: false,
};

const $ = (id) => document.getElementById(id);
const trialHref = (number, id = searchId) => `/searches/${encodeURIComponent(id)}/trials/${number}`;

function sectionError(id, err, what) {
  if (err instanceof ApiError && err.isNetwork) reportError(err);
  const node = $(id);
  node.hidden = false;
  node.classList.add("notice", "error");
  node.textContent = `${what}: ${err.message}`;
}

function setEmpty(id, text) {
  const node = $(id);
  node.classList.remove("notice", "error");
  node.hidden = !text;
  node.textContent = text || "";
}

// ---- header and lifecycle ----

function allowedActions(search) {
  const state = search.state;
  const pending = search.requested_action;
  const canceling = Boolean(search.cancel_requested);
  return {
    pause: (state === "queued" || state === "running") && !pending && !canceling,
    // resume a paused search, or withdraw a pause that waits for running trials
    resume: state === "paused" || (state === "running" && pending === "pause" && !canceling),
    stop: (state === "running" || state === "paused") && pending !== "stop" && !canceling,
    cancel: !TERMINAL_SEARCH_STATES.has(state) && !canceling,
  };
}

function renderHeader(search) {
  const progress = progressOf(search);
  document.title = `${search.name} · supernas`;
  $("crumb-name").textContent = search.name;
  $("search-name").textContent = search.name;
  const state = $("state");
  state.textContent = search.state;
  state.className = `badge state-big ${search.state}`;
  state.dataset.state = search.state;
  let reason = search.state_reason || "";
  const requested = search.requested_action ? `${search.requested_action} requested` : "";
  if (requested && !TERMINAL_SEARCH_STATES.has(search.state) && !reason.includes(requested)) {
    const waiting =
      search.requested_action === "pause"
        ? "running trials pause after their step"
        : "running trials finish first";
    reason = `${reason}${reason ? " · " : ""}${requested}: ${waiting}`;
  }
  $("state-reason").textContent = reason;
  const failed = $("failed-reason");
  failed.hidden = search.state !== "failed";
  const why = search.state_reason || "no reason recorded";
  failed.textContent = search.state === "failed" ? `Search failed: ${why}` : "";
  $("progress").textContent = `${progress.trials_done} / ${progress.max_trials ?? "?"} trials`;
  const fraction = progress.max_trials ? Math.min(1, progress.trials_done / progress.max_trials) : 0;
  $("progress-bar").style.width = `${fraction * 100}%`;
  $("elapsed").textContent = progress.elapsed_s != null ? fmtDuration(progress.elapsed_s) : "not started";
  $("task").textContent = (search.spec && search.spec.task) || "—";
  $("strategy").textContent = (search.spec && search.spec.strategy) || "—";
  $("created").textContent = fmtDate(search.created_at);
  const best = clear($("best"));
  for (const objective of objectivesOf(search)) {
    const found = search.best && search.best[objective.metric];
    const value = found
      ? el("b", {}, fmtValue(found.value), " ", el("a", { href: trialHref(found.trial_number) }, `#${found.trial_number}`))
      : el("b", {}, "—");
    best.append(el("span", {}, `best ${objective.metric} ${directionArrow(objective.direction)} `, value));
  }
  const allowed = allowedActions(search);
  for (const action of ACTIONS) $(`btn-${action}`).disabled = !allowed[action];
}

async function runAction(action) {
  const message = $("action-message");
  for (const a of ACTIONS) $(`btn-${a}`).disabled = true;
  try {
    const search = await request("POST", `${base}/${action}`);
    S.search = search;
    renderHeader(search);
    message.hidden = false;
    message.classList.remove("error");
    message.textContent = `${action} accepted: the search is ${search.state}`;
    ensurePolling();
  } catch (err) {
    if (err instanceof ApiError && err.isNetwork) {
      renderHeader(S.search);
      reportError(err, `Could not ${action} the search`);
      return;
    }
    message.hidden = false;
    message.classList.add("error");
    message.textContent = `Cannot ${action} this search: ${err.message}`;
    // the search probably changed under us (409): show its current state
    try {
      S.search = await getJSON(base);
    } catch {
      // keep the last known state
    }
    renderHeader(S.search);
  }
}

// ---- Pareto front ----

function setupViewControls() {
  const n = S.objectives.length;
  const xs = $("obj-x");
  const ys = $("obj-y");
  for (const select of [xs, ys]) {
    clear(select);
    S.objectives.forEach((o, k) => {
      select.append(el("option", { value: String(k) }, `${o.metric} ${directionArrow(o.direction)}`));
    });
  }
  if (n === 1) {
    S.view = { mode: "1d", pair: [0, 0] };
    $("front-title").textContent = `${S.objectives[0].metric} by trial`;
    $("hv-title").textContent = `Best ${S.objectives[0].metric} over time`;
    return;
  }
  const in3d = n === 3 && webglAvailable(); // 3D needs WebGL; pairs otherwise
  S.view = { mode: in3d ? "3d" : "2d", pair: [0, 1] };
  xs.value = "0";
  ys.value = "1";
  $("pair-controls").hidden = in3d;
  $("view-3d-label").hidden = !in3d;
  const onPair = (changed) => {
    let kx = Number(xs.value);
    let ky = Number(ys.value);
    if (kx === ky) {
      // keep the two axes different: the other select takes the value this one had
      const [oldX, oldY] = S.view.pair;
      if (changed === "x") ky = oldX;
      else kx = oldY;
      xs.value = String(kx);
      ys.value = String(ky);
    }
    S.view.pair = [kx, ky];
    renderFront();
  };
  xs.addEventListener("change", () => onPair("x"));
  ys.addEventListener("change", () => onPair("y"));
  $("view-3d").addEventListener("change", (event) => {
    S.view.mode = event.target.checked ? "3d" : "2d";
    $("pair-controls").hidden = S.view.mode === "3d";
    renderFront();
  });
}

function untilS() {
  if (!S.range || S.sliderValue >= SLIDER_STEPS) return null;
  return S.range.first + ((S.range.last - S.range.first) * S.sliderValue) / SLIDER_STEPS;
}

function frontEmptyText(points) {
  const counts = (S.search && S.search.trial_counts) || {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  if (points.numbers.length === 0) {
    if (total === 0) {
      return S.search && TERMINAL_SEARCH_STATES.has(S.search.state)
        ? `No trial ran: the search ended ${S.search.state}.`
        : "No trials yet: the front appears when the first trials finish.";
    }
    const failed = (counts.failed || 0) + (counts.lost || 0);
    if (failed === total) return `No Pareto front: all ${total} trial(s) failed.`;
    return "No trial has finished with a value for every objective yet.";
  }
  if (!points.feasible.some(Boolean)) return "No feasible point yet: every finished trial violates a constraint.";
  return "";
}

async function renderFront() {
  const points = S.points;
  if (!points) return;
  const empty = frontEmptyText(points);
  setEmpty("front-empty", empty);
  const gd = $("front-chart");
  if (points.numbers.length === 0) {
    await purge("front-chart");
    gd.dataset.points = "0";
    gd.dataset.front = "0";
    return;
  }
  const until = untilS();
  const compare = S.compare ? { name: S.compare.name, points: S.compare.points } : null;
  const figure = frontFigure(points, S.view, until, compare);
  await draw("front-chart", figure);
  const shown = visibleIndices(points, until);
  gd.dataset.points = String(shown.length);
  gd.dataset.front = String(shown.filter((i) => points.on_front[i]).length);
  onPointClick(gd, (number, id) => window.location.assign(trialHref(number, id || searchId)));
  performance.mark("front-rendered");
}

function renderSlider() {
  const points = S.points;
  const row = $("slider-row");
  const first = points ? points.first_finished_s : null;
  const last = points ? points.last_finished_s : null;
  if (first === null || last === null || last <= first) {
    row.hidden = true;
    return;
  }
  S.range = { first, last };
  row.hidden = false;
  $("time-slider").value = String(S.sliderValue);
  updateSliderLabel();
}

function updateSliderLabel() {
  const until = untilS();
  const shown = S.points ? visibleIndices(S.points, until).length : 0;
  $("time-label").textContent = until === null
    ? `latest (${fmtDuration(S.range.last)} after the start, ${shown} points)`
    : `${fmtDuration(until)} after the start (${shown} points)`;
}

function beforeParam() {
  const until = untilS();
  if (until === null || !S.points || !S.points.started_at) return undefined;
  return new Date(Date.parse(S.points.started_at) + Math.ceil(until * 1000) + 1).toISOString();
}

async function loadPoints() {
  const seq = ++S.pointsSeq;
  const before = beforeParam();
  const first = takePrefetched("points");
  const points = await (first && !before ? first : getJSON(`${base}/points`, { before }));
  if (seq !== S.pointsSeq) return; // a newer load (slider moved, live update) supersedes this one
  if (!performance.getEntriesByName("points-loaded").length) performance.mark("points-loaded");
  S.points = points;
  if (S.cursor === null) S.cursor = points.cursor;
  renderSlider();
  await renderFront();
  if (S.objectives.length === 1) await renderBestOverTime();
}

function setupSlider() {
  const slider = $("time-slider");
  const refetch = debounce(() => {
    loadPoints().catch((err) => reportError(err, "Could not load the front at that time"));
  }, 250);
  slider.addEventListener("input", () => {
    S.sliderValue = Number(slider.value);
    updateSliderLabel();
    renderFront(); // at once from the points we have; the front of that time follows from the server
    refetch();
  });
}

// ---- comparison with another search ----

function sameMetrics(a, b) {
  const key = (objectives) => objectives.map((o) => o.metric).sort().join(",");
  return key(a) === key(b);
}

async function loadCompareOptions() {
  const select = $("compare-select");
  const page = await getJSON(`${API}/searches`, { page_size: 100 });
  const others = page.items.filter((s) => s.id !== searchId && sameMetrics(objectivesOf(s), S.objectives));
  clear(select);
  const none = others.length ? "— no other search —" : "— no other search with these objectives —";
  select.append(el("option", { value: "" }, none));
  for (const other of others) {
    const label = `${other.name} (${other.state}, ${other.id.slice(0, 8)})`;
    select.append(el("option", { value: other.id, dataset: { name: other.name } }, label));
  }
  select.disabled = others.length === 0;
}

function setupCompare() {
  const select = $("compare-select");
  select.addEventListener("change", async () => {
    const id = select.value;
    if (!id) {
      S.compare = null;
      renderFront();
      return;
    }
    const name = select.selectedOptions[0].dataset.name || id;
    try {
      const points = await getJSON(`${API}/searches/${encodeURIComponent(id)}/points`);
      S.compare = { id, name, points };
      await renderFront();
    } catch (err) {
      reportError(err, `Could not load the front of ${name}`);
    }
  });
}

// ---- hypervolume / best over time ----

async function loadHypervolume() {
  if (S.objectives.length < 2) return; // one objective: best over time, drawn from the points
  const hv = await getJSON(`${base}/hypervolume`);
  $("hv-ref").textContent = hv.reference_point ? `Reference point: ${referenceText(hv)}` : "";
  if (!hv.series.length) {
    setEmpty("hv-empty", "No hypervolume yet: it needs feasible points.");
    await purge("hv-chart");
    return;
  }
  setEmpty("hv-empty", "");
  await draw("hv-chart", hypervolumeFigure(hv, S.points ? S.points.last_finished_s : null));
}

async function renderBestOverTime() {
  const points = S.points;
  if (!points.feasible.some(Boolean)) {
    setEmpty("hv-empty", "No feasible point yet.");
    $("hv-ref").textContent = "Hypervolume needs two objectives; this search has one.";
    await purge("hv-chart");
    return;
  }
  setEmpty("hv-empty", "");
  $("hv-ref").textContent = "Hypervolume needs two objectives; this search has one, so its best value is shown.";
  await draw("hv-chart", bestOverTimeFigure(points));
}

// ---- trials table ----

function defaultOrder(key) {
  const objective = S.objectives.find((o) => o.metric === key);
  if (objective) return objective.direction === "maximize" ? "desc" : "asc";
  return key === "fidelity" ? "desc" : "asc";
}

function renderTrialsHead() {
  const columns = [
    { key: "number", label: "#", num: true },
    { key: "state", label: "State" },
    { key: "fidelity", label: "Fidelity", num: true },
    ...S.objectives.map((o) => ({ key: o.metric, label: `${o.metric} ${directionArrow(o.direction)}`, num: true })),
    { label: "Reason" },
    { label: "Finished" },
  ];
  const row = el("tr");
  for (const column of columns) {
    if (!column.key) {
      row.append(el("th", {}, column.label));
      continue;
    }
    const active = S.trials.sort === column.key;
    const th = el("th", {
      class: `sortable${column.num ? " num" : ""}`,
      "data-sort": column.key,
      "aria-sort": active ? (S.trials.order === "asc" ? "ascending" : "descending") : "none",
      title: `Sort by ${column.key}`,
      tabindex: "0",
    }, column.label);
    const sortBy = () => {
      if (S.trials.sort === column.key) S.trials.order = S.trials.order === "asc" ? "desc" : "asc";
      else Object.assign(S.trials, { sort: column.key, order: defaultOrder(column.key) });
      S.trials.tokens = [null];
      loadTrials().catch((err) => sectionError("trials-empty", err, "Could not load the trials"));
    };
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", (event) => { if (event.key === "Enter") sortBy(); });
    row.append(th);
  }
  clear($("trials-table").tHead).append(row);
}

async function loadTrials() {
  const t = S.trials;
  const seq = ++t.seq;
  const prefetchedPage = takePrefetched("trials");
  const page = await (prefetchedPage || getJSON(`${base}/trials`, {
    page_size: TRIALS_PAGE_SIZE,
    page_token: t.tokens[t.tokens.length - 1],
    state: t.state,
    sort: t.sort,
    order: t.order,
  }));
  if (seq !== t.seq) return; // another sort, filter or page was asked for meanwhile
  t.next = page.next_page_token;
  renderTrialsHead();
  const body = clear($("trials-table").tBodies[0]);
  for (const trial of page.items) {
    const href = trialHref(trial.number);
    const tr = el("tr", { class: "clickable", "data-number": String(trial.number) },
      el("td", { class: "num" }, el("a", { href }, `#${trial.number}`)),
      el("td", {}, badge(trial.state)),
      el("td", { class: "num" }, fmtValue(trial.fidelity)),
      ...S.objectives.map((o) => el("td", { class: "num" }, fmtValue((trial.metrics || {})[o.metric]))),
      el("td", { class: "small muted" }, trial.state_reason || ""),
      el("td", { class: "small muted" }, trial.finished_at ? fmtDate(trial.finished_at) : ""),
    );
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      window.location.assign(href);
    });
    body.append(tr);
  }
  const pageNumber = t.tokens.length;
  const first = (pageNumber - 1) * TRIALS_PAGE_SIZE + 1;
  const last = first + page.items.length - 1;
  $("trials-info").textContent = page.items.length ? `${first}\u2013${last} of ${page.total}` : "";
  $("trials-total").textContent = `(${page.total}${t.state ? ` ${t.state}` : ""})`;
  $("trials-prev").disabled = pageNumber <= 1;
  $("trials-next").disabled = !t.next;
  $("trials-table").hidden = page.items.length === 0;
  setEmpty("trials-empty", page.items.length ? "" : t.state ? `No ${t.state} trials` : "No trials yet");
  performance.mark("trials-rendered");
}

function setupTrials() {
  const reload = () => loadTrials().catch((err) => sectionError("trials-empty", err, "Could not load the trials"));
  $("trial-state-filter").addEventListener("change", (event) => {
    S.trials.state = event.target.value;
    S.trials.tokens = [null];
    reload();
  });
  $("trials-next").addEventListener("click", () => {
    if (!S.trials.next) return;
    S.trials.tokens.push(S.trials.next);
    reload();
  });
  $("trials-prev").addEventListener("click", () => {
    if (S.trials.tokens.length <= 1) return;
    S.trials.tokens.pop();
    reload();
  });
}

// ---- learning curves ----

async function loadCurves() {
  const curves = await getJSON(`${base}/curves`, { metric: S.curvesMetric, limit: 50 });
  const withValues = curves.trials.filter((t) => t.values.some((v) => v !== null));
  if (!withValues.length) {
    setEmpty("curves-empty", "No learning curves yet");
    await purge("curves-chart");
    return;
  }
  setEmpty("curves-empty", "");
  const gd = await draw("curves-chart", curvesFigure({ ...curves, trials: withValues }, searchId));
  onPointClick(gd, (number) => window.location.assign(trialHref(number)));
}

function setupCurves() {
  const select = $("curve-metric");
  for (const o of S.objectives) select.append(el("option", { value: o.metric }, o.metric));
  S.curvesMetric = S.objectives.length ? S.objectives[0].metric : null;
  select.addEventListener("change", () => {
    S.curvesMetric = select.value;
    loadCurves().catch((err) => sectionError("curves-empty", err, "Could not load the learning curves"));
  });
}

// ---- scheduler decisions ----

async function loadDecisions(more = false) {
  const token = more ? S.decisions.next : undefined;
  const page = await getJSON(`${base}/decisions`, { page_size: DECISIONS_PAGE_SIZE, page_token: token });
  S.decisions = {
    items: more ? [...S.decisions.items, ...page.items] : page.items,
    next: page.next_page_token,
    total: page.total,
  };
  const box = clear($("decisions"));
  box.classList.remove("notice", "error"); // after an earlier failure
  $("decisions-more").hidden = !page.next_page_token;
  $("decisions-total").textContent = S.decisions.total ? `(${S.decisions.total})` : "";
  if (!S.decisions.items.length) {
    const attrs = { class: "empty", id: "decisions-empty", "data-testid": "decisions-empty" };
    box.append(el("p", attrs, "No scheduler decisions yet"));
    return;
  }
  const rows = S.decisions.items.map((d) => el("tr", {},
    el("td", { class: "num" }, el("a", { href: trialHref(d.trial_number) }, `#${d.trial_number}`)),
    el("td", {}, badge(d.decision)),
    el("td", { class: "num" }, fmtValue(d.fidelity)),
    el("td", { class: "small" }, d.reason || ""),
    el("td", { class: "small muted" }, fmtDate(d.at)),
  ));
  box.append(el("table", { class: "data", id: "decisions-table" },
    tableHead("Trial#", "Decision", "Fidelity#", "Reason", "Time"),
    el("tbody", {}, rows)));
}

// ---- downloads ----

async function loadDownloads() {
  const pareto = await getJSON(`${base}/pareto`);
  const box = clear($("downloads"));
  box.classList.remove("notice", "error"); // after an earlier failure
  if (!pareto.trials.length) {
    box.append(el("p", { class: "empty", id: "downloads-empty" }, "No Pareto points yet: nothing to download."));
    return;
  }
  const list = el("ul", { class: "downloads-list" });
  const first = pareto.objectives[0];
  const sign = first.direction === "maximize" ? -1 : 1;
  const value = (trial) => toNumber(trial.metrics[first.metric]);
  const trials = [...pareto.trials].sort((a, b) => sign * (value(a) - value(b)));
  for (const trial of trials.slice(0, MAX_DOWNLOADS)) {
    const formats = trial.model_formats || (trial.has_model ? ["torchscript", "onnx", "manifest"] : []);
    const values = pareto.objectives.map((o) => `${o.metric} ${fmtValue(trial.metrics[o.metric])}`).join(" · ");
    list.append(el("li", { "data-number": String(trial.number) },
      el("a", { href: trialHref(trial.number) }, el("b", {}, `#${trial.number}`)),
      el("span", { class: "small" }, values),
      formats.length
        ? formats.map((format) => el("a", {
          class: "button small download",
          href: `${base}/trials/${trial.number}/model?format=${encodeURIComponent(format)}`,
          download: "",
          "data-format": format,
          "data-testid": `download-${trial.number}-${format}`,
        }, `\u2913 ${format}`))
        : el("span", { class: "muted small" }, "no model exported"),
    ));
  }
  box.append(list);
  if (trials.length > MAX_DOWNLOADS) {
    box.append(el("p", { class: "muted small" },
      `Showing the ${MAX_DOWNLOADS} best of ${trials.length} Pareto points by ${first.metric}; `
      + "the others are in the trials table."));
  }
}

// ---- loading, refreshing and polling ----

const SECTIONS = {
  points: [() => loadPoints(), "front-empty", "Could not load the points"],
  hypervolume: [() => loadHypervolume(), "hv-empty", "Could not load the hypervolume"],
  curves: [() => loadCurves(), "curves-empty", "Could not load the learning curves"],
  decisions: [() => loadDecisions(), "decisions", "Could not load the scheduler decisions"],
  downloads: [() => loadDownloads(), "downloads", "Could not load the Pareto front"],
  trials: [() => loadTrials(), "trials-empty", "Could not load the trials"],
};

async function loadSections(names) {
  await Promise.all(names.map(async (name) => {
    const [load, errorBox, what] = SECTIONS[name];
    try {
      await load();
    } catch (err) {
      sectionError(errorBox, err, what);
    }
  }));
}

/** Re-fetch everything that trials feed. */
async function refreshAll() {
  if (S.refreshing) {
    S.refreshAgain = true;
    return S.refreshing;
  }
  S.refreshing = (async () => {
    do {
      S.refreshAgain = false;
      await loadSections(["points", "hypervolume", "trials", "curves", "decisions", "downloads"]);
    } while (S.refreshAgain);
  })();
  try {
    await S.refreshing;
  } finally {
    S.refreshing = null;
  }
}

function ensurePolling() {
  if (S.polling) return;
  S.polling = true;
  setTimeout(poll, POLL_MS);
}

async function poll() {
  let search = S.search;
  let trialsChanged = false;
  try {
    if (S.cursor === null) S.cursor = (await getJSON(`${base}/changes`)).cursor;
    let more = true;
    while (more) {
      const changes = await getJSON(`${base}/changes`, { after: S.cursor });
      S.cursor = changes.cursor;
      search = changes.search;
      trialsChanged = trialsChanged || changes.trials.length > 0;
      more = changes.has_more;
    }
    hideBanner("poll");
  } catch (err) {
    const lost = err instanceof ApiError && err.isNetwork;
    const why = lost ? "Lost the connection to the service" : `Live updates failed: ${err.message}`;
    showBanner(`${why}; retrying\u2026`, "poll");
    setTimeout(poll, POLL_MS * 2);
    return;
  }
  const stateChanged = search.state !== S.search.state;
  S.search = search;
  renderHeader(search);
  if (trialsChanged || stateChanged) await refreshAll();
  if (TERMINAL_SEARCH_STATES.has(search.state)) {
    S.polling = false; // nothing changes any more
    return;
  }
  setTimeout(poll, POLL_MS);
}

async function main() {
  if (!searchId) return;
  let search;
  try {
    search = await getJSON(base);
  } catch (err) {
    $("loading").hidden = true;
    const box = $("page-error");
    box.hidden = false;
    if (err instanceof ApiError && err.status === 404) {
      box.textContent = `Search ${searchId} not found${detailSuffix(err)}.`;
      document.title = "Search not found · supernas";
    } else {
      box.textContent = `Could not load search ${searchId}: ${err.message}`;
      if (err.isNetwork) reportError(err);
    }
    markReady();
    return;
  }
  S.search = search;
  S.objectives = objectivesOf(search);
  $("loading").hidden = true;
  $("search-content").hidden = false;
  renderHeader(search);
  for (const action of ACTIONS) $(`btn-${action}`).addEventListener("click", () => runAction(action));
  setupViewControls();
  setupSlider();
  setupCompare();
  setupTrials();
  setupCurves();
  $("decisions-more").addEventListener("click", () => {
    loadDecisions(true).catch((err) => reportError(err, "Could not load older decisions"));
  });
  // the front and the trials first: the other views would compete with them for the server
  await loadSections(["points", "trials"]);
  await Promise.all([
    loadSections(["hypervolume", "curves", "decisions", "downloads"]),
    loadCompareOptions().catch((err) => reportError(err, "Could not list searches to compare with")),
  ]);
  markReady();
  if (!TERMINAL_SEARCH_STATES.has(search.state)) ensurePolling();
}

/** For tests and curious users: the first load is complete. */
function markReady() {
  window.__dashboardReady = true;
  document.body.dataset.ready = "1";
}

main();
