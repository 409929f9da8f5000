// The tools (brush, fill, picker), the brush size, and the photo pane's
// pointer events: strokes, fills and picks, the brush cursor, the hover
// read-out, and panning.

import {ui, state, editable} from './state.js';
import {setCurrent} from './classes.js';
import {imagePoint, pixelAt, unionRect, paintCapsule, floodFill, refreshOverlay} from './paint.js';
import {commit} from './history.js';

export function setTool(tool) {
  state.tool = tool;
  document.body.dataset.tool = tool;
  for (const button of document.querySelectorAll('.tool')) button.classList.toggle('active', button.dataset.tool === tool);
  if (tool !== 'brush') ui.cursor.style.display = 'none';
}

export function brushSize() { return Number(ui.brushSize.value); }

export function setBrushSize(size) {
  size = Math.max(1, Math.min(Number(ui.brushSize.max), Math.round(size)));
  ui.brushSize.value = size;
  ui.brushSizeValue.textContent = `${size} px`;
}

function pickAt(x, y) {
  if (!state.labels) return;
  const [px, py] = pixelAt(x, y);
  setCurrent(state.labels[py * state.photo.width + px]);
}

// --------------------------------------------------------------- events

function effectiveTool() { return state.altHeld ? 'picker' : state.tool; }

export function onPointerDown(event) {
  if (!state.photo) return;
  if (event.button === 1 || (event.button === 0 && state.spaceHeld)) {
    startPan(event);
    return;
  }
  if (event.button !== 0 || !state.labels) return;
  event.preventDefault();
  const [x, y] = imagePoint(event);
  const tool = event.altKey ? 'picker' : effectiveTool();
  if (tool === 'picker' || !editable()) {
    pickAt(x, y);
    return;
  }
  const [px, py] = pixelAt(x, y);
  if (tool === 'fill') {
    const before = state.labels.slice();
    const rect = floodFill(px, py, state.current);
    refreshOverlay(rect);
    commit(before, rect);
    return;
  }
  // Brush: stroke points snap to pixel centres (odd sizes: centred discs).
  ui.photoCanvas.setPointerCapture(event.pointerId);
  const point = [px + 0.5, py + 0.5];
  state.stroke = {before: state.labels.slice(), rect: null, last: point, pointerId: event.pointerId};
  strokeTo(point);
}

function strokeTo(point) {
  const stroke = state.stroke;
  const rect = paintCapsule(stroke.last[0], stroke.last[1], point[0], point[1], brushSize() / 2, state.current);
  stroke.last = point;
  if (rect) {
    refreshOverlay(rect);
    stroke.rect = stroke.rect ? unionRect(stroke.rect, ...rect) : rect;
  }
}

export function onPointerMove(event) {
  if (!state.photo) return;
  if (state.pan) { movePan(event); return; }
  const [x, y] = imagePoint(event);
  updateCursor(x, y);
  showHover(x, y);
  if (state.stroke && event.pointerId === state.stroke.pointerId) {
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const [ex, ey] = imagePoint(e);
      const [px, py] = pixelAt(ex, ey);
      strokeTo([px + 0.5, py + 0.5]);
    }
  }
}

export function onPointerUp(event) {
  if (state.pan) { state.pan = null; document.body.classList.remove('panning'); return; }
  const stroke = state.stroke;
  if (!stroke || event.pointerId !== stroke.pointerId) return;
  state.stroke = null;
  commit(stroke.before, stroke.rect);
}

function updateCursor(x, y) {
  if (effectiveTool() !== 'brush' || !editable()) { ui.cursor.style.display = 'none'; return; }
  const scale = ui.photoCanvas.getBoundingClientRect().width / state.photo.width;
  const size = brushSize();
  const [px, py] = pixelAt(x, y);
  // The painted disc is centred on the pixel centre, odd or even size.
  const d = size * scale;
  ui.cursor.style.display = 'block';
  ui.cursor.style.width = ui.cursor.style.height = `${d}px`;
  ui.cursor.style.left = `${(px + 0.5) * scale - d / 2}px`;
  ui.cursor.style.top = `${(py + 0.5) * scale - d / 2}px`;
}

function showHover(x, y) {
  const [px, py] = pixelAt(x, y);
  let text = `x ${px}, y ${py}`;
  if (state.labels) {
    const index = state.labels[py * state.photo.width + px];
    text += ` · ${(state.names[index] || '?').replace(/_/g, ' ')} (${index})`;
  }
  ui.hoverInfo.textContent = text;
}

export function startPan(event) {
  event.preventDefault();
  state.pan = {x: event.clientX, y: event.clientY, left: ui.photoViewport.scrollLeft, top: ui.photoViewport.scrollTop};
  document.body.classList.add('panning');
  ui.photoCanvas.setPointerCapture(event.pointerId);
}

export function movePan(event) {
  ui.photoViewport.scrollLeft = state.pan.left - (event.clientX - state.pan.x);
  ui.photoViewport.scrollTop = state.pan.top - (event.clientY - state.pan.y);
}
