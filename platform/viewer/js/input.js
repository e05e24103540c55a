// Pointer, wheel, touch and keyboard input of the viewer (mixed into Viewer.prototype).
// Left drag: the active tool (window/level by default); right drag: window/level; Shift or the
// middle button: pan; Ctrl: zoom; two fingers: pinch zoom and pan.

const $ = (root, sel) => root.querySelector(sel);
const keys = { active: null, listening: false }; // one keyboard listener for every viewer of the page

export const input = {
  imagePoint(p) {
    const { s, x, y } = this.view;
    return { x: (p.x - x) / s, y: (p.y - y) / s };
  },

  devicePoint(e) {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    return { x: (e.clientX - r.left) * dpr, y: (e.clientY - r.top) * dpr };
  },

  setTool(tool) {
    this.tool = tool;
    this.draw();
  },

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
  },

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
      $(this.root, ".vw-preset").value = "manual";
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
  },

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
  },

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
  },

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
  },

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
    this.root.addEventListener("pointerdown", () => (keys.active = this));
    keys.active ||= this;
    if (!keys.listening) {
      keys.listening = true;
      document.addEventListener("keydown", (e) => {
        const t = e.target;
        if (t.closest?.("textarea, select, [contenteditable]")) return;
        if (t.matches?.("input:not([type=range]):not([type=checkbox]):not([type=button])")) return;
        keys.active?.keydown(e);
      });
    }
  },
};
