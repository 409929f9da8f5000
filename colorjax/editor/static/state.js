// The page's shared state: the element table (`ui`), the editor's state
// object (`state`), and the status line and busy flag that every module
// reports through. Modules share these by importing them; this one
// imports nothing.

export const $ = (id) => document.getElementById(id);

export const ui = {
  file: $('file'), mapFile: $('map-file'), status: $('status'),
  modelInfo: $('model-info'), photoName: $('photo-name'),
  photoViewport: $('photo-viewport'), resultViewport: $('result-viewport'),
  photoStage: $('photo-stage'), resultStage: $('result-stage'),
  photoCanvas: $('photo-canvas'), overlayCanvas: $('overlay-canvas'),
  cursor: $('brush-cursor'), result: $('result'), resultState: $('result-state'),
  brushSize: $('brush-size'), brushSizeValue: $('brush-size-value'),
  currentSwatch: $('current-swatch'), currentClass: $('current-class'),
  undo: $('undo'), redo: $('redo'), resetMap: $('reset-map'),
  overlayToggle: $('overlay-toggle'), overlayOpacity: $('overlay-opacity'),
  overlayOpacityValue: $('overlay-opacity-value'),
  classSearch: $('class-search'), classList: $('class-list'),
  classCount: $('class-count'), presentOnly: $('present-only'),
  downloadResult: $('download-result'), downloadMap: $('download-map'),
  downloadMapGray: $('download-map-gray'),
  numSamples: $('num-samples'), temperature: $('temperature'),
  temperatureValue: $('temperature-value'), resample: $('resample'),
  samples: $('samples'), zoomLabel: $('zoom-label'), hoverInfo: $('hover-info'),
};

export const state = {
  info: null, mode: 'view', numClasses: 0, names: [], palette: [],
  pal32: new Uint32Array(256),
  photo: null,          // {id, name, width, height}
  labels: null,         // Uint8Array [H*W] being edited, or null
  predicted: null,      // the model's map, for Reset
  overlay: null, overlay32: null, overlayCtx: null,
  counts: new Float64Array(256),
  tool: 'brush', current: 0, altHeld: false, spaceHeld: false,
  stroke: null, pan: null,
  undo: [], redo: [], undoBytes: 0,
  zoom: 1, fitMode: true,
  uploadToken: 0,
  // Colorize requests: debounced, one in flight, the latest edit wins.
  timer: null, inFlight: false, pending: false, requestSeq: 0, appliedSeq: 0,
  resultUrl: null, resultVersion: 0,
  sampleSeed: 0, sampleToken: 0, samplesBusy: false,
};

export function editable() { return state.mode === 'edit' && state.labels !== null; }

// ---------------------------------------------------------------- status

export function setStatus(message, kind = '') {
  ui.status.textContent = message;
  ui.status.className = 'status' + (kind ? ' ' + kind : '');
  ui.status.title = message;
}

export function updateBusy() {
  const busy = state.timer !== null || state.inFlight || state.samplesBusy ||
      document.body.classList.contains('uploading');
  document.body.dataset.busy = busy ? '1' : '0';
}
