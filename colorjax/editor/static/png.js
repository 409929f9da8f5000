// Label maps as 8-bit PNGs, encoded and decoded here (CompressionStream)
// so class indices are exact both ways, and the data-URL / image helpers
// that move them and the photo between the server and the page.

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
export async function encodeIndexPng(indices, width, height, palette = null) {
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
export async function decodeIndexPng(buffer) {
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

export function blobToDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

export async function dataUrlBytes(url) {
  return (await fetch(url)).arrayBuffer();
}

export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error('the browser could not show the image'));
    image.src = url;
  });
}
