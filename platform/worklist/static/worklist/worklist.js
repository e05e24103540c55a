// The worklist, kept current without reloading: the SLA countdowns tick each minute, the list is
// fetched again every ~30 s (same filters and page; 304 when nothing changed) and a new STAT or
// AI-critical case is announced on screen and by a short beep (WebAudio, no sound file).
// Without JavaScript the page is the same list, with its "Actualiser" link.
(function () {
  "use strict";
  var list = document.getElementById("wl-list");
  var notice = document.getElementById("wl-notice");
  if (!list || !window.fetch) return;
  var skew = 0; // server clock minus this one, in ms: countdowns follow the server
  var title = document.title;
  var audio = null;

  function meta() { return list.querySelector(".wl-meta"); }
  function readClock() {
    var m = meta();
    if (m && m.dataset.now) skew = m.dataset.now * 1000 - Date.now();
  }
  // As worklist.ranking.duration: 12 min, 2 h 05, 3 j.
  function duration(minutes) {
    var m = Math.floor(minutes);
    if (m < 60) return m + " min";
    var h = Math.floor(m / 60), rest = m % 60;
    return h < 48 ? h + " h " + (rest < 10 ? "0" : "") + rest : Math.floor(h / 24) + " j";
  }
  function say(template, d) { return template.replace("%(d)s", d); }

  function tick() {
    var now = (Date.now() + skew) / 1000, ds = list.dataset;
    list.querySelectorAll("[data-d]").forEach(function (el) {
      var left = (Number(el.dataset.d) - now) / 60;
      el.textContent = left >= 0 ? say(ds.left, duration(left)) : say(ds.late, duration(-left));
      el.classList.toggle("late", left < 0);
    });
    list.querySelectorAll("[data-s]").forEach(function (el) {
      el.textContent = say(ds.wait, duration(Math.max(now - Number(el.dataset.s), 0) / 60));
    });
  }

  function alerts() {
    var found = {}, m = meta();
    (m ? m.dataset.alerts : "").split(" ").forEach(function (item) {
      var i = item.indexOf(":");
      if (i > 0) found[item.slice(0, i)] = item.slice(i + 1);
    });
    return found;
  }

  // Browsers start sound only after the person has touched the page once.
  function unlock() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) audio = new Ctx();
    if (audio && audio.state === "suspended") audio.resume();
  }
  document.addEventListener("click", unlock);
  document.addEventListener("keydown", unlock);

  function beep() {
    unlock();
    if (!audio) return;
    [0, 0.3].forEach(function (at) {
      var t = audio.currentTime + at, osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.4, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.2);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(t);
      osc.stop(t + 0.22);
    });
    notice.dataset.beeps = String(Number(notice.dataset.beeps || 0) + 1);
  }

  function announce(codes) {
    notice.textContent = list.dataset.alertText + " " + codes.join(", ");
    notice.hidden = false;
    document.title = "(!) " + title;
    beep();
  }
  notice.addEventListener("click", function () { notice.hidden = true; document.title = title; });

  var seen = alerts();
  var etag = meta() ? meta().dataset.etag : "";

  function refresh() {
    fetch(list.dataset.url + location.search, {
      headers: { "If-None-Match": etag }, credentials: "same-origin", cache: "no-store"
    }).then(function (r) {
      return r.status === 200 ? r.text() : null; // 304: nothing changed; an error: try again later
    }).then(function (html) {
      if (!html) return;
      list.innerHTML = html;
      var m = meta();
      if (m) etag = m.dataset.etag;
      readClock();
      var now = alerts(), fresh = [];
      Object.keys(now).forEach(function (pk) { if (!(pk in seen)) fresh.push(now[pk]); seen[pk] = now[pk]; });
      if (fresh.length) announce(fresh);
      tick();
    }).catch(function () {});
  }

  readClock();
  tick();
  setInterval(tick, 60000);
  setInterval(refresh, Number(list.dataset.every || 30) * 1000);
})();
