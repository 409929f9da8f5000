// Undo / redo: each change is the changed rectangle's indices before and
// after, kept within a byte budget; replaceMap() makes a whole new map
// (Reset, Open map...) one such change. Every change ends in afterEdit().

import {ui, state, editable} from './state.js';
import {updateCounts} from './classes.js';
import {unionRect, refreshOverlay} from './paint.js';
import {scheduleColorize} from './results.js';

const UNDO_BUDGET_BYTES = 384 << 20;

function copyRect(source, rect) {
  const {width} = state.photo;
  const [x0, y0, x1, y1] = rect;
  const w = x1 - x0 + 1;
  const out = new Uint8Array(w * (y1 - y0 + 1));
  for (let y = y0; y <= y1; y++) out.set(source.subarray(y * width + x0, y * width + x1 + 1), (y - y0) * w);
  return out;
}

function pasteRect(data, rect) {
  const {width} = state.photo;
  const [x0, y0, x1, y1] = rect;
  const w = x1 - x0 + 1;
  for (let y = y0; y <= y1; y++) state.labels.set(data.subarray((y - y0) * w, (y - y0 + 1) * w), y * width + x0);
}

// One undoable change: the rectangle's indices before and after.
export function commit(before, rect) {
  if (!rect) return;
  const entry = {rect, before: copyRect(before, rect), after: copyRect(state.labels, rect)};
  state.undo.push(entry);
  state.undoBytes += 2 * entry.before.length;
  for (const old of state.redo) state.undoBytes -= 2 * old.before.length;
  state.redo = [];
  while (state.undoBytes > UNDO_BUDGET_BYTES && state.undo.length > 1) {
    state.undoBytes -= 2 * state.undo.shift().before.length;
  }
  afterEdit();
}

function afterEdit() {
  updateHistoryButtons();
  updateCounts();
  scheduleColorize();
}

export function updateHistoryButtons() {
  ui.undo.disabled = !state.undo.length;
  ui.redo.disabled = !state.redo.length;
  ui.resetMap.disabled = !editable();
}

// Moves the newest change from one history to the other, restoring the
// rectangle as it was before (undo) or after (redo) that change.
function travel(from, to, side) {
  if (state.stroke || !from.length) return;
  const entry = from.pop();
  pasteRect(entry[side], entry.rect);
  refreshOverlay(entry.rect);
  to.push(entry);
  afterEdit();
}

export const undo = () => travel(state.undo, state.redo, 'before');
export const redo = () => travel(state.redo, state.undo, 'after');

// Replaces the whole map (Reset, Open map...) as one undoable change.
export function replaceMap(indices) {
  const before = state.labels.slice();
  const {width, height} = state.photo;
  let rect = null;
  for (let y = 0; y < height; y++) {
    for (let x = 0, i = y * width; x < width; x++, i++) {
      if (indices[i] !== before[i]) { rect = unionRect(rect, x, y, x, y); break; }
    }
    for (let x = width - 1, i = y * width + x; x >= 0; x--, i--) {
      if (indices[i] !== before[i]) { rect = unionRect(rect, x, y, x, y); break; }
    }
  }
  if (!rect) return false;
  state.labels.set(indices);
  refreshOverlay(rect);
  commit(before, rect);
  return true;
}
