// The reading page's viewer: one canvas, the manifest's series as stacks of (instance, frame).
// Input (input.js) and overlays (overlays.js) are mixed into the class's prototype.
// Image space is the full image's pixels (columns × rows) whatever is drawn (preview or full), so
// AI boxes, heatmaps and measurements stay aligned at any display size and zoom.

import { input } from "./input.js";
import { Loader, loadImage, prefetch } from "./loader.js";
import { overlays } from "./overlays.js";
import { buildLut, decodeFrame, isColour, lutSize, paint } from "./pixels.js";
import { PRESETS, initialWindow, presetWindow } from "./windows.js";

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
    const manual = new Option(this.t.presets.manual, "manual");
    manual.hidden = true; // shown as the value once the window has been dragged
    select.replaceChildren(...opts.map(([v, label]) => new Option(label, v)), manual);
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
        if (inst.preview) img.src = inst.preview.url;
        const n = s.instances.reduce((sum, x) => sum + (x.frames || 1), 0);
        const cap = document.createElement("span");
        cap.textContent = `${s.number ?? ""} ${s.modality} ${s.description || ""} · ${n}`;
        b.append(img, cap);
        b.addEventListener("click", () => this.pick(i));
        return b;
      }),
    );
  }
}

Object.assign(Viewer.prototype, input, overlays);
