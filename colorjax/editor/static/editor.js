// colorjax semantic map editor: edits a photo's label map and shows the
// model's colorization follow (see colorjax/editor/server.py for the API).
//
// The label map lives in a Uint8Array of class indices at the photo's full
// resolution. Tools write indices into it directly (no canvas antialiasing
// can blend two classes); the overlay canvas is derived from it. Maps travel
// as 8-bit PNGs encoded and decoded here (CompressionStream), so indices
// are exact both ways.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const DEBOUNCE_MS = 300;
  const UNDO_BUDGET_BYTES = 384 << 20;
  const MAX_ZOOM = 32;

  const ui = {
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

  const state = {
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

  // ---------------------------------------------------------------- status

  function setStatus(message, kind = '') {
    ui.status.textContent = message;
    ui.status.className = 'status' + (kind ? ' ' + kind : '');
    ui.status.title = message;
  }

  function updateBusy() {
    const busy = state.timer !== null || state.inFlight || state.samplesBusy ||
        document.body.classList.contains('uploading');
    document.body.dataset.busy = busy ? '1' : '0';
  }

  function megabytes(bytes) { return (bytes / 1e6).toPrecision(3).replace(/\.?0+$/, '') + ' MB'; }

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (e) {
      throw new Error('The editor server cannot be reached (' + e.message + '). Is it still running?');
    }
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) {
      throw new Error(body && body.error ? body.error : `The server answered ${response.status} ${response.statusText}.`);
    }
    if (!body) throw new Error('The server sent a reply that is not JSON.');
    return body;
  }

  function postJson(path, payload) {
    return api(path, {
      method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(payload),
    });
  }

  // ------------------------------------------------------------ PNG codec

  const CRC_TABLE = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    return table;
  })();

  function crc32(bytes, crc = 0xffffffff) {
    for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
    return crc;
  }

  async function streamBytes(bytes, transform) {
    const stream = new Blob([bytes]).stream().pipeThrough(transform);
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function chunk(type, data) {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(data, 8);
    view.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0);
    return out;
  }

  // uint8 indices [h*w] -> PNG Blob: greyscale, or indexed with `palette`.
  async function encodeIndexPng(indices, width, height, palette = null) {
    const stride = width + 1;
    const raw = new Uint8Array(stride * height);   // filter byte 0 per row
    for (let y = 0; y < height; y++) raw.set(indices.subarray(y * width, (y + 1) * width), y * stride + 1);
    const header = new Uint8Array(13);
    const view = new DataView(header.buffer);
    view.setUint32(0, width);
    view.setUint32(4, height);
    header[8] = 8;                     // bit depth
    header[9] = palette ? 3 : 0;       // indexed : greyscale
    const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header)];
    if (palette) {
      const plte = new Uint8Array(palette.length * 3);
      palette.forEach((rgb, i) => plte.set(rgb, 3 * i));
      parts.push(chunk('PLTE', plte));
    }
    parts.push(chunk('IDAT', await streamBytes(raw, new CompressionStream('deflate'))));
    parts.push(chunk('IEND', new Uint8Array(0)));
    return new Blob(parts, {type: 'image/png'});
  }

  // An 8-bit greyscale or indexed PNG -> {width, height, indices}; the
  // browser's image decoder would give colours, not the stored values.
  async function decodeIndexPng(buffer) {
    const bytes = new Uint8Array(buffer);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const signature = [137, 80, 78, 71, 13, 10, 26, 10];
    if (bytes.length < 8 || signature.some((b, i) => bytes[i] !== b)) throw new Error('not a PNG file');
    let width = 0, height = 0, depth = 0, colorType = 0, interlace = 0;
    const idat = [];
    for (let pos = 8; pos + 8 <= bytes.length;) {
      const length = view.getUint32(pos);
      const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
      const data = bytes.subarray(pos + 8, pos + 8 + length);
      if (type === 'IHDR') {
        width = view.getUint32(pos + 8); height = view.getUint32(pos + 12);
        depth = data[8]; colorType = data[9]; interlace = data[12];
      } else if (type === 'IDAT') {
        idat.push(data);
      } else if (type === 'IEND') {
        break;
      }
      pos += 12 + length;
    }
    if (depth !== 8 || (colorType !== 0 && colorType !== 3) || interlace) {
      throw new Error('a label map must be an 8-bit greyscale or indexed, non-interlaced PNG');
    }
    const raw = await streamBytes(new Blob(idat), new DecompressionStream('deflate'));
    const stride = width + 1;
    if (raw.length < stride * height) throw new Error('the PNG is truncated');
    const out = new Uint8Array(width * height);
    let prev = new Uint8Array(width);
    for (let y = 0; y < height; y++) {
      const filter = raw[y * stride];
      const src = raw.subarray(y * stride + 1, (y + 1) * stride);
      const row = out.subarray(y * width, (y + 1) * width);
      for (let x = 0; x < width; x++) {
        const a = x ? row[x - 1] : 0, b = prev[x], c = x ? prev[x - 1] : 0;
        let predictor = 0;
        if (filter === 1) predictor = a;
        else if (filter === 2) predictor = b;
        else if (filter === 3) predictor = (a + b) >> 1;
        else if (filter === 4) {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        } else if (filter !== 0) throw new Error('corrupt PNG row filter');
        row[x] = (src[x] + predictor) & 0xff;
      }
      prev = row;
    }
    return {width, height, indices: out};
  }

  function blobToDataUrl(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  async function dataUrlBytes(url) {
    return (await fetch(url)).arrayBuffer();
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error('the browser could not show the image'));
      image.src = url;
    });
  }

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

  // ----------------------------------------------------------- class list

  function buildClassList() {
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

  function visibleClasses() {
    return [...ui.classList.querySelectorAll('li[data-index]')].filter((item) => !item.hidden);
  }

  function filterClasses() {
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

  function updateCounts() {
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

  function setCurrent(index) {
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

  // ---------------------------------------------------------------- tools

  function setTool(tool) {
    state.tool = tool;
    document.body.dataset.tool = tool;
    for (const button of document.querySelectorAll('.tool')) button.classList.toggle('active', button.dataset.tool === tool);
    if (tool !== 'brush') ui.cursor.style.display = 'none';
  }

  function brushSize() { return Number(ui.brushSize.value); }

  function setBrushSize(size) {
    size = Math.max(1, Math.min(Number(ui.brushSize.max), Math.round(size)));
    ui.brushSize.value = size;
    ui.brushSizeValue.textContent = `${size} px`;
  }

  function editable() { return state.mode === 'edit' && state.labels !== null; }

  // Pointer position -> fractional image coordinates.
  function imagePoint(event) {
    const rect = ui.photoCanvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * state.photo.width / rect.width,
            (event.clientY - rect.top) * state.photo.height / rect.height];
  }

  function pixelAt(x, y) {
    const {width, height} = state.photo;
    return [Math.min(width - 1, Math.max(0, Math.floor(x))), Math.min(height - 1, Math.max(0, Math.floor(y)))];
  }

  function unionRect(rect, x0, y0, x1, y1) {
    if (!rect) return [x0, y0, x1, y1];
    return [Math.min(rect[0], x0), Math.min(rect[1], y0), Math.max(rect[2], x1), Math.max(rect[3], y1)];
  }

  // Paints class `value` into every pixel whose centre lies within `radius`
  // of the segment (x0, y0)-(x1, y1): a capsule, hard-edged. Returns the
  // changed rectangle [x0, y0, x1, y1] (inclusive) or null.
  function paintCapsule(x0, y0, x1, y1, radius, value) {
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
  function floodFill(sx, sy, value) {
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
  function refreshOverlay(rect) {
    if (!state.overlay || !rect) return;
    const {width} = state.photo;
    const [x0, y0, x1, y1] = rect;
    const labels = state.labels, out = state.overlay32, pal = state.pal32;
    for (let y = y0; y <= y1; y++) {
      for (let i = y * width + x0, end = y * width + x1; i <= end; i++) out[i] = pal[labels[i]];
    }
    state.overlayCtx.putImageData(state.overlay, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
  }

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
  function commit(before, rect) {
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

  function updateHistoryButtons() {
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

  const undo = () => travel(state.undo, state.redo, 'before');
  const redo = () => travel(state.redo, state.undo, 'after');

  // Replaces the whole map (Reset, Open map...) as one undoable change.
  function replaceMap(indices) {
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

  function pickAt(x, y) {
    if (!state.labels) return;
    const [px, py] = pixelAt(x, y);
    setCurrent(state.labels[py * state.photo.width + px]);
  }

  // --------------------------------------------------------------- events

  function effectiveTool() { return state.altHeld ? 'picker' : state.tool; }

  function onPointerDown(event) {
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

  function onPointerMove(event) {
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

  function onPointerUp(event) {
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

  function startPan(event) {
    event.preventDefault();
    state.pan = {x: event.clientX, y: event.clientY, left: ui.photoViewport.scrollLeft, top: ui.photoViewport.scrollTop};
    document.body.classList.add('panning');
    ui.photoCanvas.setPointerCapture(event.pointerId);
  }

  function movePan(event) {
    ui.photoViewport.scrollLeft = state.pan.left - (event.clientX - state.pan.x);
    ui.photoViewport.scrollTop = state.pan.top - (event.clientY - state.pan.y);
  }

  // ----------------------------------------------------------------- zoom

  function setZoom(zoom, anchor = null) {
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

  function fitZoom() {
    if (!state.photo) return;
    const pad = 16;
    const w = ui.photoViewport.clientWidth - pad, h = ui.photoViewport.clientHeight - pad;
    state.fitMode = true;
    setZoom(Math.max(0.01, Math.min(w / state.photo.width, h / state.photo.height, MAX_ZOOM)));
  }

  let syncing = false;
  function syncScroll(from, to) {
    if (syncing) return;
    syncing = true;
    to.scrollLeft = from.scrollLeft;
    to.scrollTop = from.scrollTop;
    requestAnimationFrame(() => { syncing = false; });
  }

  function onWheel(event) {
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

  function zoomStep(factor) { state.fitMode = false; setZoom(state.zoom * factor); }

  // -------------------------------------------------------------- uploads

  async function openPhoto(file) {
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

  function setResult(url) {
    state.resultUrl = url;
    ui.result.src = url;
    ui.result.dataset.version = String(++state.resultVersion);
    ui.downloadResult.disabled = false;
  }

  async function openMap(file) {
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

  // ------------------------------------------------------------ colorize

  function scheduleColorize() {
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

  async function requestSamples() {
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

  // ------------------------------------------------------------ downloads

  function baseName() { return state.photo ? state.photo.name.replace(/\.[^.]+$/, '') : 'image'; }

  function download(url, filename) {
    const link = document.createElement('a');
    link.href = url;
    link.download = filename;
    document.body.append(link);
    link.click();
    link.remove();
  }

  async function downloadMap(indexed) {
    if (!state.labels) return;
    const {width, height} = state.photo;
    const palette = indexed ? state.palette.slice(0, 256) : null;
    const blob = await encodeIndexPng(state.labels, width, height, palette);
    const url = URL.createObjectURL(blob);
    download(url, `${baseName()}_${indexed ? 'map' : 'map_gray'}.png`);
    setTimeout(() => URL.revokeObjectURL(url), 10000);
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
})();
