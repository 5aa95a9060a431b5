// searches.js: the searches page (/): the paged, filterable list of searches and the form that
// validates a JSON or YAML spec on the server and submits it.

import {
  API, ApiError, TERMINAL_SEARCH_STATES, badge, clear, debounce, directionArrow, el, fmtDate,
  fmtDuration, fmtValue, getJSON, hideBanner, locPath, objectivesOf, postJSON, postText,
  progressOf, reportError,
} from "./api.js";

const PAGE_SIZE = Number(new URLSearchParams(window.location.search).get("page_size")) || 20;
const REFRESH_MS = 5000;

const EXAMPLE_SPEC = `# a small search: an elastic CNN on the 8x8 digits, two objectives
task: digits
space:
  family: elastic_cnn
  stage_channels: [8, 16]
  depth: [1, 2]
  width_mult: [0.5, 1.0]
  kernel_size: [3, 5]
objectives:
  - {metric: accuracy, direction: maximize}
  - {metric: params, direction: minimize}
budget: {max_trials: 6, max_parallel: 2, max_duration_s: 300}
strategy: random
scheduler: {type: fifo}
supernet: {epochs: 3, batch_size: 64}
fidelity: {finetune_epochs: 0}
seed: 1
`;

const list = {
  query: "",
  tokens: [null], // page_token of each page visited; the last one is the current page
  loadSeq: 0,
  lastItems: [],
};

// ---- the list ----

async function loadPage() {
  const seq = ++list.loadSeq;
  const token = list.tokens[list.tokens.length - 1];
  let page;
  try {
    page = await getJSON(`${API}/searches`, { page_size: PAGE_SIZE, page_token: token, q: list.query });
  } catch (err) {
    if (seq === list.loadSeq) {
      reportError(err, "Could not load the searches");
      document.body.dataset.ready = "1";
    }
    return;
  }
  if (seq !== list.loadSeq) return; // a newer load (another filter or page) superseded this one
  hideBanner();
  list.nextToken = page.next_page_token;
  list.total = page.total;
  list.lastItems = page.items;
  renderTable(page);
  document.body.dataset.ready = "1"; // for tests: the list shows the latest answer
  document.body.dataset.query = list.query;
}

function renderTable(page) {
  const body = document.querySelector("#searches-table tbody");
  clear(body);
  for (const search of page.items) body.append(searchRow(search));
  const empty = document.getElementById("searches-empty");
  empty.hidden = page.items.length > 0;
  empty.textContent = list.query ? `No searches match \u201c${list.query}\u201d` : "No searches yet";
  document.getElementById("searches-table").hidden = page.items.length === 0;
  const pageNumber = list.tokens.length;
  const first = (pageNumber - 1) * PAGE_SIZE + 1;
  const last = first + page.items.length - 1;
  document.getElementById("page-info").textContent = page.items.length
    ? `${first}\u2013${last} of ${page.total}`
    : "";
  document.getElementById("prev-page").disabled = pageNumber <= 1;
  document.getElementById("next-page").disabled = !page.next_page_token;
}

function trialLink(searchHref, number) {
  return el("a", { href: `${searchHref}/trials/${number}` }, `#${number}`);
}

function searchRow(search) {
  const progress = progressOf(search);
  const href = `/searches/${encodeURIComponent(search.id)}`;
  const fraction = progress.max_trials ? Math.min(1, progress.trials_done / progress.max_trials) : 0;
  const best = objectivesOf(search).map((objective) => {
    const found = search.best && search.best[objective.metric];
    return el(
      "div",
      { class: "small" },
      `${objective.metric} ${directionArrow(objective.direction)} `,
      found ? el("b", {}, fmtValue(found.value)) : el("span", { class: "muted" }, "—"),
      found ? el("span", { class: "muted" }, " (", trialLink(href, found.trial_number), ")") : null,
    );
  });
  return el(
    "tr",
    { "data-search-id": search.id },
    el("td", {}, el("a", { href, class: "search-link" }, search.name)),
    el(
      "td",
      {},
      badge(search.state),
      search.state_reason
        ? el("div", { class: `small ${search.state === "failed" ? "field-error" : "muted"}` }, search.state_reason)
        : null,
    ),
    el(
      "td",
      {},
      el("div", {}, `${progress.trials_done} / ${progress.max_trials ?? "?"} trials`),
      el("span", { class: "progress", title: `${Math.round(fraction * 100)}%` },
        el("span", { style: `width:${fraction * 100}%` })),
      el("div", { class: "small muted" },
        progress.elapsed_s != null ? `elapsed ${fmtDuration(progress.elapsed_s)}` : "not started"),
    ),
    el("td", {}, best),
    el("td", { class: "small muted" }, fmtDate(search.created_at)),
  );
}

function setupList() {
  const input = document.getElementById("search-q");
  const initial = new URLSearchParams(window.location.search).get("q");
  if (initial) input.value = initial;
  list.query = input.value.trim();
  input.addEventListener(
    "input",
    debounce(() => {
      list.query = input.value.trim();
      list.tokens = [null];
      loadPage();
    }, 250),
  );
  document.getElementById("next-page").addEventListener("click", () => {
    if (!list.nextToken) return;
    list.tokens.push(list.nextToken);
    loadPage();
  });
  document.getElementById("prev-page").addEventListener("click", () => {
    if (list.tokens.length <= 1) return;
    list.tokens.pop();
    loadPage();
  });
  // keep states and progress current while some listed search is still active
  setInterval(() => {
    if (document.hidden) return;
    if (list.lastItems.some((s) => !TERMINAL_SEARCH_STATES.has(s.state))) loadPage();
  }, REFRESH_MS);
  loadPage();
}

// ---- the new-search form ----

function clearFormErrors() {
  document.getElementById("name-error").textContent = "";
  clear(document.getElementById("spec-errors"));
  document.getElementById("spec-name").classList.remove("invalid");
  document.getElementById("spec-text").classList.remove("invalid");
  document.getElementById("spec-status").textContent = "";
}

function addSpecError(text) {
  document.getElementById("spec-text").classList.add("invalid");
  document.getElementById("spec-errors").append(el("li", {}, text));
}

function showFormError(err) {
  if (!(err instanceof ApiError) || err.isNetwork) {
    reportError(err, "Could not submit the search");
    addSpecError(err.message);
    return;
  }
  if (err.errors.length === 0) {
    addSpecError(err.message); // 400 malformed YAML/JSON, 409, ...: the detail says where
    return;
  }
  for (const error of err.errors) {
    const loc = Array.isArray(error.loc) ? error.loc : [];
    if (loc.length === 2 && loc[0] === "body" && loc[1] === "name") {
      const nameError = document.getElementById("name-error");
      nameError.textContent = nameError.textContent ? `${nameError.textContent}; ${error.msg}` : error.msg;
      document.getElementById("spec-name").classList.add("invalid");
    } else {
      addSpecError(`${locPath(loc)}: ${error.msg}`);
    }
  }
}

async function submitSpec(event) {
  event.preventDefault();
  clearFormErrors();
  const text = document.getElementById("spec-text").value;
  const name = document.getElementById("spec-name").value.trim();
  const status = document.getElementById("spec-status");
  const button = document.getElementById("spec-submit");
  if (!text.trim()) {
    addSpecError("spec: enter a search spec in JSON or YAML");
    return;
  }
  button.disabled = true;
  status.textContent = "Validating\u2026";
  try {
    // JSON is YAML, so one content type serves both
    const { spec } = await postText(`${API}/searches/validate`, text, "application/yaml");
    status.textContent = "Submitting\u2026";
    const created = await postJSON(`${API}/searches`, name ? { ...spec, name } : spec);
    status.textContent = "Submitted";
    window.location.assign(`/searches/${encodeURIComponent(created.id)}`);
  } catch (err) {
    status.textContent = "";
    showFormError(err);
  } finally {
    button.disabled = false;
  }
}

function setupForm() {
  document.getElementById("spec-form").addEventListener("submit", submitSpec);
  document.getElementById("spec-example").addEventListener("click", () => {
    document.getElementById("spec-text").value = EXAMPLE_SPEC;
    if (!document.getElementById("spec-name").value) document.getElementById("spec-name").value = "digits-small";
  });
}

setupList();
setupForm();
