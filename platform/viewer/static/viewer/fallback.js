// Runs after viewer.min.js (both deferred, so in document order): a viewer section the bundle did
// not take over (the file failed to load) gets its static previews back. A static file, not an
// onerror attribute: the pages keep CSP script-src 'self' with no inline script.
(function () {
  "use strict";
  var roots = document.querySelectorAll(".vw.vw-js");
  for (var i = 0; i < roots.length; i++) {
    if (!roots[i].viewer) roots[i].classList.remove("vw-js", "vw-ready");
  }
})();
