// The client of the editor server's JSON API (colorjax/editor/server.py):
// every request goes through api(), which turns a failed fetch, an HTTP
// error or a non-JSON reply into an Error whose message the page shows.

export async function api(path, options = {}) {
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

export function postJson(path, payload) {
  return api(path, {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(payload),
  });
}
