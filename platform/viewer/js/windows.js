// Windows in modality units (Hounsfield for CT). Presets are the usual reading windows.
export const PRESETS = [
  ["lung", -600, 1500],
  ["mediastinum", 40, 400],
  ["bone", 400, 1800],
  ["brain", 40, 80],
  ["subdural", 75, 215],
  ["abdomen", 40, 350],
];

// The file's own window first, unless it misses the pixels; then the percentile stretch.
export function initialWindow(inst) {
  const own = (inst.windows || []).find((w) => !w.misses && w.width > 0);
  if (own) return { center: own.center, width: own.width, name: "file" };
  const s = inst.stretch || { center: 128, width: 256 };
  return { center: s.center, width: Math.max(s.width, 1), name: "stretch" };
}

export function presetWindow(name, inst) {
  if (name === "file") return initialWindow(inst);
  if (name === "stretch" && inst.stretch) {
    return { center: inst.stretch.center, width: Math.max(inst.stretch.width, 1), name };
  }
  const p = PRESETS.find((x) => x[0] === name);
  return p ? { center: p[1], width: p[2], name } : initialWindow(inst);
}

// Millimetres between two points given in image pixels (row spacing is vertical).
export function distanceMm(a, b, spacing) {
  const dx = (b.x - a.x) * spacing.column_mm;
  const dy = (b.y - a.y) * spacing.row_mm;
  return Math.hypot(dx, dy);
}
