// The router: one shell for every page, the page chosen by the path. Pages are full loads (each
// link is a real URL), so there is nothing to keep in sync between them but the tab's key.

import { askForKey, storedKey } from "./api.js";
import { callPage } from "./call.js";
import { searchPage } from "./search.js";
import { trackersPage } from "./trackers.js";
import { errorBox } from "./util.js";

function route(root) {
  const path = location.pathname;
  const call = path.match(/^\/calls\/([^/]+)\/?$/);
  if (call) return callPage(root, decodeURIComponent(call[1]));
  if (path === "/trackers" || path === "/trackers/") return trackersPage(root);
  if (path === "/") return searchPage(root);
  root.replaceChildren(errorBox(`There is no page at ${path}.`));
}

function start() {
  const root = document.getElementById("app");
  const current = location.pathname.startsWith("/trackers") ? "trackers" : location.pathname === "/" ? "search" : null;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === current) link.setAttribute("aria-current", "page");
  }
  const keyButton = document.getElementById("key-button");
  keyButton.hidden = false;
  keyButton.textContent = storedKey() ? "API key ✓" : "API key";
  keyButton.addEventListener("click", async () => {
    await askForKey("Enter the API key to use in this tab (a read key searches; an admin key also edits trackers).");
    location.reload();
  });
  route(root);
}

start();
