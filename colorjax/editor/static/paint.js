// Painting the label map: pointer -> pixel coordinates, the brush's
// hard-edged capsule and the flood fill, which write class indices into
// state.labels directly, and the overlay canvas redrawn from them.

import {ui, state} from './state.js';

// Pointer position -> fractional image coordinates.
export function imagePoint(event) {
  const rect = ui.photoCanvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * state.photo.width / rect.width,
          (event.clientY - rect.top) * state.photo.height / rect.height];
}

export function pixelAt(x, y) {
  const {width, height} = state.photo;
  return [Math.min(width - 1, Math.max(0, Math.floor(x))), Math.min(height - 1, Math.max(0, Math.floor(y)))];
}

export function unionRect(rect, x0, y0, x1, y1) {
  if (!rect) return [x0, y0, x1, y1];
  return [Math.min(rect[0], x0), Math.min(rect[1], y0), Math.max(rect[2], x1), Math.max(rect[3], y1)];
}

// Paints class `value` into every pixel whose centre lies within `radius`
// of the segment (x0, y0)-(x1, y1): a capsule, hard-edged. Returns the
// changed rectangle [x0, y0, x1, y1] (inclusive) or null.
export function paintCapsule(x0, y0, x1, y1, radius, value) {
  const {width, height} = state.photo;
  const labels = state.labels;
  const left = Math.max(0, Math.floor(Math.min(x0, x1) - radius));
  const right = Math.min(width - 1, Math.ceil(Math.max(x0, x1) + radius));
  const top = Math.max(0, Math.floor(Math.min(y0, y1) - radius));
  const bottom = Math.min(height - 1, Math.ceil(Math.max(y0, y1) + radius));
  const dx = x1 - x0, dy = y1 - y0, length2 = dx * dx + dy * dy, r2 = radius * radius;
  let rect = null;
  for (let y = top; y <= bottom; y++) {
    const cy = y + 0.5;
    for (let x = left; x <= right; x++) {
      const cx = x + 0.5;
      let t = length2 ? ((cx - x0) * dx + (cy - y0) * dy) / length2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = x0 + t * dx - cx, ey = y0 + t * dy - cy;
      if (ex * ex + ey * ey <= r2) {
        const i = y * width + x;
        if (labels[i] !== value) {
          labels[i] = value;
          rect = unionRect(rect, x, y, x, y);
        }
      }
    }
  }
  return rect;
}

// 4-connected flood fill of the clicked pixel's class region.
export function floodFill(sx, sy, value) {
  const {width, height} = state.photo;
  const labels = state.labels;
  const target = labels[sy * width + sx];
  if (target === value) return null;
  let left = sx, right = sx, top = sy, bottom = sy;
  const stack = [sx, sy];
  while (stack.length) {
    const y = stack.pop(), x = stack.pop();
    const row = y * width;
    if (labels[row + x] !== target) continue;
    let l = x, r = x;
    while (l > 0 && labels[row + l - 1] === target) l--;
    while (r < width - 1 && labels[row + r + 1] === target) r++;
    labels.fill(value, row + l, row + r + 1);
    if (l < left) left = l;
    if (r > right) right = r;
    if (y < top) top = y;
    if (y > bottom) bottom = y;
    for (const ny of [y - 1, y + 1]) {
      if (ny < 0 || ny >= height) continue;
      const nrow = ny * width;
      let inRun = false;
      for (let nx = l; nx <= r; nx++) {
        const match = labels[nrow + nx] === target;
        if (match && !inRun) stack.push(nx, ny);
        inRun = match;
      }
    }
  }
  return [left, top, right, bottom];
}

// Redraws the overlay inside an inclusive rectangle from the indices.
export function refreshOverlay(rect) {
  if (!state.overlay || !rect) return;
  const {width} = state.photo;
  const [x0, y0, x1, y1] = rect;
  const labels = state.labels, out = state.overlay32, pal = state.pal32;
  for (let y = y0; y <= y1; y++) {
    for (let i = y * width + x0, end = y * width + x1; i <= end; i++) out[i] = pal[labels[i]];
  }
  state.overlayCtx.putImageData(state.overlay, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
}
