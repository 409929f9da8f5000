// Saving the colorization and the label map (indexed or greyscale PNG).

import {state} from './state.js';
import {encodeIndexPng} from './png.js';

export function baseName() { return state.photo ? state.photo.name.replace(/\.[^.]+$/, '') : 'image'; }

export function download(url, filename) {
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
}

export async function downloadMap(indexed) {
  if (!state.labels) return;
  const {width, height} = state.photo;
  const palette = indexed ? state.palette.slice(0, 256) : null;
  const blob = await encodeIndexPng(state.labels, width, height, palette);
  const url = URL.createObjectURL(blob);
  download(url, `${baseName()}_${indexed ? 'map' : 'map_gray'}.png`);
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
