// The trackers page: list, create, edit, delete (writes need an admin key: the API says so and
// the page shows it), and one tracker's statistics per manager / team / period as a table and a
// bar chart. The chosen tracker and grouping are in the URL (/trackers?id=...&group_by=week).

import { getJson, sendJson, waitForJob } from "./api.js";
import { el, errorBox, setTitle } from "./util.js";

const GROUPS = [["manager", "Manager"], ["team", "Team"], ["day", "Day"], ["week", "Week"], ["month", "Month"]];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const MONTHS = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric", timeZone: "UTC" });

// A group's name as a person reads it: "Mar 2026", "week of 2026-03-02", a manager's name.
function groupLabel(group, groupBy) {
  const key = group.key ?? "";
  if (groupBy === "month" && key) return MONTHS.format(new Date(`${key.slice(0, 10)}T00:00:00Z`));
  if (groupBy === "week" && key) return `week of ${key.slice(0, 10)}`;
  if (groupBy === "day" && key) return key.slice(0, 10);
  return group.label ?? group.key ?? "(none)";
}

// Horizontal bars of each group's rate (calls mentioning ÷ calls), labelled with the counts.
function chart(groups, groupBy) {
  const rowHeight = 28;
  const labelWidth = 170;
  const width = 640;
  const barSpace = width - labelWidth - 120;
  const height = groups.length * rowHeight + 8;
  const node = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": "Share of calls mentioning the tracker, per group" });
  groups.forEach((group, row) => {
    const y = row * rowHeight + 4;
    const rate = group.rate ?? 0;
    const label = groupLabel(group, groupBy);
    node.append(
      svg("text", { x: labelWidth - 8, y: y + 17, "text-anchor": "end", class: "chart-label" }, label.length > 24 ? `${label.slice(0, 23)}…` : label),
      svg("rect", { x: labelWidth, y: y + 4, width: barSpace, height: rowHeight - 10, class: "chart-track", rx: 3 }),
      svg("rect", { x: labelWidth, y: y + 4, width: Math.max(rate * barSpace, rate ? 2 : 0), height: rowHeight - 10, class: "chart-bar", rx: 3 }),
      svg("text", { x: labelWidth + barSpace + 8, y: y + 17, class: "chart-value" }, `${Math.round(rate * 100)}% · ${group.calls_mentioning}/${group.calls}`),
    );
  });
  return node;
}

function statsTable(stats) {
  const row = (name, counts, cls) => el("tr", { class: cls },
    el("th", { scope: "row" }, name), el("td", {}, counts.calls), el("td", {}, counts.calls_mentioning),
    el("td", {}, counts.mentions), el("td", {}, counts.rate === null ? "—" : `${(counts.rate * 100).toFixed(1)}%`));
  return el("table", { class: "stats" },
    el("thead", {}, el("tr", {}, ["Group", "Calls", "Calls mentioning", "Mentions", "Rate"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, stats.groups.map((g) => row(groupLabel(g, stats.group_by), g))),
    el("tfoot", {}, row("All calls", stats.total, "total")));
}

function trackerForm(tracker, onSaved) {
  const editing = Boolean(tracker);
  const message = el("div", { "aria-live": "polite" });
  const form = el("form", { class: "tracker-form" },
    el("h2", {}, editing ? `Edit “${tracker.name}”` : "New tracker"),
    el("label", {}, "Name", el("input", { name: "name", required: true, maxlength: 100, value: tracker?.name ?? "" })),
    el("label", {}, "Phrases (one per line)",
      el("textarea", { name: "phrases", rows: 4, required: true, placeholder: "too expensive\nдорого" }, (tracker?.phrases ?? []).join("\n"))),
    el("div", { class: "row" },
      el("label", {}, "Said by", el("select", { name: "role" },
        [["any", "Anyone"], ["manager", "Manager"], ["client", "Client"]].map(([v, t]) => el("option", { value: v, selected: (tracker?.role ?? "any") === v }, t)))),
      el("label", {}, "Match", el("select", { name: "mode" },
        [["exact", "Exact words"], ["forms", "Word forms"], ["variants", "Both alphabets"]].map(([v, t]) => el("option", { value: v, selected: (tracker?.mode ?? "exact") === v }, t))))),
    el("div", { class: "row" },
      el("button", { type: "submit", class: "primary" }, editing ? "Save" : "Create tracker"),
      editing ? el("button", { type: "button", onclick: () => onSaved(null) }, "Cancel") : null),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const spec = {
      name: String(data.get("name")).trim(),
      phrases: String(data.get("phrases")).split("\n").map((p) => p.trim()).filter(Boolean),
      role: data.get("role"),
      mode: data.get("mode"),
    };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    message.replaceChildren(el("p", { class: "muted" }, "Saving…"));
    try {
      const change = editing
        ? await sendJson("PUT", `/v1/trackers/${encodeURIComponent(tracker.id)}`, spec)
        : await sendJson("POST", "/v1/trackers", spec);
      const job = await waitForJob(change.job, (progress) => message.replaceChildren(el("p", { class: "muted" },
        `Saved; re-tagging the calls: ${progress.calls_examined} examined, ${progress.calls_retagged} re-tagged…`)));
      message.replaceChildren(job.state === "failed" ? errorBox(`Saved, but re-tagging failed: ${job.errors.join("; ")}`) : "");
      onSaved(change.tracker);
    } catch (error) {
      const why = error.status === 403 ? `Not saved: ${error.detail}. Use an admin key (API key button, top right).` : `Not saved: ${error.detail ?? error.message}`;
      message.replaceChildren(errorBox(why));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

async function showStats(panel, tracker, state) {
  panel.replaceChildren(el("p", { class: "muted" }, "Counting…"));
  const params = new URLSearchParams({ group_by: state.group_by, tz: state.tz });
  if (state.date_from) params.set("date_from", state.date_from);
  if (state.date_to) params.set("date_to", state.date_to);
  try {
    const stats = await getJson(`/v1/trackers/${encodeURIComponent(tracker.id)}/stats?${params}`);
    panel.replaceChildren(
      el("p", { class: "stats-total" }, el("b", {}, `${Math.round((stats.total.rate ?? 0) * 100)}%`),
        ` of calls mention “${tracker.name}” (${stats.total.calls_mentioning} of ${stats.total.calls}, ${stats.total.mentions} mentions)`),
      stats.groups.length ? chart(stats.groups, stats.group_by) : el("p", { class: "empty" }, "No calls in this date range."),
      statsTable(stats));
  } catch (error) {
    panel.replaceChildren(errorBox(error.detail ?? error.message));
  }
}

export async function trackersPage(root) {
  setTitle("Trackers");
  const query = new URLSearchParams(location.search);
  const state = {
    id: query.get("id"),
    group_by: query.get("group_by") ?? "manager",
    date_from: query.get("date_from") ?? "",
    date_to: query.get("date_to") ?? "",
    tz: query.get("tz") ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC",
  };
  const list = el("section", { class: "tracker-list", "aria-label": "Trackers" });
  const formSlot = el("div");
  const statsSection = el("section", { class: "tracker-stats", "aria-label": "Statistics" });
  root.replaceChildren(el("h1", {}, "Trackers"),
    el("p", { class: "muted" }, "A tracker is a list of phrases; every call that says one is tagged, and its share of calls is counted per manager, team and period."),
    el("div", { class: "trackers-layout" }, el("div", {}, list, formSlot), statsSection));

  function remember() {
    const params = new URLSearchParams();
    for (const name of ["id", "group_by", "date_from", "date_to", "tz"]) if (state[name]) params.set(name, state[name]);
    history.replaceState(null, "", `/trackers?${params}`);
  }

  let trackers = [];
  async function refresh() {
    try {
      trackers = (await getJson("/v1/trackers")).trackers;
    } catch (error) {
      list.replaceChildren(errorBox(error.detail ?? error.message));
      return;
    }
    renderList();
    const chosen = trackers.find((t) => t.id === state.id) ?? trackers[0];
    if (chosen) selectTracker(chosen);
    else statsSection.replaceChildren(el("p", { class: "empty" }, "No trackers yet: create one to count how often its phrases are said."));
  }

  function renderList() {
    list.replaceChildren(
      trackers.length
        ? el("table", { class: "trackers" },
          el("thead", {}, el("tr", {}, ["Tracker", "Phrases", "Said by", ""].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, trackers.map((tracker) => el("tr", { class: tracker.id === state.id ? "chosen" : "", "data-tracker": tracker.id },
            el("td", {}, el("button", { type: "button", class: "link", onclick: () => selectTracker(tracker) }, tracker.name)),
            el("td", {}, tracker.phrases.join(", ")),
            el("td", {}, `${tracker.role}${tracker.mode === "forms" ? ", word forms" : tracker.mode === "variants" ? ", both alphabets" : ""}`),
            el("td", { class: "actions" },
              el("button", { type: "button", onclick: () => edit(tracker) }, "Edit"),
              el("button", { type: "button", class: "danger", onclick: () => remove(tracker) }, "Delete"))))))
        : el("p", { class: "muted" }, "No trackers yet."));
    edit(null);
  }

  function edit(tracker) {
    formSlot.replaceChildren(trackerForm(tracker, (saved) => {
      if (saved) state.id = saved.id;
      remember();
      refresh();
    }));
  }

  async function remove(tracker) {
    if (!confirm(`Delete the tracker “${tracker.name}”? Its tags are removed from every call.`)) return;
    try {
      const change = await sendJson("DELETE", `/v1/trackers/${encodeURIComponent(tracker.id)}`);
      await waitForJob(change.job);
      if (state.id === tracker.id) state.id = null;
      refresh();
    } catch (error) {
      list.prepend(errorBox(`Not deleted: ${error.detail ?? error.message}`));
    }
  }

  function selectTracker(tracker) {
    state.id = tracker.id;
    remember();
    for (const row of list.querySelectorAll("tr[data-tracker]")) row.classList.toggle("chosen", row.dataset.tracker === tracker.id);
    const panel = el("div", { class: "stats-panel" });
    const controls = el("form", { class: "stats-controls" },
      el("label", {}, "Per", el("select", { name: "group_by" }, GROUPS.map(([v, t]) => el("option", { value: v, selected: v === state.group_by }, t)))),
      el("label", {}, "From", el("input", { type: "date", name: "date_from", value: state.date_from })),
      el("label", {}, "To", el("input", { type: "date", name: "date_to", value: state.date_to })),
      el("label", {}, "Time zone", el("input", { name: "tz", value: state.tz, size: 16 })));
    controls.addEventListener("change", () => {
      const data = new FormData(controls);
      for (const name of ["group_by", "date_from", "date_to", "tz"]) state[name] = String(data.get(name) ?? "").trim();
      state.tz ||= "UTC";
      remember();
      showStats(panel, tracker, state);
    });
    controls.addEventListener("submit", (event) => event.preventDefault());
    statsSection.replaceChildren(el("h2", {}, tracker.name),
      el("p", { class: "muted" }, `Phrases: ${tracker.phrases.join(", ")}`,
        " · ", el("a", { href: `/?q=${encodeURIComponent(tracker.phrases.map((p) => `"${p.replaceAll('"', "")}"`).join(" OR "))}${tracker.role !== "any" ? `&role=${tracker.role}` : ""}${tracker.mode !== "exact" ? `&mode=${tracker.mode}` : ""}` }, "Search these phrases")),
      controls, panel);
    showStats(panel, tracker, state);
  }

  refresh();
}
