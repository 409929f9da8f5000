// The class list in the sidebar: one row per class with its swatch and
// share of the map, the filter box, and the current (painting) class.

import {ui, state} from './state.js';

export function buildClassList() {
  ui.classList.textContent = '';
  state.names.forEach((name, index) => {
    const item = document.createElement('li');
    item.dataset.index = index;
    item.setAttribute('role', 'option');
    item.title = `${name} (class ${index})`;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${state.palette[index].join(',')})`;
    const label = document.createElement('span');
    label.className = 'name';
    label.textContent = name.replace(/_/g, ' ');
    const share = document.createElement('span');
    share.className = 'share';
    const number = document.createElement('span');
    number.className = 'index';
    number.textContent = index;
    item.append(swatch, label, share, number);
    ui.classList.append(item);
  });
  const none = document.createElement('li');
  none.className = 'none';
  none.textContent = 'No class matches.';
  none.hidden = true;
  ui.classList.append(none);
  ui.classCount.textContent = `(${state.numClasses})`;
}

export function visibleClasses() {
  return [...ui.classList.querySelectorAll('li[data-index]')].filter((item) => !item.hidden);
}

export function filterClasses() {
  const query = ui.classSearch.value.trim().toLowerCase().replace(/_/g, ' ');
  const presentOnly = ui.presentOnly.checked && state.labels;
  let shown = 0;
  for (const item of ui.classList.querySelectorAll('li[data-index]')) {
    const index = Number(item.dataset.index);
    const name = state.names[index].toLowerCase().replace(/_/g, ' ');
    const match = !query || name.includes(query) || String(index) === query;
    item.hidden = !match || (presentOnly && !state.counts[index]);
    shown += !item.hidden;
  }
  ui.classList.querySelector('li.none').hidden = shown > 0;
}

export function updateCounts() {
  state.counts.fill(0);
  const labels = state.labels;
  if (labels) {
    const counts = new Uint32Array(256);
    for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
    state.counts.set(counts);
  }
  const total = labels ? labels.length : 1;
  for (const item of ui.classList.querySelectorAll('li[data-index]')) {
    const count = state.counts[Number(item.dataset.index)];
    const share = count / total * 100;
    item.querySelector('.share').textContent = !labels ? '' : !count ? '' :
        share < 0.1 ? '<0.1%' : share.toFixed(share < 10 ? 1 : 0) + '%';
    item.classList.toggle('absent', Boolean(labels) && !count);
  }
  if (ui.presentOnly.checked) filterClasses();
}

export function setCurrent(index) {
  if (index < 0 || index >= state.numClasses) return;
  state.current = index;
  const rgb = `rgb(${state.palette[index].join(',')})`;
  ui.currentSwatch.style.background = rgb;
  ui.currentClass.textContent = state.names[index].replace(/_/g, ' ');
  for (const item of ui.classList.querySelectorAll('li.current')) {
    item.classList.remove('current');
    item.removeAttribute('aria-selected');
  }
  const item = ui.classList.querySelector(`li[data-index="${index}"]`);
  if (item) {
    item.classList.add('current');
    item.setAttribute('aria-selected', 'true');
    item.scrollIntoView({block: 'nearest'});
  }
}
