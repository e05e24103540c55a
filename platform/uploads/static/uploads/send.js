// Technician upload page: a manifest per study, then each file over tus (tus-js-client), resumable
// after a dropped link and after a page reload; then each file's verdict, polled as the site agent does.
(function () {
  "use strict";
  var form = document.getElementById("send");
  // Too old a browser: leave the link to the classic form showing.
  if (!form || !window.tus || !tus.isSupported || !window.fetch || !window.Promise) return;

  const T = JSON.parse(document.getElementById("send-text").textContent);
  const $ = (id) => document.getElementById(id);
  const ENDPOINT = new URL(form.dataset.endpoint, location.href).href;
  const MANIFESTS = form.dataset.manifests;
  const CHUNK = parseInt(form.dataset.chunk, 10);
  const CSRF = form.querySelector("[name=csrfmiddlewaretoken]").value;
  // A 2G link drops often: keep retrying for about two minutes, then wait for the network.
  const RETRY = [0, 1000, 3000, 5000, 10000, 15000, 20000, 30000, 30000];
  const PENDING = "joliba.send.pending";
  const HASH_LIMIT = 100 * 1024 * 1024; // crypto.subtle hashes in one piece: spare old phones' memory
  const urlStorage = tus.defaultOptions.urlStorage; // localStorage: survives a reload

  $("fallback").hidden = true;
  form.hidden = false;

  // --- pending studies, kept in localStorage so a reload can resume them -----------------------
  const load = () => { try { return JSON.parse(localStorage.getItem(PENDING)) || []; } catch (e) { return []; } };
  const keyOf = (f) => [f.name, f.size, f.lastModified].join("|");
  function save(study) {
    const others = load().filter((s) => s.manifest !== study.manifest);
    try { localStorage.setItem(PENDING, JSON.stringify(study.finished ? others : others.concat([study]))); }
    catch (e) { /* private mode or full: resuming after a reload is lost, the upload still works */ }
  }
  function findPending(files) {
    const keys = files.map(keyOf).sort().join("\n");
    return load().find((s) => s.files.map((f) => f.key).sort().join("\n") === keys);
  }

  function showPending() {
    const list = $("pending-list");
    list.textContent = "";
    const studies = load();
    $("pending").hidden = !studies.length;
    studies.forEach((s) => {
      const li = document.createElement("li");
      const left = s.files.filter((f) => !f.done).length;
      li.textContent = `${new Date(s.started).toLocaleString()} — ${s.files.length} ${T.files} ` +
        `(${s.files.slice(0, 3).map((f) => f.name).join(", ")}${s.files.length > 3 ? "…" : ""}), ` +
        `${left} ${T.waiting.toLowerCase()} `;
      const forget = document.createElement("button");
      forget.type = "button";
      forget.className = "secondary";
      forget.textContent = T.forget;
      forget.onclick = () => { s.finished = true; save(s); showPending(); };
      li.appendChild(forget);
      list.appendChild(li);
    });
  }
  showPending();

  // --- the form ----------------------------------------------------------------------------------
  const kind = () => form.querySelector("[name=kind]:checked").value;
  form.addEventListener("change", (e) => {
    if (e.target.name !== "kind") return;
    $("dicom-part").hidden = kind() !== "dicom";
    $("photo-part").hidden = kind() !== "photo";
  });

  function chosenFiles() {
    if (kind() === "photo") return Array.from($("photo-file").files).slice(0, 1);
    // A CD's folder also holds DICOMDIR and hidden files: the server would only refuse them.
    const folder = Array.from($("dicom-folder").files)
      .filter((f) => f.name.toUpperCase() !== "DICOMDIR" && f.name[0] !== ".");
    return Array.from($("dicom-files").files).concat(folder);
  }

  function photoFacts() {
    const facts = {};
    $("photo-part").querySelectorAll("[name]").forEach((el) => {
      if (el.value) facts[el.name] = el.name === "patient_birth_date" ? el.value.replace(/-/g, "") : el.value;
    });
    return facts;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    $("form-error").textContent = "";
    const files = chosenFiles();
    if (!files.length) { $("form-error").textContent = T.no_files; return; }
    let study = findPending(files);
    if (!study) {
      const facts = kind() === "photo" ? photoFacts() : null;
      if (facts && !facts.patient_name) { $("form-error").textContent = T.no_name; return; }
      study = {
        manifest: newId(), kind: kind(), priority: $("priority").value, indication: $("indication").value,
        facts: facts, started: Date.now(), files: files.map((f) => ({ key: keyOf(f), name: f.name, size: f.size })),
      };
    }
    save(study);
    form.hidden = true;
    $("pending").hidden = true;
    sendStudy(study, files).catch((e) => { $("study-text").textContent = String(e); });
  });

  function newId() {
    if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  async function sha256(file) {
    if (!window.crypto || !crypto.subtle || file.size > HASH_LIMIT) return "";
    const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return Array.from(new Uint8Array(digest), (x) => x.toString(16).padStart(2, "0")).join("");
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  // Wait for the network to come back (or a while, since navigator.onLine can be wrong).
  const linkBack = (ms) => new Promise((resolve) => {
    const done = () => { window.removeEventListener("online", done); resolve(); };
    window.addEventListener("online", done);
    setTimeout(done, ms);
  });

  async function api(url, options) {
    for (let wait = 2000; ; wait = Math.min(wait * 2, 30000)) {
      try {
        const r = await fetch(url, Object.assign({ credentials: "same-origin" }, options));
        if (r.status < 500) return r;
      } catch (e) { /* link down: try again below */ }
      await linkBack(wait);
    }
  }

  // --- sending -----------------------------------------------------------------------------------
  async function sendStudy(study, files) {
    $("progress").hidden = false;
    if (study.files.some((f) => f.url)) $("study-text").textContent = T.resumed;
    const byKey = new Map(files.map((f) => [keyOf(f), f]));
    const rows = study.files.map((entry) => addRow(entry));
    if (!(window.crypto && crypto.subtle)) note(T.no_hash);
    // The manifest first, as the agent does: the centre knows how many files make the study.
    const posted = await api(MANIFESTS, {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": CSRF },
      body: JSON.stringify({ id: study.manifest, priority: study.priority, indication: study.indication,
        files: study.files.length, instances: [] }),
    });
    if (!posted.ok) { note((await posted.json()).reason || posted.status); return; }
    const total = study.files.reduce((n, f) => n + f.size, 0);
    const sent = study.files.map((f) => (f.done ? f.size : 0));
    const progress = () => {
      const n = sent.reduce((a, b) => a + b, 0);
      $("study-bar").value = total ? n / total : 1;
      $("study-text").textContent = `${Math.floor((100 * n) / (total || 1))} %`;
    };
    progress();
    const verdicts = [];
    for (let i = 0; i < study.files.length; i++) {
      const entry = study.files[i];
      if (!entry.done) {
        await sendFile(byKey.get(entry.key), entry, study, rows[i], (n) => { sent[i] = n; progress(); });
        save(study);
      }
      verdicts.push(entry.url || entry.verdict ? showVerdict(entry, rows[i]) : Promise.resolve());
    }
    await Promise.all(verdicts);
    await showStudy(study);
  }

  function sendFile(file, entry, study, row, onBytes) {
    return new Promise((resolve) => {
      const fail = (text) => {
        entry.done = true;
        entry.verdict = { outcome: "refused", reason: text };
        resolve();
      };
      (async () => {
        row.state.textContent = T.hashing;
        const metadata = { filename: file.name, filetype: file.type || "application/dicom", kind: study.kind,
          manifest: study.manifest, priority: study.priority, indication: study.indication };
        if (study.kind === "photo") Object.assign(metadata, study.facts);
        const digest = await sha256(file);
        if (digest) metadata.sha256 = digest;
        const upload = new tus.Upload(file, {
          endpoint: ENDPOINT, chunkSize: CHUNK, retryDelays: RETRY, metadata: metadata,
          headers: { "X-CSRFToken": CSRF }, urlStorage: urlStorage,
          // Tied to the study: the same file in a later study is a new upload, not a resumed one.
          fingerprint: (f) => Promise.resolve(["joliba", study.manifest, f.name, f.size, f.lastModified].join("|")),
          storeFingerprintForResuming: true, removeFingerprintOnSuccess: true,
          // Unlike the default, retry while the browser says "offline": the delay is the wait.
          onShouldRetry: (err) => {
            const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
            const again = status === 0 || status >= 500 || status === 409 || status === 423 || status === 429;
            if (again) row.state.textContent = T.retrying;
            return again;
          },
          onUploadUrlAvailable: () => { entry.url = upload.url; save(study); },
          onProgress: (bytes, size) => {
            row.bar.value = size ? bytes / size : 1;
            row.state.textContent = `${T.sending} ${Math.floor((100 * bytes) / (size || 1))} %`;
            onBytes(bytes);
          },
          onSuccess: () => {
            entry.done = true;
            entry.url = upload.url;
            row.bar.value = 1;
            onBytes(file.size);
            resolve();
          },
          onError: async (err) => {
            const response = err.originalResponse;
            const status = response ? response.getStatus() : 0;
            if (status >= 400 && status < 500 && status !== 409 && status !== 423 && status !== 429) {
              let reason = String(status);
              try { reason = JSON.parse(response.getBody()).reason || reason; } catch (e) { /* not JSON */ }
              fail(reason);
              return;
            }
            row.state.textContent = T.link_down;
            await linkBack(30000);
            upload.start(); // resumes from the server's offset (HEAD), never from 0
          },
        });
        const previous = await upload.findPreviousUploads();
        if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
        row.state.textContent = T.sending;
        upload.start();
      })().catch((e) => fail(String(e)));
    });
  }

  // The verdict comes once the centre has checked the file: poll its status, slower as time goes.
  async function showVerdict(entry, row) {
    if (entry.verdict) return paint(row, entry.verdict);
    row.state.textContent = T.checking;
    for (let wait = 1000; ; wait = Math.min(wait * 1.5, 10000)) {
      const r = await api(entry.url, { headers: { Accept: "application/json" } });
      if (r.status === 404 || r.status === 410) return;
      const status = await r.json();
      if (status.state === "finalised" || status.outcome) {
        entry.verdict = { outcome: status.outcome, reason: status.reason };
        return paint(row, entry.verdict);
      }
      await sleep(wait);
    }
  }

  function paint(row, verdict) {
    const label = T[verdict.outcome] || verdict.outcome;
    row.state.textContent = verdict.outcome === "refused" ? `${label} : ${verdict.reason}` : label;
    row.state.className = verdict.outcome === "refused" ? "refused verdict" : "ok verdict";
    row.bar.value = 1;
  }

  async function showStudy(study) {
    $("study-text").textContent = T.study_waiting;
    // A file refused before it was created never settles the manifest: do not wait for it then.
    const settles = study.files.every((f) => f.url);
    for (let wait = 1000; ; wait = Math.min(wait * 1.5, 10000)) {
      const r = await api(`${MANIFESTS}?id=${study.manifest}`, {});
      if (!r.ok) return;
      const state = await r.json();
      if (state.complete || !settles) {
        $("study-bar").value = 1;
        $("study-text").textContent = T.study_ready;
        if (state.study) {
          const a = document.createElement("a");
          a.href = form.dataset.studyUrl.replace("/0/", `/${state.study}/`);
          a.textContent = T.study_open;
          a.id = "study-open";
          $("study-text").append(" ", a);
        }
        study.finished = true;
        save(study);
        return;
      }
      await sleep(wait);
    }
  }

  function addRow(entry) {
    const tr = document.createElement("tr");
    tr.className = "file";
    const name = document.createElement("td");
    name.textContent = entry.name;
    const barCell = document.createElement("td");
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = entry.done ? 1 : 0;
    barCell.appendChild(bar);
    const state = document.createElement("td");
    state.textContent = T.waiting;
    tr.append(name, barCell, state);
    $("file-rows").appendChild(tr);
    return { bar: bar, state: state };
  }

  function note(text) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = text;
    $("progress").appendChild(p);
  }
})();
