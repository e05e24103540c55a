// Entry point of the viewer bundle (scripts/build_static.sh → static/viewer/viewer.min.js).
// The page works without it: the template draws the previews as plain images; this script
// replaces them with the viewer once the manifest has answered, and puts them back if it fails.
import { Viewer } from "./viewer.js";

function boot() {
  for (const root of document.querySelectorAll(".vw[data-manifest]")) {
    if (root.viewer) continue;
    const viewer = new Viewer(root);
    root.viewer = viewer;
    viewer.start().catch((error) => {
      root.classList.remove("vw-js", "vw-ready");
      root.dataset.error = String(error && error.message ? error.message : error);
    });
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
