// The call page: metadata and metrics, a player, the dialogue as a conversation, the query's
// hits. Clicking a word or a hit seeks there and plays; while playing, the word being said is
// highlighted and kept in view. /calls/<id>?t=65.8&q=... opens at that second with the hit shown.

import { ApiError, getJson } from "./api.js";
import { hitParams } from "./search.js";
import { clock, dateTime, duration, el, errorBox, highlighted, roleBadge, setTitle } from "./util.js";

// Seek this much before a word so its first sound is not cut off (the issue allows 0.5 s).
const LEAD_IN_S = 0.25;

const METRIC_LABELS = {
  talk_ratio_manager: ["Manager talk ratio", (v) => `${Math.round(v * 100)}%`],
  talk_s_manager: ["Manager talk time", duration],
  talk_s_client: ["Client talk time", duration],
  silence_s: ["Silence", duration],
  longest_monologue_s_manager: ["Longest manager monologue", duration],
  longest_monologue_s_client: ["Longest client monologue", duration],
  interruptions_manager: ["Manager interruptions", String],
  interruptions_client: ["Client interruptions", String],
  wpm_manager: ["Manager words/min", (v) => Math.round(v)],
  wpm_client: ["Client words/min", (v) => Math.round(v)],
  response_latency_s: ["Client → manager response", (v) => `${v.toFixed(1)} s`],
};

// This call's hits for the query in the URL: the search narrowed to the call's manager, client
// and start instant, then picked out by id (the search API has no call-id filter).
async function callHits(call, params) {
  if (!params.get("q")) return [];
  const search = hitParams(params);
  search.set("manager_id", call.manager.id);
  if (call.client.id) search.set("client_id", call.client.id);
  search.set("date_from", call.started_at);
  search.set("date_to", call.started_at);
  search.set("size", "100");
  const answer = await getJson(`/v1/search?${search}`);
  return answer.calls.find((found) => found.call_id === call.call_id)?.hits ?? [];
}

// One utterance's text as word spans (each carries its time), hit words marked.
function utteranceText(utterance, hitSpans, words) {
  const parts = [];
  let at = 0;
  const inHit = (start, end) => hitSpans.some(([s, e]) => start < e && end > s);
  for (const word of utterance.words) {
    const index = words.length;
    words.push(word);
    const start = word.char_start;
    const end = word.char_end;
    const attributes = { class: "w", "data-i": index };
    if (start === null || end === null || start < at) {
      // No character offsets: the word's own text, space-separated.
      parts.push(parts.length ? " " : "", el("span", attributes, word.text));
      continue;
    }
    parts.push(utterance.text.slice(at, start));
    if (inHit(start, end)) attributes.class += " hit-word";
    parts.push(el("span", attributes, utterance.text.slice(start, end)));
    at = end;
  }
  if (at < utterance.text.length && utterance.words.every((w) => w.char_start !== null)) {
    parts.push(utterance.text.slice(at));
  }
  if (!utterance.words.length) parts.push(utterance.text);
  return parts;
}

function metadata(call) {
  const rows = [
    ["Started", dateTime(call.started_at)],
    ["Length", duration(call.duration_s)],
    ["Manager", `${call.manager.name ?? call.manager.id}${call.manager.team ? ` (${call.manager.team})` : ""}`],
    ["Client", [call.client.name ?? call.client.id ?? "—", call.client.phone].filter(Boolean).join(", ")],
    ["Direction", call.direction],
    ["Language", call.language],
    ["Transcribed by", `${call.asr.engine} ${call.asr.model}${call.asr.diarization === "channels" ? ", one party per channel" : `, speakers: ${call.asr.diarization}`}`],
  ];
  const metrics = Object.entries(METRIC_LABELS)
    .filter(([name]) => call.metrics?.[name] !== null && call.metrics?.[name] !== undefined)
    .map(([name, [label, format]]) => [label, format(call.metrics[name])]);
  const list = (pairs) => el("dl", {}, pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  return el("section", { class: "call-meta" },
    list(rows),
    el("div", { class: "metrics" }, el("h2", {}, "Metrics"), list(metrics)),
    call.trackers.length ? el("p", { class: "tags" }, "Trackers: ", call.trackers.map((t) => el("span", { class: "tag" }, t))) : null,
    call.warnings.length ? el("ul", { class: "warnings" }, call.warnings.map((w) => el("li", {}, w))) : null);
}

export async function callPage(root, callId) {
  const params = new URLSearchParams(location.search);
  root.replaceChildren(el("p", { class: "muted" }, "Loading the call…"));
  let call;
  try {
    call = await getJson(`/v1/calls/${encodeURIComponent(callId)}`);
  } catch (error) {
    root.replaceChildren(errorBox(error.status === 404 ? `No call with id “${callId}”.` : error.detail ?? error.message),
      el("p", {}, el("a", { href: "/" }, "Back to search")));
    return;
  }
  setTitle(call.client.name ?? call.call_id);
  let hits = [];
  let hitsError = null;
  try {
    hits = await callHits(call, params);
  } catch (error) {
    hitsError = error.detail ?? error.message;
  }

  const audio = el("audio", { id: "player", controls: true, preload: "auto" });
  const status = el("span", { class: "player-status muted", "aria-live": "polite" });
  const momentButton = el("button", { type: "button", title: "Copy a link that opens the call at this second" }, "Copy link to this moment");
  const player = el("section", { class: "player", "aria-label": "Recording" },
    audio,
    el("div", { class: "player-buttons" },
      el("button", { type: "button", onclick: () => seekBy(-5), "aria-label": "Back 5 seconds" }, "−5 s"),
      el("button", { type: "button", onclick: () => seekBy(5), "aria-label": "Forward 5 seconds" }, "+5 s"),
      el("label", {}, "Speed ",
        el("select", { onchange: (e) => { audio.playbackRate = Number(e.target.value); } },
          ["0.75", "1", "1.25", "1.5", "2"].map((r) => el("option", { value: r, selected: r === "1" }, `${r}×`)))),
      momentButton, status));

  // Hit spans by utterance, to mark the words in the dialogue.
  const hitSpans = new Map();
  for (const hit of hits) {
    hitSpans.set(hit.utterance_index, [...(hitSpans.get(hit.utterance_index) ?? []), ...hit.spans]);
  }
  const words = [];
  const diarized = call.asr.diarization !== "channels";
  const dialogue = el("ol", { class: "dialogue", "aria-label": "Dialogue" },
    call.utterances.map((utterance) =>
      el("li", { class: `utt utt-${utterance.role}`, id: `u${utterance.index}`, "data-start": utterance.start },
        el("div", { class: "utt-head" },
          el("button", { type: "button", class: "utt-time", "data-seek": utterance.start, "aria-label": `Play from ${clock(utterance.start)}` }, clock(utterance.start)),
          roleBadge(utterance.role, diarized ? utterance.speaker : null)),
        el("p", { class: "utt-text", lang: call.language }, utteranceText(utterance, hitSpans.get(utterance.index) ?? [], words)))));

  const hitList = el("section", { class: "call-hits", "aria-label": "Hits" },
    el("h2", {}, params.get("q")
      ? [`${hits.length} ${hits.length === 1 ? "hit" : "hits"} for `, el("code", {}, params.get("q"))]
      : "Hits"),
    hitsError ? errorBox(hitsError) : null,
    params.get("q") ? null : el("p", { class: "muted" }, "Search for words to see where they were said."),
    el("ol", {}, hits.map((hit) =>
      el("li", {}, el("button", { type: "button", class: `hit hit-${hit.role}`, "data-seek": hit.start },
        el("span", { class: "time" }, clock(hit.start)), roleBadge(hit.role),
        el("span", { class: "text" }, highlighted(hit.text, hit.spans)))))));

  const back = hitParams(params);
  root.replaceChildren(
    el("p", { class: "crumbs" }, el("a", { href: back.toString() ? `/?${back}` : "/" }, "← Search"), " ", el("span", { class: "muted" }, call.call_id)),
    el("h1", {}, call.client.name ?? call.client.id ?? call.call_id),
    el("div", { class: "call-layout" },
      el("div", { class: "call-side" }, hitList, metadata(call)),
      el("div", { class: "call-main" }, player, dialogue)));

  // --- the recording: a signed URL, renewed when it has gone stale ---
  let audioReady = false;
  async function loadAudio(resumeAt, resume) {
    try {
      const signed = await getJson(`/v1/calls/${encodeURIComponent(call.call_id)}/audio-url`);
      audio.src = signed.url;
      audioReady = true;
      if (resumeAt !== undefined) {
        audio.addEventListener("loadedmetadata", () => {
          audio.currentTime = resumeAt;
          if (resume) audio.play().catch(() => {});
        }, { once: true });
      }
    } catch (error) {
      status.textContent = error instanceof ApiError && error.status === 404
        ? `No recording: ${error.detail}` : `The recording cannot be loaded: ${error.detail ?? error.message}`;
      player.classList.add("no-audio");
    }
  }
  let renewals = 0;
  audio.addEventListener("error", () => {
    // A signed URL expires after a few minutes; a later range request is then refused.
    if (!audioReady || renewals >= 3) {
      status.textContent = "The recording cannot be played.";
      return;
    }
    renewals += 1;
    loadAudio(audio.currentTime, !audio.paused);
  });
  await loadAudio();

  function seek(seconds, play = true) {
    audio.currentTime = Math.max(0, seconds - LEAD_IN_S);
    follow(true);
    if (play) audio.play().catch(() => { status.textContent = "Press ▶ or Space to listen."; });
  }
  function seekBy(delta) {
    audio.currentTime = Math.min(Math.max(0, audio.currentTime + delta), audio.duration || Infinity);
  }

  // --- following the recording: the word being said, kept in view ---
  const wordNodes = [...dialogue.querySelectorAll(".w")];
  let currentWord = null;
  let currentUtterance = null;
  function wordAt(seconds) {
    // The last word starting at or before the time (words are in time order per utterance,
    // utterances in time order; overlaps are rare back-channels).
    let low = 0;
    let high = words.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (words[mid].start <= seconds) { found = mid; low = mid + 1; } else high = mid - 1;
    }
    return found >= 0 && seconds <= words[found].end + 0.3 ? found : -1;
  }
  function utteranceAt(seconds) {
    let found = null;
    for (const utterance of call.utterances) if (utterance.start <= seconds + 0.05) found = utterance;
    return found;
  }
  function follow(force = false) {
    const t = audio.currentTime;
    const index = wordAt(t);
    const node = index >= 0 ? wordNodes[index] : null;
    if (node !== currentWord) {
      currentWord?.classList.remove("now");
      node?.classList.add("now");
      currentWord = node;
    }
    const utterance = utteranceAt(t);
    const uttNode = utterance ? document.getElementById(`u${utterance.index}`) : null;
    if (uttNode !== currentUtterance || force) {
      currentUtterance?.classList.remove("speaking");
      uttNode?.classList.add("speaking");
      currentUtterance = uttNode;
      const target = node ?? uttNode;
      if (target && !inView(target)) target.scrollIntoView({ block: "center", behavior: force ? "auto" : "smooth" });
    }
  }
  function inView(node) {
    const box = node.getBoundingClientRect();
    const top = player.getBoundingClientRect().bottom;
    return box.top >= top && box.bottom <= window.innerHeight;
  }
  let frame = 0;
  const tick = () => { follow(); frame = requestAnimationFrame(tick); };
  audio.addEventListener("play", () => { cancelAnimationFrame(frame); frame = requestAnimationFrame(tick); });
  audio.addEventListener("pause", () => cancelAnimationFrame(frame));
  audio.addEventListener("seeked", () => follow());
  audio.addEventListener("playing", () => { status.textContent = ""; });

  // Clicks on a word, an utterance's time or a hit.
  root.addEventListener("click", (event) => {
    const word = event.target.closest(".w");
    if (word) { seek(words[Number(word.dataset.i)].start); return; }
    const target = event.target.closest("[data-seek]");
    if (target) seek(Number(target.dataset.seek));
  });
  momentButton.addEventListener("click", async () => {
    const link = hitParams(params);
    link.set("t", audio.currentTime.toFixed(1));
    const url = `${location.origin}/calls/${encodeURIComponent(call.call_id)}?${link}`;
    try {
      await navigator.clipboard.writeText(url);
      status.textContent = `Link copied: opens at ${clock(audio.currentTime)}`;
    } catch {
      status.textContent = url;
    }
  });
  // Space plays and pauses, arrows step 5 s — unless the key is meant for a control.
  document.onkeydown = (event) => {
    if (event.target.closest("input, select, textarea, button, a, audio, dialog")) return;
    if (event.key === " ") { event.preventDefault(); audio.paused ? audio.play().catch(() => {}) : audio.pause(); }
    else if (event.key === "ArrowLeft") seekBy(-5);
    else if (event.key === "ArrowRight") seekBy(5);
  };

  // A moment link: open at its second, the hit there shown; play when asked to (a hit click).
  const t = Number(params.get("t"));
  if (params.has("t") && Number.isFinite(t)) {
    const start = () => seek(t, params.get("play") === "1");
    if (audio.readyState >= 1) start();
    else if (audioReady) audio.addEventListener("loadedmetadata", start, { once: true });
    else {
      const utterance = utteranceAt(t);
      if (utterance) document.getElementById(`u${utterance.index}`)?.scrollIntoView({ block: "center" });
    }
    if (audioReady) {
      const utterance = utteranceAt(t);
      if (utterance) {
        const node = document.getElementById(`u${utterance.index}`);
        node?.classList.add("speaking");
        node?.scrollIntoView({ block: "center" });
      }
    }
  }
}
