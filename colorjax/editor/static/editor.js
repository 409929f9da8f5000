// colorjax semantic map editor: edits a photo's label map and shows the
// model's colorization follow (see colorjax/editor/server.py for the API).
//
// The label map lives in a Uint8Array of class indices at the photo's full
// resolution. Tools write indices into it directly (no canvas antialiasing
// can blend two classes); the overlay canvas is derived from it. Maps travel
// as 8-bit PNGs encoded and decoded in png.js (CompressionStream), so indices
// are exact both ways.
//
// This module is the page's entry (index.html loads it with <script
// type="module">; no build step): startup from /api/info, the event
// wiring and the keyboard shortcuts. The modules it imports hold the rest,
// one concern each: state.js (elements, state, status line), api.js
// (server requests), png.js (PNG codec), classes.js (class list),
// paint.js (painting the map), history.js (undo / redo), tools.js (tools
// and pointer events), zoom.js (zoom and scrolling), photo.js (opening
// photos and maps), results.js (colorization and samples), downloads.js
// (saving).

import {$, ui, state, editable, setStatus} from './state.js';
import {api} from './api.js';
import {buildClassList, visibleClasses, filterClasses, setCurrent} from './classes.js';
import {undo, redo, replaceMap} from './history.js';
import {setTool, brushSize, setBrushSize, onPointerDown, onPointerMove, onPointerUp, startPan, movePan} from './tools.js';
import {setZoom, fitZoom, syncScroll, onWheel, zoomStep} from './zoom.js';
import {openPhoto, openMap} from './photo.js';
import {requestSamples} from './results.js';
import {baseName, download, downloadMap} from './downloads.js';

// ---------------------------------------------------------------- setup

async function init() {
  try {
    state.info = await api('/api/info');
  } catch (e) {
    setStatus(e.message, 'error');
    return;
  }
  const info = state.info;
  state.mode = info.mode;
  state.names = info.class_names;
  state.numClasses = info.class_names.length;
  state.palette = info.palette;
  for (let i = 0; i < 256; i++) {
    const [r, g, b] = info.palette[i] || [128, 128, 128];
    state.pal32[i] = (255 << 24 | b << 16 | g << 8 | r) >>> 0;   // RGBA, little-endian
  }
  document.body.dataset.mode = state.mode;
  document.body.classList.toggle('no-classes', state.numClasses === 0);
  document.body.dataset.tool = state.tool;
  ui.modelInfo.textContent = `${info.method} · ${info.mode} mode`;
  ui.numSamples.max = info.max_samples;
  buildClassList();
  setCurrent(Math.min(1, state.numClasses - 1));
  wireEvents();
  setStatus('Open a photo to start.');
}

// --------------------------------------------------------------- wiring

function typing(event) {
  const target = event.target;
  return target instanceof HTMLInputElement && target.type !== 'range' && target.type !== 'checkbox' ||
      target instanceof HTMLTextAreaElement;
}

function onKeyDown(event) {
  if (event.key === 'Alt') { state.altHeld = true; event.preventDefault(); }
  const ctrl = event.ctrlKey || event.metaKey;
  const key = event.key.toLowerCase();
  if (ctrl && key === 'z' && !typing(event)) {
    event.preventDefault();
    event.shiftKey ? redo() : undo();
    return;
  }
  if (ctrl && key === 'y' && !typing(event)) { event.preventDefault(); redo(); return; }
  if (ctrl || event.altKey || typing(event)) return;
  if (event.key === ' ') { state.spaceHeld = true; event.preventDefault(); return; }
  const actions = {
    b: () => setTool('brush'), f: () => setTool('fill'), g: () => setTool('fill'),
    i: () => setTool('picker'), p: () => setTool('picker'),
    '[': () => setBrushSize(brushSize() - Math.max(1, Math.round(brushSize() * 0.15))),
    ']': () => setBrushSize(brushSize() + Math.max(1, Math.round(brushSize() * 0.15))),
    o: () => { ui.overlayToggle.checked = !ui.overlayToggle.checked; applyOverlayStyle(); },
    0: fitZoom, 1: () => { state.fitMode = false; setZoom(1); },
    '+': () => zoomStep(1.25), '=': () => zoomStep(1.25), '-': () => zoomStep(0.8),
    r: () => { if (state.mode === 'sample' && state.photo) { state.sampleSeed++; requestSamples(); } },
  };
  if (actions[key]) { event.preventDefault(); actions[key](); }
}

function onKeyUp(event) {
  if (event.key === 'Alt') state.altHeld = false;
  if (event.key === ' ') {
    state.spaceHeld = false;
    // A focused button would take the released space bar as a click.
    if (!typing(event)) event.preventDefault();
  }
}

function applyOverlayStyle() {
  const opacity = Number(ui.overlayOpacity.value);
  ui.overlayOpacityValue.textContent = `${opacity}%`;
  ui.overlayCanvas.style.opacity = ui.overlayToggle.checked ? opacity / 100 : 0;
}

function wireEvents() {
  ui.file.addEventListener('change', () => {
    const file = ui.file.files[0];
    ui.file.value = '';          // the same file can be opened again
    openPhoto(file);
  });
  ui.mapFile.addEventListener('change', () => {
    const file = ui.mapFile.files[0];
    ui.mapFile.value = '';
    openMap(file);
  });
  for (const button of document.querySelectorAll('.tool')) {
    button.addEventListener('click', () => setTool(button.dataset.tool));
  }
  ui.brushSize.addEventListener('input', () => setBrushSize(brushSize()));
  ui.undo.addEventListener('click', undo);
  ui.redo.addEventListener('click', redo);
  ui.resetMap.addEventListener('click', () => {
    if (editable() && state.predicted && !replaceMap(state.predicted)) setStatus('The map is the model\'s prediction already.');
  });
  ui.overlayToggle.addEventListener('change', applyOverlayStyle);
  ui.overlayOpacity.addEventListener('input', () => { ui.overlayToggle.checked = true; applyOverlayStyle(); });
  ui.classSearch.addEventListener('input', filterClasses);
  ui.classSearch.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      const first = visibleClasses()[0];
      if (first) setCurrent(Number(first.dataset.index));
    } else if (event.key === 'Escape') {
      ui.classSearch.value = '';
      filterClasses();
    }
  });
  ui.presentOnly.addEventListener('change', filterClasses);
  ui.classList.addEventListener('click', (event) => {
    const item = event.target.closest('li[data-index]');
    if (item) setCurrent(Number(item.dataset.index));
  });
  ui.downloadResult.addEventListener('click', () => {
    if (state.resultUrl) download(state.resultUrl, `${baseName()}_colorized.png`);
  });
  ui.downloadMap.addEventListener('click', () => downloadMap(true));
  ui.downloadMapGray.addEventListener('click', () => downloadMap(false));
  ui.temperature.addEventListener('input', () => { ui.temperatureValue.textContent = Number(ui.temperature.value).toFixed(2); });
  ui.temperature.addEventListener('change', requestSamples);    // same seed: compare temperatures
  ui.numSamples.addEventListener('change', requestSamples);
  ui.resample.addEventListener('click', () => { state.sampleSeed++; requestSamples(); });

  const canvas = ui.photoCanvas;
  canvas.addEventListener('pointerdown', onPointerDown);
  canvas.addEventListener('pointermove', onPointerMove);
  canvas.addEventListener('pointerup', onPointerUp);
  canvas.addEventListener('pointercancel', onPointerUp);
  canvas.addEventListener('pointerleave', () => { ui.cursor.style.display = 'none'; });
  canvas.addEventListener('contextmenu', (event) => event.preventDefault());
  // No autoscroll on middle-button drags: they pan.
  ui.photoViewport.addEventListener('mousedown', (event) => { if (event.button === 1) event.preventDefault(); });
  ui.photoViewport.addEventListener('pointerdown', (event) => {
    if (event.target !== canvas && state.photo && (event.button === 1 || state.spaceHeld)) startPan(event);
  });
  ui.photoViewport.addEventListener('pointermove', (event) => { if (state.pan && event.target !== canvas) movePan(event); });
  ui.photoViewport.addEventListener('pointerup', onPointerUp);
  for (const viewport of [ui.photoViewport, ui.resultViewport]) {
    viewport.addEventListener('wheel', onWheel, {passive: false});
  }
  ui.photoViewport.addEventListener('scroll', () => syncScroll(ui.photoViewport, ui.resultViewport));
  ui.resultViewport.addEventListener('scroll', () => syncScroll(ui.resultViewport, ui.photoViewport));
  $('zoom-fit').addEventListener('click', fitZoom);
  $('zoom-in').addEventListener('click', () => zoomStep(1.25));
  $('zoom-out').addEventListener('click', () => zoomStep(0.8));
  $('zoom-100').addEventListener('click', () => { state.fitMode = false; setZoom(1); });
  // Refit when the pane changes size (window, the samples row appearing).
  new ResizeObserver(() => { if (state.fitMode) fitZoom(); }).observe(ui.photoViewport);
  window.addEventListener('keydown', onKeyDown);
  window.addEventListener('keyup', onKeyUp);
  window.addEventListener('blur', () => { state.altHeld = state.spaceHeld = false; });

  // Drag and drop / paste a photo anywhere on the page.
  let dragDepth = 0;
  const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes('Files');
  window.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    dragDepth++;
    document.body.classList.add('dragging');
  });
  window.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) document.body.classList.remove('dragging');
  });
  window.addEventListener('dragover', (event) => { if (hasFiles(event)) event.preventDefault(); });
  window.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    document.body.classList.remove('dragging');
    openPhoto(event.dataTransfer.files[0]);
  });
  window.addEventListener('paste', (event) => {
    const file = [...(event.clipboardData ? event.clipboardData.files : [])].find((f) => f.type.startsWith('image/'));
    if (file) { event.preventDefault(); openPhoto(file); }
  });
  window.addEventListener('beforeunload', (event) => {
    if (state.undo.length) { event.preventDefault(); event.returnValue = ''; }
  });
  applyOverlayStyle();
  setBrushSize(brushSize());
}

// For tests and the console: read-only views of the editor's state.
window.colorjaxEditor = {
  labels: () => state.labels,
  photo: () => state.photo,
  state: () => ({tool: state.tool, current: state.current, zoom: state.zoom,
                 undo: state.undo.length, redo: state.redo.length}),
};

init();
