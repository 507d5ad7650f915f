// The console's one client of the API: the same routes, with the signed-in credential.

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

export class Api {
  // session: {credential, org}. API keys go in X-Api-Key, anything else as a bearer token.
  constructor(session) {
    this.headers = session.credential.startsWith("tg_")
      ? {"X-Api-Key": session.credential}
      : {"Authorization": `Bearer ${session.credential}`};
    if (session.org) this.headers["X-Org-Id"] = session.org;
  }

  // The parsed JSON answer (null for 204), or throws ApiError with the server's detail.
  async request(method, path, body, {signal} = {}) {
    const headers = {...this.headers};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const parsed = text ? parseJson(text) : null;
    if (!response.ok) {
      const detail = parsed && typeof parsed === "object" && parsed.detail !== undefined
        ? (typeof parsed.detail === "string" ? parsed.detail : JSON.stringify(parsed.detail))
        : response.statusText;
      throw new ApiError(response.status, detail, parsed);
    }
    return parsed;
  }

  get(path, options) { return this.request("GET", path, undefined, options); }
  post(path, body = {}, options) { return this.request("POST", path, body, options); }
  put(path, body = {}, options) { return this.request("PUT", path, body, options); }
  patch(path, body = {}, options) { return this.request("PATCH", path, body, options); }
  delete(path, body, options) { return this.request("DELETE", path, body, options); }

  // Server-sent events of a POST (runs/stream) or GET (join) route: calls onEvent(event,
  // data) for each as it arrives, data parsed from JSON. Resolves when the stream ends;
  // abort with `signal`.
  async stream(method, path, body, onEvent, {signal} = {}) {
    const headers = {...this.headers, "Accept": "text/event-stream"};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      const parsed = parseJson(await response.text());
      throw new ApiError(response.status, parsed?.detail ?? response.statusText, parsed);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parseEvent(block);
        if (event) onEvent(event.event, event.data, event.id);
      }
    }
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function parseEvent(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (!data.length) return null;
  return {event, id, data: parseJson(data.join("\n"))};
}
