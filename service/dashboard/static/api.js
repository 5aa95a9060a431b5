// api.js: fetch helpers for the supernas JSON API (with the bearer token kept in local storage, a
// sign-in form on 401 and authenticated downloads), RFC 9457 problem+json errors, the error banner,
// and small formatting / DOM helpers shared by the pages. No dependencies.

export const API = "/api/v1";
export const TERMINAL_SEARCH_STATES = new Set(["succeeded", "failed", "canceled"]);
/** Trial states that are not final: a paused trial (freeze-thaw) may resume. */
export const UNFINISHED_TRIAL_STATES = new Set(["pending", "running", "paused"]);

/** An HTTP error (status >= 400, with the problem+json body when there is one) or a network error (status 0). */
export class ApiError extends Error {
  constructor(status, problem, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem; // {type, title, status, detail, errors?} or null
  }

  get errors() {
    return (this.problem && Array.isArray(this.problem.errors)) ? this.problem.errors : [];
  }

  get isNetwork() {
    return this.status === 0;
  }
}

function withParams(path, params) {
  if (!params) return path;
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// ---- the API token (auth on): kept in this browser's local storage ----

const TOKEN_KEY = "supernas.token";

export function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function authHeaders() {
  const token = storedToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Ask for a token (the service answered 401): a small form at the top of the page. */
function showSignIn(message) {
  if (document.getElementById("signin")) return;
  const input = el("input", {
    type: "password", id: "signin-token", "data-testid": "signin-token", autocomplete: "off",
    placeholder: "snas_...", "aria-label": "API token",
  });
  const form = el("form", { id: "signin", class: "card signin", "data-testid": "signin" },
    el("h2", {}, "Sign in"),
    el("p", {}, `${message} Paste an API token (from 'supernas token create', or the admin token the service printed on its first start).`),
    input,
    el("button", { type: "submit", id: "signin-submit", "data-testid": "signin-submit" }, "Sign in"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    localStorage.setItem(TOKEN_KEY, token);
    location.reload();
  });
  (document.querySelector("main") || document.body).prepend(form);
  input.focus();
}

/** A "Sign out" button in the top bar while a token is stored. */
function addSignOut() {
  const bar = document.querySelector(".topbar");
  if (!bar || !storedToken() || document.getElementById("signout")) return;
  const button = el("button", { type: "button", id: "signout", class: "small signout", "data-testid": "signout" }, "Sign out");
  button.addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
  bar.append(button);
}

/** The file name in a Content-Disposition header, if any. */
function attachmentName(header) {
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header || "");
  return match ? decodeURIComponent(match[1]) : null;
}

// Download links cannot send a header, so with a token they are fetched and saved from a blob.
document.addEventListener("click", async (event) => {
  const link = event.target instanceof Element ? event.target.closest("a.download") : null;
  if (!link || !storedToken()) return;
  event.preventDefault();
  try {
    const response = await fetch(link.href, { headers: authHeaders() });
    if (!response.ok) {
      const problem = await response.json().catch(() => null);
      throw new ApiError(response.status, problem, problemMessage(problem, response));
    }
    const url = URL.createObjectURL(await response.blob());
    const save = el("a", { href: url, download: attachmentName(response.headers.get("content-disposition")) || "model" });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    reportError(err, "Download failed");
  }
});

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", addSignOut);
} else {
  addSignOut();
}

/** fetch `path` (relative to the site) and return its parsed JSON; throws ApiError. */
export async function request(method, path, { params, body, contentType } = {}) {
  const headers = { ...authHeaders(), Accept: "application/json, application/problem+json" };
  if (contentType) headers["Content-Type"] = contentType;
  let response;
  try {
    response = await fetch(withParams(path, params), { method, headers, body });
  } catch (err) {
    throw new ApiError(0, null, `Cannot reach the supernas service (${err.message}).`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const problem = data && typeof data === "object" ? data : null;
    if (response.status === 401) showSignIn(problemMessage(problem, response) + ".");
    throw new ApiError(response.status, problem, problemMessage(problem, response));
  }
  return data;
}

export const getJSON = (path, params) => request("GET", path, { params });
export const postJSON = (path, value) =>
  request("POST", path, { body: JSON.stringify(value), contentType: "application/json" });
export const postText = (path, text, contentType = "application/yaml") =>
  request("POST", path, { body: text, contentType });

/** One readable line for a problem+json body (falls back to the HTTP status). */
export function problemMessage(problem, response) {
  if (problem && (problem.detail || problem.title)) {
    return problem.detail ? String(problem.detail) : String(problem.title);
  }
  return `HTTP ${response.status} ${response.statusText || ""}`.trim();
}

/** The dotted path of a validation error's loc without the leading "body": objectives.0.metric. */
export function locPath(loc) {
  const parts = Array.isArray(loc) ? [...loc] : [];
  if (parts[0] === "body") parts.shift();
  return parts.length ? parts.join(".") : "spec";
}

// ---- the error banner (network errors and unexpected failures) ----

let bannerKey = null;

export function showBanner(message, key = "error") {
  const banner = document.getElementById("error-banner");
  if (!banner) return;
  bannerKey = key;
  clear(banner);
  banner.append(el("span", { id: "error-banner-text" }, message));
  const close = el("button", { type: "button", "aria-label": "Dismiss" }, "Dismiss");
  close.addEventListener("click", () => hideBanner());
  banner.append(close);
  banner.hidden = false;
}

/** Hide the banner; with `key`, only when the banner shows that key's message. */
export function hideBanner(key) {
  const banner = document.getElementById("error-banner");
  if (!banner || (key !== undefined && key !== bannerKey)) return;
  banner.hidden = true;
  bannerKey = null;
}

/** Show an error that has no better place on the page in the banner. */
export function reportError(err, what) {
  const message = err instanceof ApiError ? err.message : `${err && err.message ? err.message : err}`;
  showBanner(what ? `${what}: ${message}` : message);
}

// ---- values ----

/** A metric value as a number: the API sends non-finite values as "NaN", "Infinity", "-Infinity". */
export function toNumber(value) {
  if (typeof value === "number") return value;
  if (value === "NaN") return NaN;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  if (value === null || value === undefined || value === "") return null;
  const parsed = Number(value);
  return Number.isNaN(parsed) ? null : parsed;
}

const INTEGER_FORMAT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 }); // one instance: fast

export function fmtValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string" && !["NaN", "Infinity", "-Infinity"].includes(value)) return value;
  if (typeof value === "boolean") return String(value);
  if (typeof value === "object") return JSON.stringify(value);
  const number = toNumber(value);
  if (number === null) return "—";
  if (!Number.isFinite(number)) return String(value);
  if (Number.isInteger(number) && Math.abs(number) < 1e15) return INTEGER_FORMAT.format(number);
  const magnitude = Math.abs(number);
  if (magnitude >= 1e5 || magnitude < 1e-3) return number.toExponential(3);
  return String(Number(number.toPrecision(4)));
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${String(rest).padStart(2, "0")} s`;
}

export function fmtDate(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" });
}

/** Seconds between two ISO datetimes (or until now). */
export function secondsBetween(startIso, endIso) {
  if (!startIso) return null;
  const end = endIso ? Date.parse(endIso) : Date.now();
  return Math.max(0, (end - Date.parse(startIso)) / 1000);
}

export function directionArrow(direction) {
  return direction === "maximize" ? "\u2191" : "\u2193";
}

/** The objectives of a SearchOut (its `objectives`, or the spec's). */
export function objectivesOf(search) {
  return search.objectives || (search.spec && search.spec.objectives) || [];
}

/** trials_done / max_trials / elapsed_s of a SearchOut. */
export function progressOf(search) {
  if (search.progress) return search.progress;
  const counts = search.trial_counts || {};
  const done = Object.entries(counts)
    .filter(([state]) => !UNFINISHED_TRIAL_STATES.has(state))
    .reduce((sum, [, count]) => sum + count, 0);
  const maxTrials = search.spec && search.spec.budget ? search.spec.budget.max_trials : null;
  return { trials_done: done, max_trials: maxTrials, elapsed_s: secondsBetween(search.started_at, search.finished_at) };
}

// ---- DOM ----

/** document.createElement with attributes/properties and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "hidden" || key === "disabled" || key === "selected") node[key] = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A <thead> with one header cell per label; a label ending in "#" is a right-aligned number column. */
export function tableHead(...labels) {
  const cells = labels.map((label) => (label.endsWith("#")
    ? el("th", { class: "num" }, label.slice(0, -1))
    : el("th", {}, label)));
  return el("thead", {}, el("tr", {}, cells));
}

/** " (detail)" of an ApiError's problem, or "". */
export function detailSuffix(err) {
  return err && err.problem && err.problem.detail ? ` (${err.problem.detail})` : "";
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function badge(state, extraClass = "") {
  return el("span", { class: `badge ${state} ${extraClass}`.trim(), "data-state": state }, state);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** The decoded path segments of the page URL: /searches/<id>/trials/<n> -> ["searches", id, "trials", n]. */
export function pathParts() {
  return window.location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
}
