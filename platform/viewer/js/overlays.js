// What is drawn over the image, in image space: AI boxes and heatmap, distance measurements
// (mixed into Viewer.prototype).

import { loadImage } from "./loader.js";
import { distanceMm } from "./windows.js";

export const overlays = {
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
  },

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
  },

  measureText(inst, m) {
    const mm = distanceMm(m.a, m.b, inst.spacing);
    const label = inst.spacing.calibrated ? this.t.calibrated : this.t.uncalibrated;
    return `${mm.toFixed(1)} mm (${label})`;
  },
};
