// Small DOM and formatting helpers shared by the pages. Text always goes in as text nodes, never
// as HTML: transcripts are user data.

// el("a", {href: "/", class: "x"}, "text", child, ...) → element
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// 65.8 → "1:05", 3725 → "1:02:05"
export function clock(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export function duration(seconds) {
  const minutes = Math.floor(seconds / 60);
  return minutes ? `${minutes} min ${Math.round(seconds % 60)} s` : `${Math.round(seconds)} s`;
}

export function dateTime(iso) {
  return new Date(iso).toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

// The utterance text with each [start, end) span wrapped in <mark>.
export function highlighted(text, spans) {
  const parts = [];
  let at = 0;
  for (const [start, end] of [...spans].sort((a, b) => a[0] - b[0])) {
    if (start < at) continue; // overlapping spans (a NEAR's sides): the first wins
    parts.push(text.slice(at, start), el("mark", {}, text.slice(start, end)));
    at = end;
  }
  parts.push(text.slice(at));
  return parts;
}

export const ROLE_LABELS = { manager: "Manager", client: "Client", unknown: "Unknown" };

export function roleBadge(role, speaker) {
  return el("span", { class: `role role-${role}` }, ROLE_LABELS[role] ?? role, speaker ? ` · ${speaker}` : "");
}

export function errorBox(message) {
  return el("div", { class: "error", role: "alert" }, message);
}

export function setTitle(...parts) {
  document.title = [...parts, "Earshot"].filter(Boolean).join(" — ");
}
