// /docs and /redoc: Swagger UI or ReDoc over the keyed /openapi.json, with the tab's key (the
// same one the app pages use). Swagger UI's "Try it out" sends that key too.

import { getJson, storedKey } from "./api.js";
import { el, errorBox } from "./util.js";

const root = document.getElementById("docs");
try {
  const spec = await getJson("/openapi.json");
  root.replaceChildren();
  if (root.dataset.kind === "swagger") {
    window.SwaggerUIBundle({
      spec,
      domNode: root,
      deepLinking: true,
      validatorUrl: null, // the default sends the schema to an outside validator
      requestInterceptor: (request) => {
        const key = storedKey();
        if (key && !request.headers["X-API-Key"]) request.headers["X-API-Key"] = key;
        return request;
      },
    });
  } else {
    window.Redoc.init(spec, { hideDownloadButton: false }, root);
  }
} catch (error) {
  root.replaceChildren(errorBox(`The API description cannot be loaded: ${error.detail ?? error.message}`),
    el("p", {}, el("a", { href: location.pathname }, "Try again")));
}
