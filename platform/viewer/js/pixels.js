// Pixels: decode the full-fidelity rendition with the browser's own WebP decoder, keep the stored
// values in typed arrays, and turn them into grey levels through a lookup table (LUT).

const COLOUR = /^(RGB|YBR|PALETTE)/;

export function isColour(inst) {
  return COLOUR.test(inst.photometric || "");
}

// One frame of the full rendition: {kind: "grey", values: Uint16Array|Uint8Array} or
// {kind: "rgb", image: ImageData}. webp16 packs v = R*256 + G (B = 0); webp8 grey is v = R.
export async function decodeFrame(url, inst, signal) {
  const answer = await fetch(url, { credentials: "same-origin", signal });
  if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
  const blob = await answer.blob();
  // No colour management and no premultiplication: the bytes are numbers, not colours.
  const bitmap = await createImageBitmap(blob, {
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true, colorSpace: "srgb" });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const format = inst.full.format;
  if (format === "webp8" && isColour(inst)) {
    return { kind: "rgb", width, height, image: new ImageData(rgba, width, height) };
  }
  const n = width * height;
  let values;
  if (format === "webp16") {
    values = new Uint16Array(n);
    for (let i = 0, j = 0; i < n; i++, j += 4) values[i] = (rgba[j] << 8) | rgba[j + 1];
  } else {
    values = new Uint8Array(n);
    for (let i = 0, j = 0; i < n; i++, j += 4) values[i] = rgba[j];
  }
  return { kind: "grey", width, height, values };
}

// The LUT maps a packed value v straight to a grey level: stored = v - offset, modality value =
// stored*slope + intercept, then the linear window, then MONOCHROME1 / invert.
export function buildLut(inst, size, win, invert) {
  const lut = new Uint8ClampedArray(size);
  const slope = inst.modality_lut?.slope ?? 1;
  const intercept = inst.modality_lut?.intercept ?? 0;
  const offset = inst.stored?.offset ?? 0;
  const width = Math.max(win.width, 1);
  const low = win.center - width / 2;
  // MONOCHROME1: the lowest value is white. The invert tool flips whatever is shown.
  const flip = (inst.photometric === "MONOCHROME1") !== Boolean(invert);
  for (let v = 0; v < size; v++) {
    let g = (((v - offset) * slope + intercept - low) / width) * 255;
    g = g < 0 ? 0 : g > 255 ? 255 : g;
    lut[v] = flip ? 255 - g : g;
  }
  return lut;
}

// Paint one frame into `out` (ImageData of the same size).
export function paint(frame, lut, invert, out) {
  const px = out.data;
  if (frame.kind === "rgb") {
    const src = frame.image.data;
    if (!invert) px.set(src);
    else
      for (let j = 0; j < src.length; j += 4) {
        px[j] = 255 - src[j];
        px[j + 1] = 255 - src[j + 1];
        px[j + 2] = 255 - src[j + 2];
        px[j + 3] = 255;
      }
    return;
  }
  const values = frame.values;
  for (let i = 0, j = 0; i < values.length; i++, j += 4) {
    const g = lut[values[i]];
    px[j] = px[j + 1] = px[j + 2] = g;
    px[j + 3] = 255;
  }
}

export function lutSize(frame) {
  return frame.values instanceof Uint16Array ? 65536 : 256;
}
