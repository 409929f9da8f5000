// The colorization pane: the shown result, /api/colorize requests after
// edits (debounced, one in flight, the latest edit wins), and the
// sample mode's /api/sample samples.

import {ui, state, setStatus, updateBusy} from './state.js';
import {postJson} from './api.js';
import {encodeIndexPng, blobToDataUrl} from './png.js';

const DEBOUNCE_MS = 300;

export function setResult(url) {
  state.resultUrl = url;
  ui.result.src = url;
  ui.result.dataset.version = String(++state.resultVersion);
  ui.downloadResult.disabled = false;
}

// ------------------------------------------------------------ colorize

export function scheduleColorize() {
  if (state.mode !== 'edit' || !state.photo) return;
  clearTimeout(state.timer);
  ui.resultState.textContent = '· waiting for edits to settle…';
  state.timer = setTimeout(() => { state.timer = null; sendColorize(); }, DEBOUNCE_MS);
  updateBusy();
}

async function sendColorize() {
  if (state.inFlight) { state.pending = true; updateBusy(); return; }
  if (!state.photo || !state.labels) return;
  state.inFlight = true;
  updateBusy();
  const photo = state.photo;
  const seq = ++state.requestSeq;
  ui.resultState.textContent = '· colorizing…';
  setStatus('Colorizing…', 'busy');
  try {
    const blob = await encodeIndexPng(state.labels, photo.width, photo.height);
    const body = await postJson('/api/colorize', {id: photo.id, map: await blobToDataUrl(blob)});
    if (state.photo === photo && seq > state.appliedSeq) {
      state.appliedSeq = seq;
      setResult(body.result);
      if (!state.pending && state.timer === null) setStatus('Colorization updated.', 'ok');
    }
  } catch (e) {
    if (state.photo === photo) setStatus(e.message, 'error');
  } finally {
    state.inFlight = false;
    if (state.pending) {
      state.pending = false;
      sendColorize();
    } else if (state.timer === null) {
      ui.resultState.textContent = '';
    }
    updateBusy();
  }
}

// -------------------------------------------------------------- samples

export async function requestSamples() {
  if (!state.photo || state.mode !== 'sample') return;
  const token = ++state.sampleToken;
  const photo = state.photo;
  const count = Math.max(1, Math.min(state.info.max_samples, Math.round(Number(ui.numSamples.value) || 4)));
  ui.numSamples.value = count;
  const temperature = Number(ui.temperature.value);
  const seed = state.sampleSeed;
  state.samplesBusy = true;
  updateBusy();
  setStatus(`Sampling ${count} colorization${count > 1 ? 's' : ''} (T = ${temperature.toFixed(2)})…`, 'busy');
  try {
    const body = await postJson('/api/sample', {id: photo.id, num_samples: count, temperature, seed});
    if (token !== state.sampleToken || state.photo !== photo) return;
    ui.samples.textContent = '';
    body.images.forEach((url, k) => {
      const figure = document.createElement('figure');
      const img = document.createElement('img');
      img.src = url;
      img.alt = `sample ${k + 1}`;
      const caption = document.createElement('figcaption');
      caption.textContent = `#${k + 1} · seed ${seed} · T ${temperature.toFixed(2)}`;
      figure.append(img, caption);
      figure.addEventListener('click', () => {
        for (const other of ui.samples.querySelectorAll('figure.selected')) other.classList.remove('selected');
        figure.classList.add('selected');
        setResult(url);
      });
      ui.samples.append(figure);
    });
    setStatus(`${body.images.length} samples (seed ${seed}).`, 'ok');
  } catch (e) {
    if (token === state.sampleToken) setStatus(e.message, 'error');
  } finally {
    if (token === state.sampleToken) state.samplesBusy = false;
    updateBusy();
  }
}
