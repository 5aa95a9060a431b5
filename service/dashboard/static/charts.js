// charts.js: the Plotly figures of the dashboard: the Pareto front (value vs trial for one objective,
// a 2D objective pair, or 3D), hypervolume (or best value) over time, and learning curves.
// Figures are plain {data, layout} objects; draw() renders them with Plotly.react.

import { fmtValue, toNumber } from "./api.js";

/** Above this many points a 2D trace is drawn with WebGL (scattergl) instead of SVG. */
export const LARGE_TRACE = 1500;
const MAX_CONFIG_LINES = 14;

export const COLORS = {
  feasible: "#6f9fe0",
  front: "#e4572e",
  infeasible: "#8d96a3",
  compare: "#1f9e6e",
  line: "#2f6fdb",
};

const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

const PLOTLY_SRC = "/static/plotly.min.js";
let plotlyPromise = null;

/**
 * Resolves with window.Plotly, running /static/plotly.min.js on the first call. The pages preload the
 * file (<link rel="preload">) and call this once their first API requests are on their way: running
 * plotly.js (4.6 MB) holds the main thread for a moment, and the server can answer meanwhile.
 */
export function loadPlotly() {
  if (plotlyPromise) return plotlyPromise;
  plotlyPromise = window.Plotly
    ? Promise.resolve(window.Plotly)
    : new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = PLOTLY_SRC;
      script.addEventListener("load", () => {
        performance.mark("plotly-ready");
        resolve(window.Plotly);
      });
      script.addEventListener("error", () => reject(new Error(`could not load ${PLOTLY_SRC}`)));
      document.head.append(script);
    });
  return plotlyPromise;
}

/** Render `figure` into the element `id` (created or updated in place, keeping zoom via uirevision). */
export async function draw(id, figure) {
  const Plotly = await loadPlotly();
  const gd = document.getElementById(id);
  gd.hidden = false;
  await Plotly.react(gd, figure.data, figure.layout, PLOT_CONFIG);
  return gd;
}

export async function purge(id) {
  const gd = document.getElementById(id);
  if (!gd) return;
  gd.hidden = true;
  if (window.Plotly && gd.data) window.Plotly.purge(gd);
}

let webgl = null;

/**
 * Whether the browser can draw WebGL (scattergl, scatter3d); without it the charts use SVG scatter
 * and 2D objective pairs. Recorded as <html data-webgl="1|0">.
 */
export function webglAvailable() {
  if (webgl === null) {
    try {
      const context = document.createElement("canvas").getContext("webgl");
      webgl = Boolean(context);
      const lose = context && context.getExtension("WEBGL_lose_context");
      if (lose) lose.loseContext(); // only a probe: give the context back at once
    } catch {
      webgl = false;
    }
    document.documentElement.dataset.webgl = webgl ? "1" : "0";
  }
  return webgl;
}

/** Calls onClick(trialNumber, searchId) when a point carrying a trial number is clicked. */
export function onPointClick(gd, onClick) {
  if (gd.dataset.clickBound) return;
  gd.dataset.clickBound = "1";
  gd.on("plotly_click", (event) => {
    const point = event && event.points && event.points[0];
    if (!point || typeof point.customdata !== "number") return;
    onClick(point.customdata, point.data.meta && point.data.meta.searchId);
  });
}

// ---- hover text ----

function escapeHtml(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function configLines(config) {
  if (config === null || config === undefined) return ["<i>click to open the trial</i>"];
  const entries = Object.entries(config);
  const lines = entries
    .slice(0, MAX_CONFIG_LINES)
    .map(([key, value]) => `${escapeHtml(key)} = ${escapeHtml(fmtValue(value))}`);
  const more = entries.length - MAX_CONFIG_LINES;
  if (more > 0) lines.push(`\u2026 ${more} more (click to open)`);
  return lines;
}

/** The hover text of point i of a /points response. */
export function pointHover(points, i, label = "") {
  const lines = [`<b>${label}trial #${points.numbers[i]}</b>`];
  points.objectives.forEach((objective, k) => {
    lines.push(`${escapeHtml(objective.metric)}: ${fmtValue(points.values[i][k])}`);
  });
  if (!points.feasible[i]) {
    const reason = points.reasons && points.reasons[i];
    lines.push(`<i>infeasible${reason ? `: ${escapeHtml(reason)}` : ""}</i>`);
  }
  if (points.on_front[i]) lines.push("<i>on the Pareto front</i>");
  lines.push("\u2014 config \u2014", ...configLines(points.configs ? points.configs[i] : null));
  return lines.join("<br>");
}

// ---- the Pareto front ----

function axisTitle(objective) {
  return `${objective.metric} (${objective.direction === "maximize" ? "max \u2191" : "min \u2193"})`;
}

/** Indices of `points` whose finished_s is at most `untilS` (all when untilS is null). */
export function visibleIndices(points, untilS) {
  const indices = [];
  for (let i = 0; i < points.numbers.length; i++) {
    if (untilS === null || untilS === undefined || points.finished_s[i] <= untilS + 1e-3) indices.push(i);
  }
  return indices;
}

/** Subsets of `indices`: feasible points off the front, infeasible points, front points. */
function split(points, indices) {
  const groups = { feasible: [], infeasible: [], front: [] };
  for (const i of indices) {
    if (!points.feasible[i]) groups.infeasible.push(i);
    else if (points.on_front[i]) groups.front.push(i);
    else groups.feasible.push(i);
  }
  return groups;
}

/** The 2D non-dominated subset of `indices` for objectives kx, ky, sorted by x ascending. */
function front2d(points, indices, kx, ky) {
  const sx = points.objectives[kx].direction === "maximize" ? -1 : 1;
  const sy = points.objectives[ky].direction === "maximize" ? -1 : 1;
  const x = (i) => sx * points.values[i][kx];
  const y = (i) => sy * points.values[i][ky];
  const sorted = [...indices].sort((a, b) => x(a) - x(b) || y(a) - y(b));
  const kept = [];
  let bestY = Infinity;
  for (const i of sorted) {
    if (y(i) < bestY) {
      kept.push(i);
      bestY = y(i);
    }
  }
  return kept.sort((a, b) => points.values[a][kx] - points.values[b][kx]);
}

function traceType(dims, count) {
  if (dims.length === 3) return "scatter3d";
  return count > LARGE_TRACE && webglAvailable() ? "scattergl" : "scatter";
}

function markerTrace(points, indices, dims, style, extra = {}) {
  const trace = {
    type: traceType(dims, indices.length),
    mode: "markers",
    name: style.name,
    legendgroup: style.group || style.name,
    marker: style.marker,
    customdata: indices.map((i) => points.numbers[i]),
    text: indices.map((i) => pointHover(points, i, style.hoverLabel || "")),
    hovertemplate: "%{text}<extra></extra>",
    meta: { searchId: points.search_id, role: style.role },
    ...extra,
  };
  const axes = ["x", "y", "z"];
  dims.forEach((dim, a) => {
    trace[axes[a]] = dim === "number"
      ? indices.map((i) => points.numbers[i])
      : indices.map((i) => toNumber(points.values[i][dim]));
  });
  return trace;
}

/** The staircase through the 2D front of `indices` on axes dims = [kx, ky]. */
function stepLine(points, indices, dims, color, group, dash = "solid") {
  const [kx, ky] = dims;
  const ordered = front2d(points, indices, kx, ky);
  return {
    type: "scatter",
    mode: "lines",
    name: group,
    legendgroup: group,
    showlegend: false,
    hoverinfo: "skip",
    x: ordered.map((i) => points.values[i][kx]),
    y: ordered.map((i) => points.values[i][ky]),
    // the boundary of the dominated region: along x first when x is minimised
    line: { shape: points.objectives[kx].direction === "maximize" ? "vh" : "hv", color, width: 2, dash },
    meta: { role: `${group}-line` },
  };
}

const WHITE_EDGE = { color: "#fff", width: 1 };
/** Marker styles of each view: "1d" (value by trial), "2d" (an objective pair), "3d". */
const MARKERS = {
  "1d": {
    feasible: { color: COLORS.feasible, size: 7, opacity: 0.75 },
    infeasible: { color: COLORS.infeasible, symbol: "x", size: 8 },
    front: { color: COLORS.front, size: 11, symbol: "star", line: WHITE_EDGE },
    compare: { color: COLORS.compare, size: 11, symbol: "diamond" },
  },
  "2d": {
    feasible: { color: COLORS.feasible, size: 7, opacity: 0.7 },
    infeasible: { color: COLORS.infeasible, symbol: "x", size: 8 },
    front: { color: COLORS.front, size: 10, line: WHITE_EDGE },
    compare: { color: COLORS.compare, size: 10, symbol: "diamond" },
  },
  "3d": {
    feasible: { color: COLORS.feasible, size: 4, opacity: 0.7 },
    infeasible: { color: COLORS.infeasible, symbol: "x", size: 4 },
    front: { color: COLORS.front, size: 6, symbol: "diamond" },
    compare: { color: COLORS.compare, size: 6, symbol: "square" },
  },
};

/**
 * The front figure for `view` = {mode: "1d" | "2d" | "3d", pair: [kx, ky]}; `untilS` hides points
 * finished later (the time slider); `compare` = {name, points} overlays another search's front.
 */
export function frontFigure(points, view, untilS, compare) {
  const mode = view.mode;
  const dims = mode === "1d" ? ["number", 0] : mode === "3d" ? [0, 1, 2] : view.pair;
  const markers = MARKERS[mode];
  const best = mode === "1d" ? "best" : "Pareto front";
  const groups = split(points, visibleIndices(points, untilS));
  const data = [
    markerTrace(points, groups.feasible, dims, { name: "feasible", role: "feasible", marker: markers.feasible }),
    markerTrace(points, groups.infeasible, dims, { name: "infeasible", role: "infeasible", marker: markers.infeasible }),
    markerTrace(points, groups.front, dims, { name: best, group: "front", role: "front", marker: markers.front }),
  ];
  if (mode === "1d") data.push(bestSoFarByNumber(points, [...groups.feasible, ...groups.front]));
  if (mode === "2d" && groups.front.length) {
    data.push(stepLine(points, groups.front, dims, COLORS.front, "front"));
  }
  if (compare) {
    const other = remap(compare.points, points.objectives);
    const otherFront = split(other, visibleIndices(other, null)).front;
    data.push(markerTrace(other, otherFront, dims, {
      name: `${mode === "1d" ? "best" : "front"} of ${compare.name}`,
      group: "compare",
      role: "compare",
      hoverLabel: `${escapeHtml(compare.name)} \u00b7 `,
      marker: markers.compare,
    }));
    if (mode === "2d" && otherFront.length) {
      data.push(stepLine(other, otherFront, dims, COLORS.compare, "compare", "dot"));
    }
  }
  return { data, layout: frontLayout(points.objectives, mode, dims) };
}

function frontLayout(objectives, mode, dims) {
  const base = {
    margin: { l: 70, r: 20, t: 30, b: 60 },
    hovermode: "closest",
    legend: { orientation: "h", y: 1.08 },
    uirevision: `${mode}-${dims.join("-")}`, // keeps zoom and rotation across live updates
  };
  if (mode === "3d") {
    return {
      ...base,
      margin: { l: 0, r: 0, t: 30, b: 0 },
      height: 560,
      scene: {
        aspectmode: "cube",
        camera: { eye: { x: 1.5, y: 1.5, z: 1.0 } },
        xaxis: { title: { text: axisTitle(objectives[0]) } },
        yaxis: { title: { text: axisTitle(objectives[1]) } },
        zaxis: { title: { text: axisTitle(objectives[2]) } },
      },
    };
  }
  return {
    ...base,
    xaxis: { title: { text: mode === "1d" ? "trial number" : axisTitle(objectives[dims[0]]) } },
    yaxis: { title: { text: axisTitle(objectives[dims[1]]) } },
  };
}

/** Another search's points with their value columns reordered to `objectives` (matched by metric). */
function remap(points, objectives) {
  const order = objectives.map((o) => points.objectives.findIndex((p) => p.metric === o.metric));
  if (order.every((k, i) => k === i)) return points;
  return { ...points, objectives, values: points.values.map((row) => order.map((k) => row[k])) };
}

function bestSoFarByNumber(points, feasibleIndices) {
  const sign = points.objectives[0].direction === "maximize" ? 1 : -1;
  const ordered = [...feasibleIndices].sort((a, b) => points.numbers[a] - points.numbers[b]);
  const x = [];
  const y = [];
  let best = null;
  for (const i of ordered) {
    const v = toNumber(points.values[i][0]);
    if (best === null || sign * v > sign * best) best = v;
    x.push(points.numbers[i]);
    y.push(best);
  }
  return {
    type: "scatter",
    mode: "lines",
    name: "best so far",
    x,
    y,
    hoverinfo: "skip",
    line: { shape: "hv", color: COLORS.front, width: 1.5, dash: "dot" },
  };
}

// ---- over time ----

/** Hypervolume vs seconds since the search started, a step line; the reference point as annotation. */
export function hypervolumeFigure(hv, lastFinishedS) {
  const x = hv.series.map((s) => s.finished_s);
  const y = hv.series.map((s) => s.hypervolume);
  if (x.length && lastFinishedS !== null && lastFinishedS !== undefined && lastFinishedS > x[x.length - 1]) {
    x.push(lastFinishedS);
    y.push(y[y.length - 1]);
  }
  const reference = referenceText(hv);
  return {
    data: [
      {
        type: "scatter",
        mode: "lines",
        name: "hypervolume",
        x,
        y,
        hoverinfo: "skip",
        line: { shape: "hv", color: COLORS.line, width: 2 },
      },
      {
        type: "scatter",
        mode: "markers",
        name: "improved by",
        x: hv.series.map((s) => s.finished_s),
        y: hv.series.map((s) => s.hypervolume),
        customdata: hv.series.map((s) => s.trial_number),
        text: hv.series.map((s) => [
          `trial #${s.trial_number}`,
          `after ${fmtValue(s.finished_s)} s`,
          `hypervolume ${fmtValue(s.hypervolume)}`,
        ].join("<br>")),
        hovertemplate: "%{text}<extra></extra>",
        marker: { color: COLORS.line, size: 6 },
        meta: { role: "hv" },
      },
    ],
    layout: {
      margin: { l: 70, r: 20, t: 40, b: 50 },
      showlegend: false,
      hovermode: "closest",
      xaxis: { title: { text: "seconds since the search started" } },
      yaxis: { title: { text: "hypervolume" } },
      annotations: reference
        ? [{
          xref: "paper",
          yref: "paper",
          x: 0,
          y: 1.08,
          xanchor: "left",
          showarrow: false,
          text: `reference point: ${escapeHtml(reference)}`,
          font: { size: 11, color: "#5d6778" },
        }]
        : [],
      uirevision: "hv",
    },
  };
}

export function referenceText(hv) {
  if (!hv.reference_point) return "";
  return hv.objectives.map((o, k) => `${o.metric} = ${fmtValue(hv.reference_point[k])}`).join(", ");
}

/** For one objective: the best feasible value so far vs seconds since the search started. */
export function bestOverTimeFigure(points) {
  const objective = points.objectives[0];
  const sign = objective.direction === "maximize" ? 1 : -1;
  const order = [];
  for (let i = 0; i < points.numbers.length; i++) if (points.feasible[i]) order.push(i);
  order.sort((a, b) => points.finished_s[a] - points.finished_s[b]);
  const x = [];
  const y = [];
  const text = [];
  let best = null;
  for (const i of order) {
    const v = toNumber(points.values[i][0]);
    if (best === null || sign * v > sign * best) {
      best = v;
      x.push(points.finished_s[i]);
      y.push(best);
      text.push(`trial #${points.numbers[i]}<br>${escapeHtml(objective.metric)} ${fmtValue(best)}`);
    }
  }
  if (x.length && points.last_finished_s > x[x.length - 1]) {
    x.push(points.last_finished_s);
    y.push(best);
    text.push(`${escapeHtml(objective.metric)} ${fmtValue(best)}`);
  }
  return {
    data: [{
      type: "scatter",
      mode: "lines+markers",
      name: `best ${objective.metric}`,
      x,
      y,
      text,
      hovertemplate: "%{text}<extra></extra>",
      line: { shape: "hv", color: COLORS.line, width: 2 },
    }],
    layout: {
      margin: { l: 70, r: 20, t: 20, b: 50 },
      showlegend: false,
      xaxis: { title: { text: "seconds since the search started" } },
      yaxis: { title: { text: `best ${axisTitle(objective)}` } },
      uirevision: "best",
    },
  };
}

// ---- learning curves ----

/** One line per trial (value vs fidelity); the front's trials drawn bolder. */
export function curvesFigure(curves, searchId) {
  const many = curves.trials.length > 12;
  const data = curves.trials.map((trial) => ({
    type: "scatter",
    mode: "lines+markers",
    name: `#${trial.number}${trial.on_front ? " (front)" : ""}`,
    x: trial.fidelities,
    y: trial.values.map((v) => (v === null ? null : toNumber(v))),
    customdata: trial.fidelities.map(() => trial.number),
    hovertemplate: [
      `trial #${trial.number} (${trial.state})`,
      "fidelity %{x}",
      `${escapeHtml(curves.metric)} %{y}<extra></extra>`,
    ].join("<br>"),
    line: trial.on_front ? { width: 2.5 } : { width: 1 },
    marker: { size: trial.on_front ? 6 : 4 },
    opacity: trial.on_front ? 1 : 0.6,
    meta: { searchId, role: "curve" },
  }));
  return {
    data,
    layout: {
      margin: { l: 70, r: 20, t: 20, b: 50 },
      showlegend: !many,
      hovermode: "closest",
      xaxis: { title: { text: "fidelity (fine-tuning epochs)" } },
      yaxis: { title: { text: curves.metric } },
      uirevision: `curves-${curves.metric}`,
    },
  };
}

/** The trial page's chart: one metric of a trial's reports vs fidelity. */
export function reportsFigure(reports, metric) {
  const rows = reports.filter((r) => r.metrics && r.metrics[metric] !== undefined);
  return {
    data: [{
      type: "scatter",
      mode: "lines+markers",
      name: metric,
      x: rows.map((r) => r.fidelity),
      y: rows.map((r) => toNumber(r.metrics[metric])),
      line: { color: COLORS.line, width: 2 },
      hovertemplate: `fidelity %{x}<br>${escapeHtml(metric)} %{y}<extra></extra>`,
    }],
    layout: {
      margin: { l: 60, r: 20, t: 20, b: 50 },
      showlegend: false,
      xaxis: { title: { text: "fidelity" } },
      yaxis: { title: { text: metric } },
    },
  };
}
