// Opening a photo (upload to /api/image, then the returned map and
// colorization shown) and opening a label map PNG for it.

import {ui, state, editable, setStatus, updateBusy} from './state.js';
import {api} from './api.js';
import {decodeIndexPng, dataUrlBytes, loadImage} from './png.js';
import {filterClasses, updateCounts} from './classes.js';
import {refreshOverlay} from './paint.js';
import {updateHistoryButtons, replaceMap} from './history.js';
import {setBrushSize} from './tools.js';
import {fitZoom} from './zoom.js';
import {setResult, requestSamples} from './results.js';

function megabytes(bytes) { return (bytes / 1e6).toPrecision(3).replace(/\.?0+$/, '') + ' MB'; }

export async function openPhoto(file) {
  if (!file || !state.info) return;
  if (file.size > state.info.max_upload_bytes) {
    setStatus(`"${file.name}" is ${megabytes(file.size)}, larger than the ${megabytes(state.info.max_upload_bytes)} upload limit.`, 'error');
    return;
  }
  const token = ++state.uploadToken;
  document.body.classList.add('uploading');
  updateBusy();
  setStatus(`Opening "${file.name}": segmenting and colorizing…`, 'busy');
  const form = new FormData();
  form.append('file', file, file.name);
  try {
    const body = await api('/api/image', {method: 'POST', body: form});
    if (token !== state.uploadToken) return;
    await showPhoto(body);
  } catch (e) {
    if (token === state.uploadToken) setStatus(e.message, 'error');
  } finally {
    if (token === state.uploadToken) document.body.classList.remove('uploading');
    updateBusy();
  }
}

async function showPhoto(body) {
  const image = await loadImage(body.photo);
  let labels = null;
  if (body.labels) {
    const decoded = await decodeIndexPng(await dataUrlBytes(body.labels));
    if (decoded.width !== body.width || decoded.height !== body.height) throw new Error('The server sent a map of the wrong size.');
    labels = decoded.indices;
  } else if (state.mode === 'edit') {
    labels = new Uint8Array(body.width * body.height);   // no prediction: class 0
  }
  // Forget the previous photo's pending colorizations.
  clearTimeout(state.timer);
  state.timer = null;
  state.pending = false;
  state.stroke = null;
  state.photo = {id: body.id, name: body.name, width: body.width, height: body.height};
  state.labels = labels;
  state.predicted = labels ? labels.slice() : null;
  state.undo = [];
  state.redo = [];
  state.undoBytes = 0;
  const {width, height} = state.photo;
  for (const canvas of [ui.photoCanvas, ui.overlayCanvas]) { canvas.width = width; canvas.height = height; }
  ui.photoCanvas.getContext('2d').drawImage(image, 0, 0);
  state.overlayCtx = ui.overlayCanvas.getContext('2d');
  if (labels) {
    state.overlay = state.overlayCtx.createImageData(width, height);
    state.overlay32 = new Uint32Array(state.overlay.data.buffer);
    refreshOverlay([0, 0, width - 1, height - 1]);
  } else {
    state.overlay = state.overlay32 = null;
    state.overlayCtx.clearRect(0, 0, width, height);
  }
  document.body.classList.add('has-photo');
  ui.photoName.textContent = `${body.name} · ${width}×${height}`;
  ui.brushSize.max = Math.max(50, Math.min(1000, Math.round(Math.max(width, height) / 4)));
  setBrushSize(Math.max(3, Math.round(Math.max(width, height) / 40)));
  updateCounts();
  filterClasses();
  updateHistoryButtons();
  ui.downloadMap.disabled = ui.downloadMapGray.disabled = !labels;
  ui.resultState.textContent = '';
  state.appliedSeq = state.requestSeq;    // older replies are stale now
  setResult(body.result);
  fitZoom();
  const hint = state.mode === 'edit' ? ' Paint the map; the colorization follows.' : '';
  setStatus(`Opened "${body.name}" (${width}×${height}).${body.labels ? '' : ' The model predicts no map.'}${hint}`, 'ok');
  if (state.mode === 'sample') {
    ui.resample.disabled = false;
    requestSamples();
  }
}

export async function openMap(file) {
  if (!file || !editable()) return;
  try {
    const decoded = await decodeIndexPng(await file.arrayBuffer());
    const {width, height} = state.photo;
    if (decoded.width !== width || decoded.height !== height) {
      throw new Error(`it is ${decoded.width}×${decoded.height}, the photo ${width}×${height}`);
    }
    let max = 0;
    for (const v of decoded.indices) if (v > max) max = v;
    if (max >= state.numClasses) throw new Error(`it holds class ${max}; this model has classes 0..${state.numClasses - 1}`);
    const changed = replaceMap(decoded.indices);
    setStatus(changed ? `Loaded the map "${file.name}".` : `"${file.name}" is the map already shown.`, 'ok');
  } catch (e) {
    setStatus(`Cannot use "${file.name}" as a map: ${e.message}.`, 'error');
  }
}
