// The search page: one box for the query language, the filters, the calls with their hits.
// The URL's query string is the search (the API's own parameter names), so it can be bookmarked
// and shared; every search pushes a history entry, Back returns to the previous one.

import { ApiError, getJson, request } from "./api.js";
import { clock, dateTime, duration, el, errorBox, highlighted, roleBadge, setTitle } from "./util.js";

const PAGE_SIZE = 20;
// Search parameters the page carries in its URL, in the order they appear there.
const FIELDS = [
  "q", "role", "mode", "manager_id", "team", "client_id", "date_from", "date_to", "direction",
  "min_duration_s", "max_duration_s", "metric", "sort",
];
const DEFAULTS = { role: "any", mode: "exact", sort: "relevance" };
const METRICS = [
  "talk_ratio_manager", "talk_s_manager", "talk_s_client", "silence_s",
  "longest_monologue_s_manager", "longest_monologue_s_client", "interruptions_manager",
  "interruptions_client", "wpm_manager", "wpm_client", "response_latency_s",
];
const EXAMPLES = ['"send me the contract"', 'client:"дорого"', "цена NEAR/5 дорого", 'manager:"добрый день" WITHIN first 30s'];

// The search in the URL, as parameters the API takes (defaults and empty fields left out).
export function searchParams(source = location.search) {
  const from = new URLSearchParams(source);
  const params = new URLSearchParams();
  for (const name of FIELDS) {
    for (const value of from.getAll(name)) {
      if (value.trim() && DEFAULTS[name] !== value) params.append(name, value.trim());
    }
  }
  return params;
}

// The parameters that decide a call's hits: carried to the call page so it shows the same ones.
export function hitParams(params) {
  const kept = new URLSearchParams();
  for (const name of ["q", "role", "mode"]) if (params.get(name)) kept.set(name, params.get(name));
  return kept;
}

function select(name, label, options, value) {
  return el("label", {}, label,
    el("select", { name },
      options.map(([v, text]) => el("option", { value: v, selected: v === value }, text))));
}

function input(name, label, value, extra = {}) {
  return el("label", {}, label, el("input", { name, value: value ?? "", ...extra }));
}

// Open on a laptop; on a phone only when a filter is set (they would fill the screen).
function filtersOpen(params) {
  const narrow = window.matchMedia("(max-width: 760px)").matches;
  return !narrow || [...params.keys()].some((name) => name !== "q");
}

function renderForm(params) {
  const metricText = params.getAll("metric").join(" ");
  const form = el("form", { class: "search-form", role: "search" },
    el("div", { class: "query-row" },
      el("label", { class: "visually-hidden", for: "q" }, "What was said"),
      el("input", {
        id: "q", name: "q", type: "search", value: params.get("q") ?? "", autocomplete: "off",
        spellcheck: "false", placeholder: 'A word, "an exact phrase", client:дорого AND NOT manager:скидк*',
        "aria-describedby": "query-error",
      }),
      el("button", { type: "submit", class: "primary" }, "Search")),
    el("div", { id: "query-error", "aria-live": "polite" }),
    el("details", { class: "filters-box", open: filtersOpen(params) }, el("summary", {}, "Filters"),
    el("div", { class: "filters" },
      select("role", "Said by", [["any", "Anyone"], ["manager", "Manager"], ["client", "Client"]], params.get("role") ?? "any"),
      select("mode", "Match", [["exact", "Exact words"], ["forms", "Word forms"], ["variants", "Both alphabets"]], params.get("mode") ?? "exact"),
      input("manager_id", "Manager id", params.get("manager_id"), { placeholder: "m-petrov" }),
      input("team", "Team", params.get("team"), { placeholder: "moscow" }),
      input("client_id", "Client id", params.get("client_id")),
      input("date_from", "From", params.get("date_from"), { type: "date" }),
      input("date_to", "To", params.get("date_to"), { type: "date" }),
      select("direction", "Direction", [["", "Any"], ["inbound", "Inbound"], ["outbound", "Outbound"]], params.get("direction") ?? ""),
      input("min_duration_s", "Min length (s)", params.get("min_duration_s"), { type: "number", min: 0, step: "any" }),
      input("max_duration_s", "Max length (s)", params.get("max_duration_s"), { type: "number", min: 0, step: "any" }),
      el("label", { class: "wide" }, "Metrics",
        el("input", { name: "metric", value: metricText, list: "metric-names", placeholder: "talk_ratio_manager>0.7 wpm_client<150" }),
        el("datalist", { id: "metric-names" }, METRICS.map((m) => el("option", { value: `${m}>` })))),
      select("sort", "Sort", [
        ["relevance", "Most mentions"], ["newest", "Newest"], ["oldest", "Oldest"],
        ["talk_ratio_manager:desc", "Manager talk ratio ↓"], ["response_latency_s:desc", "Slowest answers"],
      ].concat(METRICS.filter((m) => m !== "talk_ratio_manager" && m !== "response_latency_s").map((m) => [`${m}:desc`, `${m} ↓`])),
      params.get("sort") ?? "relevance"))));
  return form;
}

function formParams(form) {
  const data = new FormData(form);
  const params = new URLSearchParams();
  for (const name of FIELDS) {
    const value = String(data.get(name) ?? "").trim();
    if (!value || DEFAULTS[name] === value) continue;
    if (name === "metric") value.split(/[\s,]+/).filter(Boolean).forEach((m) => params.append("metric", m));
    else params.set(name, value);
  }
  return params;
}

function showQueryError(box, query, error) {
  box.replaceChildren();
  if (error.position === null || error.position === undefined) {
    box.append(errorBox(error.detail));
    return;
  }
  // The query with a caret under the position the parser stopped at.
  const caret = " ".repeat(error.position) + "^";
  box.append(el("div", { class: "error syntax", role: "alert" },
    el("strong", {}, `Query error at position ${error.position}: `), error.detail,
    el("pre", { class: "caret", "aria-hidden": "true" }, query, "\n", caret)));
  const box_input = document.getElementById("q");
  box_input.setAttribute("aria-invalid", "true");
  box_input.focus();
  box_input.setSelectionRange(error.position, Math.min(query.length, error.position + 1));
}

function hitLink(call, hit, params) {
  const link = hitParams(params);
  link.set("t", hit.start.toFixed(2));
  link.set("play", "1");
  return el("a", { class: `hit hit-${hit.role}`, href: `/calls/${encodeURIComponent(call.call_id)}?${link}` },
    el("span", { class: "time" }, clock(hit.start)),
    roleBadge(hit.role),
    el("span", { class: "text" }, highlighted(hit.text, hit.spans)));
}

function callCard(call, params) {
  const link = hitParams(params);
  if (call.hits.length) link.set("t", call.hits[0].start.toFixed(2));
  const manager = call.manager.name ?? call.manager.id;
  return el("article", { class: "call-card", "data-call-id": call.call_id },
    el("header", {},
      el("a", { class: "call-title", href: `/calls/${encodeURIComponent(call.call_id)}?${link}` },
        call.client.name ?? call.client.id ?? call.call_id),
      el("span", { class: "muted" }, dateTime(call.started_at))),
    el("p", { class: "meta" },
      el("span", {}, "Manager ", el("b", {}, manager), call.manager.team ? ` (${call.manager.team})` : ""),
      el("span", {}, call.direction), el("span", {}, duration(call.duration_s)),
      el("span", {}, call.language), el("span", { class: "muted" }, call.call_id),
      call.metrics?.talk_ratio_manager != null
        ? el("span", {}, `manager talks ${Math.round(call.metrics.talk_ratio_manager * 100)}%`) : null),
    call.trackers.length
      ? el("p", { class: "tags" }, call.trackers.map((t) => el("span", { class: "tag" }, t))) : null,
    call.hits.length ? el("div", { class: "hits" }, call.hits.map((hit) => hitLink(call, hit, params))) : null);
}

async function exportCsv(params, button) {
  // A plain link cannot carry the key: fetch the file, then hand it to the browser.
  button.disabled = true;
  try {
    const response = await request(`/v1/search.csv?${params}`, { accept: "text/csv" });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    el("a", { href: url, download: "earshot-search.csv" }).click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    button.after(errorBox(`Export failed: ${error.detail ?? error.message}`));
  } finally {
    button.disabled = false;
  }
}

async function runSearch(results, box, params) {
  results.replaceChildren(el("p", { class: "muted" }, "Searching…"));
  results.setAttribute("aria-busy", "true");
  const query = params.get("q") ?? "";
  const page = new URLSearchParams(params);
  page.set("size", PAGE_SIZE);
  let answer;
  try {
    answer = await getJson(`/v1/search?${page}`);
  } catch (error) {
    results.replaceChildren();
    results.removeAttribute("aria-busy");
    if (error instanceof ApiError && error.status === 400 && query) showQueryError(box, query, error);
    else results.append(errorBox(error.detail ?? error.message));
    return;
  }
  results.removeAttribute("aria-busy");
  const list = el("div", { class: "call-list" });
  const exportButton = el("button", { type: "button", onclick: () => exportCsv(params, exportButton) }, "Export CSV");
  const summary = el("div", { class: "summary" },
    el("p", { id: "total" }, el("b", {}, answer.total), answer.total === 1 ? " call" : " calls",
      query ? " where it was said" : "", el("span", { class: "muted" }, ` · ${answer.took_ms} ms`)),
    exportButton);
  results.replaceChildren(summary, list);
  if (!answer.total) {
    list.append(el("div", { class: "empty" },
      el("p", {}, query ? "No call has these words with these filters." : "No calls match these filters."),
      el("p", { class: "muted" }, "Try word forms, fewer filters, or a shorter phrase.")));
    return;
  }
  const append = (calls) => list.append(...calls.map((call) => callCard(call, params)));
  append(answer.calls);
  let cursor = answer.next_cursor;
  if (cursor) {
    const more = el("button", { type: "button", class: "more" }, "More calls");
    more.addEventListener("click", async () => {
      more.disabled = true;
      const next = new URLSearchParams(page);
      next.set("cursor", cursor);
      try {
        const nextPage = await getJson(`/v1/search?${next}`);
        append(nextPage.calls);
        cursor = nextPage.next_cursor;
        if (!cursor) more.remove();
      } catch (error) {
        more.after(errorBox(error.detail ?? error.message));
      } finally {
        more.disabled = false;
      }
    });
    results.append(more);
  }
}

export function searchPage(root) {
  const params = searchParams();
  setTitle(params.get("q"));
  const form = renderForm(params);
  const results = el("section", { id: "results", "aria-live": "polite" });
  const examples = el("p", { class: "examples muted" }, "Try: ",
    EXAMPLES.map((example) => el("button", { type: "button", class: "link", onclick: () => {
      form.elements.q.value = example;
      form.requestSubmit();
    } }, example)));
  root.replaceChildren(form, examples, results);
  const box = form.querySelector("#query-error");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    box.replaceChildren();
    form.elements.q.removeAttribute("aria-invalid");
    const next = formParams(form);
    const url = next.toString() ? `/?${next}` : "/";
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
    setTitle(next.get("q"));
    runSearch(results, box, next);
  });
  // Changing a filter searches at once; typing in the box waits for Enter.
  form.addEventListener("change", (event) => {
    if (event.target.name && event.target.name !== "q") form.requestSubmit();
  });
  window.onpopstate = () => searchPage(root);
  if (!params.get("q")) form.elements.q.focus();
  runSearch(results, box, params);
}
