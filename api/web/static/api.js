// The one way the pages talk to the API: fetch with the tab's key, JSON errors as ApiError.
// The key lives in sessionStorage: this tab only, gone when it closes, never in a cookie or URL.

const KEY_STORAGE = "earshot-api-key";

export class ApiError extends Error {
  constructor(status, detail, position) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.position = position ?? null;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

// Asks for a key in the page's dialog; resolves once one is entered.
export function askForKey(reason) {
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  document.getElementById("key-reason").textContent =
    reason || "This Earshot needs an API key. It is kept in this tab only.";
  input.value = "";
  return new Promise((resolve) => {
    const form = document.getElementById("key-form");
    form.onsubmit = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORAGE, key);
      dialog.close();
      resolve(key);
    };
    document.getElementById("key-forget").onclick = () => {
      forgetKey();
      input.value = "";
      input.focus();
    };
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

function headers(extra) {
  const key = storedKey();
  return key ? { ...extra, "X-API-Key": key } : { ...extra };
}

// fetch() with the key; on a 401 asks for a key once and tries again. Returns the Response.
export async function request(path, { method = "GET", body, accept = "application/json" } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const init = { method, headers: headers({ Accept: accept }) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, `the Earshot server cannot be reached (${error.message})`);
    }
    if (response.status === 401 && attempt === 0) {
      const had = storedKey();
      await askForKey(
        had ? "That API key was not accepted: enter another." : "This Earshot needs an API key."
      );
      continue;
    }
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      let position = null;
      try {
        const problem = await response.json();
        detail = problem.detail ?? detail;
        position = problem.position ?? null;
      } catch {
        // not JSON: keep the status line
      }
      throw new ApiError(response.status, detail, position);
    }
    return response;
  }
}

export async function getJson(path) {
  return (await request(path)).json();
}

export async function sendJson(method, path, body) {
  const response = await request(path, { method, body });
  return response.status === 204 ? null : response.json();
}

// A tracker write answers 202 with a job; the calls' tags follow once it has finished. Polls
// the job, telling onProgress how far it got; resolves with the finished job.
export async function waitForJob(job, onProgress = () => {}) {
  let current = job;
  while (current.state === "queued" || current.state === "running") {
    onProgress(current);
    await new Promise((resolve) => setTimeout(resolve, 300));
    current = await getJson(`/v1/jobs/${encodeURIComponent(current.id)}`);
  }
  return current;
}
