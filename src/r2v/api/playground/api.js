// The /v1 API as the page uses it: every call carries `Authorization: Bearer <key>` (never
// the URL), and every refusal becomes an ApiError with the server's own code and message.
// Paths are relative to the page, so a server behind a path prefix works unchanged.

export class ApiError extends Error {
  constructor(status, code, message, param = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

const STORAGE_KEY = "r2v.apiKey";

export const keyStore = {
  get: () => localStorage.getItem(STORAGE_KEY) || "",
  set: (key) => localStorage.setItem(STORAGE_KEY, key),
  forget: () => localStorage.removeItem(STORAGE_KEY),
};

async function refusal(response) {
  let code = `http_${response.status}`;
  let message = `the server answered ${response.status} ${response.statusText}`.trim();
  let param = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      param = body.error.param ?? null;
    }
  } catch {
    // not JSON (a proxy's page): the status line says enough
  }
  return new ApiError(response.status, code, message, param);
}

export class Api {
  constructor(getKey) {
    this.getKey = getKey;
  }

  headers(extra = {}) {
    const key = this.getKey();
    return key ? { Authorization: `Bearer ${key}`, ...extra } : { ...extra };
  }

  // The raw response of an authenticated call, or an ApiError.
  async send(method, path, { json, body, headers = {}, signal } = {}) {
    const init = { method, headers: this.headers(headers), signal, cache: "no-store" };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (body !== undefined) {
      init.body = body;
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(0, "network_error", "the server could not be reached: is `r2v serve` running?");
    }
    if (!response.ok) throw await refusal(response);
    return response;
  }

  async json(method, path, options) {
    return (await this.send(method, path, options)).json();
  }

  // A key check that costs nothing: the key's newest task.
  checkKey() {
    return this.json("GET", "v1/tasks?limit=1");
  }

  create(request, idempotencyKey) {
    return this.json("POST", "v1/videos/generations", {
      json: request,
      headers: { "Idempotency-Key": idempotencyKey },
    });
  }

  task(id) {
    return this.json("GET", `v1/tasks/${encodeURIComponent(id)}`);
  }

  cancel(id) {
    return this.json("DELETE", `v1/tasks/${encodeURIComponent(id)}`);
  }

  // A page of tasks, newest first, with the prompt and size of each (OpenAI's door lists
  // the same page of the same store, so the two lists line up id for id).
  async page(limit, after) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (after) query.set("after", after);
    const [tasks, videos] = await Promise.all([
      this.json("GET", `v1/tasks?${query}`),
      this.json("GET", `v1/videos?${query}`),
    ]);
    const byId = new Map(videos.data.map((video) => [video.id, video]));
    return {
      data: tasks.data.map((task) => ({ task, video: byId.get(task.id) || null })),
      hasMore: tasks.has_more,
      lastId: tasks.last_id || null,
    };
  }

  video(id) {
    return this.json("GET", `v1/videos/${encodeURIComponent(id)}`);
  }

  request(id) {
    return this.json("GET", `v1/tasks/${encodeURIComponent(id)}/request`);
  }

  async thumbnail(id, signal) {
    const response = await this.send("GET", `v1/videos/${encodeURIComponent(id)}/content?variant=thumbnail`, { signal });
    return response.blob();
  }

  // An upload (`POST /v1/files`): {id, url, bytes, kind, …}.
  upload(file, signal) {
    const form = new FormData();
    form.append("file", file, file.name);
    return this.json("POST", "v1/files", { body: form, signal });
  }

  // A file on this server read with the key (an upload's content, for its preview).
  async blob(url, signal) {
    return (await this.send("GET", url, { signal })).blob();
  }

  // The task's Server-Sent Events, read with fetch: EventSource cannot send the key.
  // Yields each task object until the server closes the stream.
  async *events(id, signal) {
    const response = await this.send("GET", `v1/tasks/${encodeURIComponent(id)}/events`, {
      headers: { Accept: "text/event-stream" },
      signal,
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffered += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const task = parseEvent(block);
          if (task) yield task;
        }
      }
    } finally {
      reader.cancel().catch(() => {}); // closes the connection when the reader stops early
    }
  }
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (event !== "task" || !data.length) return null;
  try {
    return JSON.parse(data.join("\n"));
  } catch {
    return null;
  }
}
