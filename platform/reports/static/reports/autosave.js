// Autosave of the report draft: posts the editor every 20 s when it changed, and when a field
// loses focus. The page works without it (the "Enregistrer" button posts the same form).
(function () {
  "use strict";
  var form = document.getElementById("report-editor");
  var status = document.getElementById("report-saved");
  if (!form || !status || !window.fetch || !window.FormData) return;
  var dirty = false, busy = false;
  function save() {
    if (!dirty || busy) return;
    dirty = false; busy = true;
    var data = new FormData(form);
    fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-Joliba-Autosave": "1" }
    }).then(function (r) { return r.json(); }).then(function (answer) {
      status.textContent = answer.message;
      status.className = answer.saved ? "muted saved" : "error";
      if (!answer.saved) dirty = true;
    }).catch(function () {
      dirty = true;
      status.textContent = status.getAttribute("data-offline");
      status.className = "error";
    }).then(function () { busy = false; });
  }
  form.addEventListener("input", function () {
    dirty = true;
    status.textContent = status.getAttribute("data-unsaved");
    status.className = "muted";
  });
  form.addEventListener("change", function () { dirty = true; });
  Array.prototype.forEach.call(form.querySelectorAll("textarea, select, input"), function (el) {
    el.addEventListener("blur", save);
  });
  window.setInterval(save, 20000);
})();
