// The reading page's viewer: one canvas, the manifest's series as stacks of (instance, frame).
// Image space is the full image's pixels (columns × rows) whatever is drawn (preview or full), so
// AI boxes, heatmaps and measurements stay aligned at any display size and zoom.

import { Loader, loadImage, prefetch } from "./loader.js";
import { buildLut, decodeFrame, isColour, lutSize, paint } from "./pixels.js";
import { PRESETS, distanceMm, initialWindow, presetWindow } from "./windows.js";

const $ = (root, sel) => root.querySelector(sel);

// The image's size in its own pixels. Before the renditions task has read the header the
// manifest has no columns/rows: the preview's size stands in (nothing is measured then: no spacing).
function dims(inst, preview) {
  return [
    inst.columns || inst.full?.width || inst.preview?.width || preview?.naturalWidth || 512,
    inst.rows || inst.full?.height || inst.preview?.height || preview?.naturalHeight || 512,
  ];
}

export class Viewer {
  constructor(root) {
    this.root = root;
    this.t = JSON.parse($(root, 'script[type="application/json"]').textContent);
    this.canvas = $(root, "canvas");
    this.ctx = this.canvas.getContext("2d");
    this.stage = $(root, ".vw-stage");
    this.previews = new Map(); // instance id -> HTMLImageElement
    this.frames = new Map(); // "id:frame" -> decoded frame
    this.heatmaps = new Map(); // instance id -> HTMLImageElement
    this.measures = new Map(); // "id:frame" -> [{a, b}]
    this.view = { s: 1, x: 0, y: 0, fitted: true };
    this.tool = "window";
    this.invert = false;
    this.showAI = false;
    this.k = 0;
    this.si = 0;
    this.pointers = new Map();
    this.wheelSum = 0;
    this.loader = new Loader(() => this.nextJob());
  }

  async start() {
    const answer = await fetch(this.root.dataset.manifest, { credentials: "same-origin" });
    if (!answer.ok) throw new Error(`manifest ${answer.status}`);
    this.m = await answer.json();
    this.series = this.m.series.filter((s) => s.instances.length);
    if (!this.series.length) throw new Error("no image");
    this.root.classList.add("vw-ready");
    this.bind();
    this.thumbs();
    this.pick(0);
    new ResizeObserver(() => this.resize()).observe(this.stage);
    this.resize();
    if (!this.m.ready) this.refreshLater(1);
  }

  // --- Series and stack -------------------------------------------------------------------------
  pick(si) {
    this.stop();
    this.si = si;
    const s = this.series[si];
    this.items = s.instances.flatMap((inst) =>
      Array.from({ length: Math.max(inst.frames || 1, 1) }, (_, f) => ({ inst, frame: f })),
    );
    // A multi-frame image opens on its middle frame, the one its preview shows.
    const first = this.items[0].inst;
    this.k = this.items.length > 1 && s.instances.length === 1 ? Math.floor(this.items.length / 2) : 0;
    this.win = initialWindow(first);
    this.fps = Math.round(first.cine_fps) || 15;
    $(this.root, ".vw-fps").value = this.fps;
    const slider = $(this.root, ".vw-slider");
    slider.max = this.items.length;
    slider.hidden = this.items.length < 2;
    $(this.root, ".vw-cine").hidden = $(this.root, ".vw-fps-label").hidden = this.items.length < 2;
    this.presetOptions(first, s.modality);
    this.root.querySelectorAll(".vw-thumb").forEach((b, i) => b.setAttribute("aria-pressed", String(i === si)));
    this.view.fitted = true;
    this.fit();
    this.go(this.k);
  }

  go(k) {
    const n = this.items.length;
    this.k = Math.min(Math.max(k, 0), n - 1);
    this.draft = null;
    this.loader.pump();
    this.status(this.items[this.k]);
    this.draw();
  }

  step(d) {
    this.go(this.k + d);
  }

  key(it) {
    return `${it.inst.id}:${it.frame}`;
  }

  // Previews of the current series first (cheap, the reader scrolls them at once), the shown
  // image's full rendition before any other, then the rest nearest first, then the next cases.
  nextJob() {
    const items = this.items;
    if (!items) return null;
    const order = items.map((_, i) => i).sort((a, b) => Math.abs(a - this.k) - Math.abs(b - this.k));
    const cur = items[this.k];
    const pv = (it) =>
      it.inst.preview && this.loader.wants(`p${it.inst.id}`) ? this.previewJob(it.inst) : null;
    const full = (it) => (it.inst.full && this.loader.wants(`f${this.key(it)}`) ? this.fullJob(it) : null);
    let job = pv(cur) || full(cur);
    for (const i of order) job = job || pv(items[i]);
    for (const i of order) job = job || full(items[i]);
    if (job) return job;
    if (this.loader.wants("prefetch") && this.loader.running === 0) {
      return this.loader.track("prefetch", () =>
        prefetch(this.m.prefetch).then((n) => (this.root.dataset.prefetched = n)),
      );
    }
    return null;
  }

  previewJob(inst) {
    const high = inst === this.items[this.k].inst;
    return this.loader.track(`p${inst.id}`, () =>
      loadImage(inst.preview.url, high ? "high" : "low").then((img) => {
        this.previews.set(inst.id, img);
        if (this.items[this.k].inst === inst) {
          if (!inst.columns && this.view.fitted) this.fit();
          this.draw();
        }
      }),
    );
  }

  fullJob(it) {
    const key = this.key(it);
    return this.loader.track(`f${key}`, () =>
      decodeFrame(it.inst.full.frames[it.frame], it.inst).then((frame) => {
        this.frames.set(key, frame);
        this.root.dataset.fullLoaded = this.frames.size;
        if (this.key(this.items[this.k]) === key) this.draw();
      }),
    );
  }

  // While renditions are still being made, ask again now and then for the missing ones.
  refreshLater(attempt) {
    if (attempt > 40) return;
    setTimeout(async () => {
      try {
        const m = await (await fetch(this.root.dataset.manifest, { credentials: "same-origin" })).json();
        const byId = new Map(m.series.flatMap((s) => s.instances).map((i) => [i.id, i]));
        for (const s of this.series)
          for (const inst of s.instances) {
            const fresh = byId.get(inst.id);
            // A finished image brings its header facts too (size, windows, spacing); what is
            // drawn stays (preview URLs change: the on-demand one gives way to the rendition).
            if (fresh && !inst.full && (fresh.full || fresh.unavailable)) {
              const hadFacts = Boolean(inst.columns);
              Object.assign(inst, { ...fresh, preview: inst.preview || fresh.preview });
              if (!hadFacts && inst === this.items[this.k].inst) this.refreshFacts(s);
            }
          }
        this.loader.pump();
        this.draw();
        if (!m.ready) this.refreshLater(attempt + 1);
      } catch {
        this.refreshLater(attempt + 1);
      }
    }, 3000);
  }

  // The shown image's header facts arrived after it was opened: its window and size.
  refreshFacts(series) {
    const inst = this.items[this.k].inst;
    if (this.win.name !== "manual") this.win = initialWindow(inst);
    this.fps = Math.round(inst.cine_fps) || this.fps;
    $(this.root, ".vw-fps").value = this.fps;
    this.presetOptions(inst, series.modality);
    if (this.view.fitted) this.fit();
  }

  // --- Drawing ----------------------------------------------------------------------------------
  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(this.stage.clientWidth * dpr);
    const h = Math.round(this.stage.clientHeight * dpr);
    if (w === this.canvas.width && h === this.canvas.height) return;
    this.canvas.width = w;
    this.canvas.height = h;
    if (this.view.fitted) this.fit();
    this.draw();
  }

  fit() {
    const inst = this.items?.[this.k]?.inst;
    if (!inst) return;
    const { width: W, height: H } = this.canvas;
    const [cols, rows] = dims(inst, this.previews.get(inst.id));
    const s = Math.min(W / cols, H / rows) || 1;
    this.view = { s, x: (W - cols * s) / 2, y: (H - rows * s) / 2, fitted: true };
  }

  zoomAt(px, py, factor) {
    const v = this.view;
    const s = Math.min(Math.max(v.s * factor, 0.02), 40);
    const f = s / v.s;
    this.view = { s, x: px - (px - v.x) * f, y: py - (py - v.y) * f, fitted: false };
  }

  oneToOne() {
    const { width: W, height: H } = this.canvas;
    this.zoomAt(W / 2, H / 2, 1 / this.view.s);
    // Keep the image centred when it fits at 1:1.
    const inst = this.items[this.k].inst;
    const [cols, rows] = dims(inst, this.previews.get(inst.id));
    if (cols <= W) this.view.x = (W - cols) / 2;
    if (rows <= H) this.view.y = (H - rows) / 2;
  }

  // The painted full-fidelity frame, repainted only when the frame, window or invert changes.
  fullCanvas(it) {
    const frame = this.frames.get(this.key(it));
    if (!frame) return null;
    const w = this.win;
    const paintKey = `${this.key(it)}|${w.center}|${w.width}|${this.invert}`;
    if (this.paintKey !== paintKey) {
      const lutKey = `${it.inst.id}|${w.center}|${w.width}|${this.invert}`;
      if (frame.kind === "grey" && this.lutKey !== lutKey) {
        this.lut = buildLut(it.inst, lutSize(frame), w, this.invert);
        this.lutKey = lutKey;
      }
      if (!this.off || this.off.width !== frame.width || this.off.height !== frame.height) {
        this.off = new OffscreenCanvas(frame.width, frame.height);
        this.offCtx = this.off.getContext("2d");
        this.pixels = new ImageData(frame.width, frame.height);
      }
      paint(frame, this.lut, this.invert, this.pixels);
      this.offCtx.putImageData(this.pixels, 0, 0);
      this.paintKey = paintKey;
    }
    return this.off;
  }

  draw() {
    if (!this.items || this.drawing) return;
    this.drawing = true;
    requestAnimationFrame(() => {
      this.drawing = false;
      this.drawNow();
    });
  }

  drawNow() {
    const ctx = this.ctx;
    const { width: W, height: H } = this.canvas;
    const it = this.items[this.k];
    const inst = it.inst;
    const full = this.fullCanvas(it);
    const preview = this.previews.get(inst.id);
    if (!full && !preview && this.poster !== null) return this.status(it); // the poster stays
    const [cols, rows] = dims(inst, preview);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, W, H);
    const { s, x, y } = this.view;
    ctx.setTransform(s, 0, 0, s, x, y);
    ctx.imageSmoothingEnabled = s < 2;
    if (full) {
      ctx.drawImage(full, 0, 0, cols, rows);
    } else if (preview) {
      // The preview is already windowed and shown right way round; it can only be inverted.
      ctx.filter = this.invert ? "invert(1)" : "none";
      ctx.drawImage(preview, 0, 0, cols, rows);
      ctx.filter = "none";
    }
    if (this.showAI && inst.ai) this.drawAI(inst, s, cols, rows);
    this.drawMeasures(it, s);
    this.status(it);
    // The server-drawn first preview stood in until the canvas had something to show.
    if ((full || preview) && this.poster !== null) {
      $(this.root, ".vw-poster")?.remove();
      this.poster = null;
    }
  }

  drawAI(inst, s, cols, rows) {
    const ctx = this.ctx;
    const heat = inst.ai.heatmap && this.heatmaps.get(inst.id);
    if (inst.ai.heatmap && !this.heatmaps.has(inst.id)) {
      this.heatmaps.set(inst.id, null);
      loadImage(inst.ai.heatmap).then((img) => {
        this.heatmaps.set(inst.id, img);
        this.draw();
      });
    }
    if (heat) {
      ctx.save();
      ctx.globalAlpha = 0.45;
      ctx.globalCompositeOperation = "screen";
      ctx.filter = "sepia(1) saturate(6) hue-rotate(-40deg)";
      ctx.drawImage(heat, 0, 0, cols, rows);
      ctx.restore();
    }
    const px = (window.devicePixelRatio || 1) / s;
    ctx.lineWidth = 2 * px;
    ctx.strokeStyle = ctx.fillStyle = "#ffcc00";
    ctx.font = `${12 * px}px sans-serif`;
    for (const b of inst.ai.boxes || []) {
      ctx.strokeRect(b.x, b.y, b.width, b.height);
      ctx.fillText(`${b.label} ${typeof b.score === "number" ? b.score.toFixed(2) : ""}`, b.x + 3 * px, b.y - 4 * px);
    }
  }

  drawMeasures(it, s) {
    const list = [...(this.measures.get(this.key(it)) || []), ...(this.draft ? [this.draft] : [])];
    if (!list.length) return;
    const ctx = this.ctx;
    const px = (window.devicePixelRatio || 1) / s;
    ctx.lineWidth = 2 * px;
    ctx.strokeStyle = ctx.fillStyle = "#00e5ff";
    ctx.font = `${13 * px}px sans-serif`;
    for (const m of list) {
      ctx.beginPath();
      ctx.moveTo(m.a.x, m.a.y);
      ctx.lineTo(m.b.x, m.b.y);
      ctx.stroke();
      ctx.fillText(this.measureText(it.inst, m), m.b.x + 6 * px, m.b.y);
    }
  }

  measureText(inst, m) {
    const mm = distanceMm(m.a, m.b, inst.spacing);
    const label = inst.spacing.calibrated ? this.t.calibrated : this.t.uncalibrated;
    return `${mm.toFixed(1)} mm (${label})`;
  }

  // The words and numbers around the canvas; called at once on input, and again once drawn.
  status(it) {
    const n = this.items.length;
    const inst = it.inst;
    const key = this.key(it);
    const source = this.frames.has(key) ? "full" : this.previews.has(inst.id) ? "preview" : "none";
    this.root.dataset.source = source;
    $(this.root, ".vw-counter").textContent = `${this.k + 1} / ${n}`;
    $(this.root, ".vw-slider").value = this.k + 1;
    const lossy = $(this.root, ".vw-lossy");
    lossy.hidden = !inst.lossy;
    if (inst.lossy)
      lossy.textContent = `${this.t.lossy}${inst.lossy.ratio ? ` ${inst.lossy.ratio}:1` : ""} ${inst.lossy.method || ""}`;
    const win = source === "full" && !isColour(inst) ? `C ${Math.round(this.win.center)} / L ${Math.round(this.win.width)}` : "";
    $(this.root, ".vw-state").textContent = inst.unavailable && source !== "full" && !inst.preview
      ? inst.unavailable.reason
      : `${source === "full" ? this.t.full : this.t.preview}${win ? ` · ${win}` : ""}${this.invert ? ` · ${this.t.inverted}` : ""}`;
    $(this.root, ".vw-original").href = inst.original;
    const ai = $(this.root, ".vw-ai");
    ai.hidden = !this.series.some((s) => s.instances.some((i) => i.ai));
    ai.setAttribute("aria-pressed", String(this.showAI));
    $(this.root, ".vw-invert").setAttribute("aria-pressed", String(this.invert));
    this.root.querySelectorAll("[data-tool]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === this.tool)));
    this.root.dataset.index = this.k + 1;
    this.root.dataset.count = n;
    this.root.dataset.window = `${this.win.center}/${this.win.width}`;
    // What the tests (and anyone debugging) read: the drawn image's place on the canvas.
    this.root.dataset.view = `${this.view.s},${this.view.x},${this.view.y}`;
    this.root.dataset.image = `${inst.id},${dims(inst, this.previews.get(inst.id)).join(",")}`;
    this.root.dataset.invert = this.invert;
  }

  say(text) {
    const box = $(this.root, ".vw-msg");
    box.textContent = text;
    box.hidden = !text;
    clearTimeout(this.sayTimer);
    if (text) this.sayTimer = setTimeout(() => (box.hidden = true), 6000);
  }

  // --- Windows ----------------------------------------------------------------------------------
  presetOptions(inst, modality) {
    const select = $(this.root, ".vw-preset");
    const opts = [];
    if ((inst.windows || []).some((w) => !w.misses)) opts.push(["file", this.t.presets.file]);
    opts.push(["stretch", this.t.presets.stretch]);
    if (modality === "CT") for (const [name] of PRESETS) opts.push([name, this.t.presets[name]]);
    select.replaceChildren(...opts.map(([v, label]) => new Option(label, v)));
    select.value = this.win.name;
    select.hidden = isColour(inst); // colour images are shown as they are: no window
  }

  preset(name) {
    this.win = presetWindow(name, this.items[this.k].inst);
    $(this.root, ".vw-preset").value = name;
    this.draw();
  }

  // --- Cine ---------------------------------------------------------------------------------------
  play() {
    if (this.items.length < 2) return;
    if (this.playing) return this.stop();
    this.playing = true;
    $(this.root, ".vw-cine").setAttribute("aria-pressed", "true");
    let last = performance.now();
    const tick = (now) => {
      if (!this.playing) return;
      const fps = Math.min(Math.max(Number($(this.root, ".vw-fps").value) || this.fps, 1), 60);
      if (now - last >= 1000 / fps) {
        last = now;
        this.go((this.k + 1) % this.items.length);
      }
      this.cine = requestAnimationFrame(tick);
    };
    this.cine = requestAnimationFrame(tick);
  }

  stop() {
    this.playing = false;
    cancelAnimationFrame(this.cine);
    $(this.root, ".vw-cine").setAttribute("aria-pressed", "false");
  }

  // --- Input --------------------------------------------------------------------------------------
  imagePoint(p) {
    const { s, x, y } = this.view;
    return { x: (p.x - x) / s, y: (p.y - y) / s };
  }

  devicePoint(e) {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    return { x: (e.clientX - r.left) * dpr, y: (e.clientY - r.top) * dpr };
  }

  setTool(tool) {
    this.tool = tool;
    this.draw();
  }

  down(e) {
    this.canvas.setPointerCapture(e.pointerId);
    this.pointers.set(e.pointerId, this.devicePoint(e));
    if (this.pointers.size === 2) {
      // Two fingers: pinch to zoom and move together to pan, whatever the tool.
      const [a, b] = [...this.pointers.values()];
      this.drag = { mode: "pinch", dist: Math.hypot(a.x - b.x, a.y - b.y), mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
      this.draft = null;
      return;
    }
    if (this.pointers.size > 2) return;
    let mode = this.tool;
    if (e.button === 2) mode = "window";
    else if (e.button === 1 || e.shiftKey) mode = "pan";
    else if (e.ctrlKey) mode = "zoom";
    const p = this.pointers.get(e.pointerId);
    this.drag = { mode, start: p, last: p, win: { ...this.win }, view: { ...this.view } };
    if (mode === "measure") {
      const inst = this.items[this.k].inst;
      if (!inst.spacing) {
        this.drag = null;
        this.say(this.t.noSpacing);
        $(this.root, ".vw-readout").textContent = this.t.noSpacing;
        return;
      }
      const a = this.imagePoint(p);
      this.draft = { a, b: a };
    }
  }

  move(e) {
    if (!this.pointers.has(e.pointerId) || !this.drag) return;
    const p = this.devicePoint(e);
    this.pointers.set(e.pointerId, p);
    const d = this.drag;
    if (d.mode === "pinch") {
      if (this.pointers.size < 2) return;
      const [a, b] = [...this.pointers.values()];
      const dist = Math.hypot(a.x - b.x, a.y - b.y);
      const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
      this.view.x += mid.x - d.mid.x;
      this.view.y += mid.y - d.mid.y;
      this.zoomAt(mid.x, mid.y, dist / (d.dist || dist));
      d.dist = dist;
      d.mid = mid;
    } else if (d.mode === "window") {
      const dpr = window.devicePixelRatio || 1;
      const dx = (p.x - d.start.x) / dpr;
      const dy = (p.y - d.start.y) / dpr;
      const k = Math.max(d.win.width, 10) / 200; // modality units per CSS pixel
      this.win = { center: d.win.center + dy * k, width: Math.max(1, d.win.width + dx * k), name: "manual" };
      $(this.root, ".vw-preset").value = "";
    } else if (d.mode === "pan") {
      this.view = { ...this.view, x: d.view.x + p.x - d.start.x, y: d.view.y + p.y - d.start.y, fitted: false };
    } else if (d.mode === "zoom") {
      this.view = { ...d.view };
      this.zoomAt(d.start.x, d.start.y, Math.exp(-(p.y - d.start.y) / 200));
    } else if (d.mode === "measure" && this.draft) {
      this.draft.b = this.imagePoint(p);
      $(this.root, ".vw-readout").textContent = this.measureText(this.items[this.k].inst, this.draft);
    }
    this.draw();
  }

  up(e) {
    this.pointers.delete(e.pointerId);
    if (this.drag?.mode === "pinch") {
      if (this.pointers.size === 0) this.drag = null;
      return;
    }
    if (this.drag?.mode === "measure" && this.draft) {
      const m = this.draft;
      this.draft = null;
      if (Math.hypot(m.b.x - m.a.x, m.b.y - m.a.y) > 1) {
        const key = this.key(this.items[this.k]);
        this.measures.set(key, [...(this.measures.get(key) || []), m]);
        $(this.root, ".vw-readout").textContent = `${this.t.distance} ${this.measureText(this.items[this.k].inst, m)}`;
      }
      this.draw();
    }
    this.drag = null;
  }

  wheel(e) {
    e.preventDefault();
    const p = this.devicePoint(e);
    // Ctrl+wheel is also what a trackpad pinch sends; a single image zooms with the plain wheel.
    if (e.ctrlKey || this.items.length < 2) {
      this.zoomAt(p.x, p.y, Math.exp(-e.deltaY / 300));
      return this.draw();
    }
    this.wheelSum += e.deltaY;
    if (Math.abs(e.deltaY) >= 50 || Math.abs(this.wheelSum) >= 50) {
      this.step(Math.sign(this.wheelSum));
      this.wheelSum = 0;
    }
  }

  keydown(e) {
    if (e.altKey || e.metaKey || (e.ctrlKey && e.key !== "Home" && e.key !== "End")) return;
    const n = this.items.length;
    const page = Math.max(1, Math.round(n / 10));
    const actions = {
      w: () => this.setTool("window"),
      z: () => this.setTool("zoom"),
      p: () => this.setTool("pan"),
      m: () => this.setTool("measure"),
      i: () => this.toggleInvert(),
      f: () => this.fitAndDraw(),
      1: () => (this.oneToOne(), this.draw()),
      a: () => this.toggleAI(),
      c: () => this.clearMeasures(),
      " ": () => this.play(),
      "?": () => this.help(),
      Escape: () => (this.help(false), (this.draft = null), this.draw()),
      ArrowUp: () => this.step(-1),
      ArrowLeft: () => this.step(-1),
      ArrowDown: () => this.step(1),
      ArrowRight: () => this.step(1),
      PageUp: () => this.step(-page),
      PageDown: () => this.step(page),
      Home: () => this.go(0),
      End: () => this.go(n - 1),
    };
    const act = actions[e.key.length === 1 ? e.key.toLowerCase() : e.key] || actions[e.key];
    if (!act) return;
    e.preventDefault();
    act();
  }

  toggleInvert() {
    this.invert = !this.invert;
    this.draw();
  }

  toggleAI() {
    this.showAI = !this.showAI;
    this.draw();
  }

  fitAndDraw() {
    this.fit();
    this.draw();
  }

  clearMeasures() {
    this.measures.delete(this.key(this.items[this.k]));
    $(this.root, ".vw-readout").textContent = "";
    this.draw();
  }

  help(show) {
    const box = $(this.root, ".vw-help");
    box.hidden = show === undefined ? !box.hidden : !show;
  }

  thumbs() {
    const box = $(this.root, ".vw-thumbs");
    box.hidden = this.series.length < 2;
    box.replaceChildren(
      ...this.series.map((s, i) => {
        const inst = s.instances[Math.floor(s.instances.length / 2)];
        const b = document.createElement("button");
        b.type = "button";
        b.className = "vw-thumb";
        const img = new Image();
        img.loading = "lazy";
        img.alt = "";
        img.src = inst.preview.url;
        const n = s.instances.reduce((sum, x) => sum + (x.frames || 1), 0);
        const cap = document.createElement("span");
        cap.textContent = `${s.number ?? ""} ${s.modality} ${s.description || ""} · ${n}`;
        b.append(img, cap);
        b.addEventListener("click", () => this.pick(i));
        return b;
      }),
    );
  }

  bind() {
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => this.down(e));
    c.addEventListener("pointermove", (e) => this.move(e));
    c.addEventListener("pointerup", (e) => this.up(e));
    c.addEventListener("pointercancel", (e) => this.up(e));
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    const on = (sel, ev, fn) => $(this.root, sel).addEventListener(ev, fn);
    this.root.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => this.setTool(b.dataset.tool)));
    on(".vw-fit", "click", () => this.fitAndDraw());
    on(".vw-one", "click", () => (this.oneToOne(), this.draw()));
    on(".vw-invert", "click", () => this.toggleInvert());
    on(".vw-ai", "click", () => this.toggleAI());
    on(".vw-cine", "click", () => this.play());
    on(".vw-help-button", "click", () => this.help());
    on(".vw-clear", "click", () => this.clearMeasures());
    on(".vw-preset", "change", (e) => e.target.value && this.preset(e.target.value));
    on(".vw-slider", "input", (e) => this.go(Number(e.target.value) - 1));
    // Keys reach the viewer the pointer or focus was last in, never while typing the report.
    this.root.addEventListener("pointerdown", () => (Viewer.active = this));
    Viewer.active ||= this;
    if (!Viewer.listening) {
      Viewer.listening = true;
      document.addEventListener("keydown", (e) => {
        const t = e.target;
        if (t.closest?.("textarea, select, [contenteditable]")) return;
        if (t.matches?.("input:not([type=range]):not([type=checkbox]):not([type=button])")) return;
        Viewer.active?.keydown(e);
      });
    }
  }
}
