// Zoom and scrolling of the two panes (photo and colorization), which
// always show the same place at the same scale.

import {ui, state} from './state.js';

const MAX_ZOOM = 32;

export function setZoom(zoom, anchor = null) {
  if (!state.photo) return;
  const {width, height} = state.photo;
  const viewport = ui.photoViewport;
  const minZoom = Math.min(1, 64 / Math.max(width, height));
  zoom = Math.max(minZoom, Math.min(MAX_ZOOM, zoom));
  // Keep the image point under the anchor (client x, y) in place.
  const rect = ui.photoStage.getBoundingClientRect();
  const vrect = viewport.getBoundingClientRect();
  const ax = anchor ? anchor[0] : vrect.left + vrect.width / 2;
  const ay = anchor ? anchor[1] : vrect.top + vrect.height / 2;
  const ix = (ax - rect.left) / (rect.width || 1) * width;
  const iy = (ay - rect.top) / (rect.height || 1) * height;
  state.zoom = zoom;
  for (const stage of [ui.photoStage, ui.resultStage]) {
    stage.style.width = `${Math.round(width * zoom)}px`;
    stage.style.height = `${Math.round(height * zoom)}px`;
    stage.classList.toggle('pixelated', zoom >= 2);
  }
  ui.zoomLabel.textContent = `${Math.round(zoom * 100)}%`;
  const after = ui.photoStage.getBoundingClientRect();
  viewport.scrollLeft += after.left + ix / width * after.width - ax;
  viewport.scrollTop += after.top + iy / height * after.height - ay;
  syncScroll(viewport, ui.resultViewport);
}

export function fitZoom() {
  if (!state.photo) return;
  const pad = 16;
  const w = ui.photoViewport.clientWidth - pad, h = ui.photoViewport.clientHeight - pad;
  state.fitMode = true;
  setZoom(Math.max(0.01, Math.min(w / state.photo.width, h / state.photo.height, MAX_ZOOM)));
}

let syncing = false;
export function syncScroll(from, to) {
  if (syncing) return;
  syncing = true;
  to.scrollLeft = from.scrollLeft;
  to.scrollTop = from.scrollTop;
  requestAnimationFrame(() => { syncing = false; });
}

export function onWheel(event) {
  if (!state.photo) return;
  event.preventDefault();
  state.fitMode = false;
  // Both panes scroll together: an anchor in the result pane is the same
  // place in the photo pane.
  const here = event.currentTarget.getBoundingClientRect();
  const photo = ui.photoViewport.getBoundingClientRect();
  const anchor = [event.clientX - here.left + photo.left, event.clientY - here.top + photo.top];
  setZoom(state.zoom * Math.exp(-event.deltaY * (event.deltaMode ? 0.05 : 0.0015)), anchor);
}

export function zoomStep(factor) { state.fitMode = false; setZoom(state.zoom * factor); }
