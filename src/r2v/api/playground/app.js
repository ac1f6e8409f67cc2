// The r2v playground: try the API in a browser with nothing but the key `r2v serve` printed.
//
// Plain ES modules and the DOM, no framework and no build step: the page is a handful of
// forms and one live task, which the platform handles well enough, and a vendored library
// would cost more bytes (and a licence to carry) than it saves. Everything is served by
// r2v itself under a strict Content-Security-Policy (no inline script, no other origin), so
// it works on a server with no internet. The key lives in localStorage and goes out only in
// the `Authorization` header of calls to this same server, never in a URL.

import { Api, keyStore } from "./api.js";
import { History } from "./history.js";
import { MAX_PROMPT_CHARS, Prompt, characters } from "./prompt.js";
import { References } from "./references.js";
import { TaskView } from "./task.js";

const $ = (id) => document.getElementById(id);
const api = new Api(() => keyStore.get());

// Requests made from this browser, by task id, so that Re-run restores them whole (the
// server's task object does not repeat the request). Forgotten with the key.
const REQUESTS = "r2v.requests";
const requests = {
  all() {
    try {
      return JSON.parse(localStorage.getItem(REQUESTS) || "{}");
    } catch {
      return {};
    }
  },
  get(id) {
    return this.all()[id] || null;
  },
  put(id, entry) {
    const all = this.all();
    all[id] = entry;
    const ids = Object.keys(all);
    for (const old of ids.slice(0, Math.max(0, ids.length - 100))) delete all[old];
    localStorage.setItem(REQUESTS, JSON.stringify(all));
  },
  forget() {
    localStorage.removeItem(REQUESTS);
  },
};

// The output sizes (API.md), to read a past task's resolution and ratio from its size.
const SIZES = {
  "480p": { "16:9": "864x496", "4:3": "752x560", "1:1": "640x640", "3:4": "560x752", "9:16": "496x864", "21:9": "992x432" },
  "720p": { "16:9": "1248x704", "4:3": "1120x832", "1:1": "960x960", "3:4": "832x1120", "9:16": "704x1248", "21:9": "1504x640" },
};

function randomId() {
  // crypto.randomUUID needs a secure context; a page on http://<lan address> is not one
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `playground-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// ---- the key ---------------------------------------------------------------------------

// tone: "good", "bad" or "info"
function keyMessage(text, tone = "bad") {
  const status = $("key-status");
  status.textContent = text;
  for (const name of ["good", "bad", "info"]) status.classList.toggle(name, tone === name);
}

// The message under Generate: a refusal (red) unless `note`.
function formMessage(text, note = false) {
  $("form-message").textContent = text;
  $("form-message").classList.toggle("note", note);
}

async function useKey(key) {
  keyStore.set(key);
  try {
    await api.checkKey();
  } catch (error) {
    if (error.status === 401) {
      keyStore.forget();
      keyMessage(`Refused: ${error.message}`);
      history.reset();
      return false;
    }
    keyMessage(error.message);
    return false;
  }
  keyMessage("Key accepted.", "good");
  history.load();
  return true;
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) {
    keyMessage("Paste the API key that `r2v serve` printed on its first start.", "info");
    return;
  }
  useKey(key);
});

$("forget-key").addEventListener("click", () => {
  keyStore.forget();
  requests.forget();
  $("api-key").value = "";
  history.reset();
  keyMessage("Key forgotten: it is no longer kept in this browser.", "info");
});

function authProblem(error) {
  if (error.status === 401) {
    keyMessage(`Refused: ${error.message}`);
    formMessage(`The server refused the API key: ${error.message}`);
  } else {
    formMessage(`${error.message} (${error.code})`);
  }
}

// ---- references and prompt -------------------------------------------------------------

const compose = $("create");
const references = new References({
  api,
  root: compose,
  message: $("refs-message"),
  onChange: () => prompt.update(false),
  onPick: (mention) => prompt.insert(mention),
});

const prompt = new Prompt({
  textarea: $("prompt"),
  backdrop: $("prompt-backdrop"),
  list: $("mention-list"),
  status: $("mention-status"),
  count: $("char-count"),
  mentions: () => references.mentions(),
});

$("add-files").addEventListener("change", (event) => {
  references.addFiles([...event.target.files]);
  event.target.value = ""; // the same file may be picked again
});

for (const zone of compose.querySelectorAll(".zone")) {
  const kind = zone.dataset.kind;
  const input = zone.querySelector("[data-url]");
  const add = () => {
    if (input.value.trim() && references.addUrl(kind, input.value)) input.value = "";
  };
  zone.querySelector("[data-add-url]").addEventListener("click", add);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      add();
    }
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length) return references.addFiles(files);
    const link = (event.dataTransfer?.getData("text/uri-list") || event.dataTransfer?.getData("text/plain") || "")
      .split("\n").find((line) => line && !line.startsWith("#"));
    if (link) references.addUrl(kind, link);
  });
  zone.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) {
      event.preventDefault();
      references.addFiles(files);
    }
  });
}
// a file dropped beside a zone must not replace the page with itself
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

// ---- settings --------------------------------------------------------------------------

$("dice").addEventListener("click", () => {
  $("seed").value = "-1";
});

function readRequest() {
  const seed = Number($("seed").value);
  if (!Number.isInteger(seed) || seed < -1 || seed > 4294967295) {
    throw new Error("The seed must be a whole number from -1 to 4294967295 (-1: the server draws one).");
  }
  const request = {
    model: $("model").value,
    prompt: prompt.value,
    resolution: $("resolution").value,
    aspect_ratio: $("aspect-ratio").value,
    duration: Number($("duration").value),
    generate_audio: $("generate-audio").checked,
    seed,
    ...references.fields(),
  };
  const callback = $("callback-url").value.trim();
  if (callback) request.callback_url = callback;
  return request;
}

function fillSettings(request) {
  const set = (id, value) => {
    const field = $(id);
    if (value === undefined || value === null) return;
    if ([...field.options].some((option) => option.value === String(value))) field.value = String(value);
  };
  set("model", request.model);
  set("resolution", request.resolution);
  set("aspect-ratio", request.aspect_ratio);
  set("duration", request.duration);
  if (typeof request.generate_audio === "boolean") $("generate-audio").checked = request.generate_audio;
  if (Number.isInteger(request.seed)) $("seed").value = String(request.seed);
  $("callback-url").value = request.callback_url || "";
}

// ---- generate --------------------------------------------------------------------------

// One Idempotency-Key per request body while its task runs: a second click (or a retry)
// with the same form answers the same task; once that task ends, the same form makes a
// new one.
let lastCreate = null;

function formProblem() {
  if (!keyStore.get()) {
    $("api-key").focus();
    return "Paste your API key first (the one `r2v serve` printed), then press Use key.";
  }
  const text = prompt.value;
  if (!text.trim()) return "Write a prompt: what should the video show?";
  if (characters(text) > MAX_PROMPT_CHARS) {
    return `The prompt has ${characters(text)} characters: at most ${MAX_PROMPT_CHARS}.`;
  }
  const unknown = prompt.unknown();
  if (unknown.length) {
    const names = [...new Set(unknown.map((m) => m.text))].join(", ");
    return `${names} ${unknown.length === 1 ? "names" : "name"} no reference: add it, or fix the mention.`;
  }
  return references.requestProblem();
}

compose.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("generate");
  if (button.disabled) return;
  const problem = formProblem();
  if (problem) {
    formMessage(problem);
    return;
  }
  button.disabled = true;
  try {
    if (!(await references.settled())) {
      formMessage("A reference could not be uploaded: remove it, or add it again.");
      return;
    }
    let request;
    try {
      request = readRequest();
    } catch (error) {
      formMessage(error.message);
      return;
    }
    const body = JSON.stringify(request);
    if (!lastCreate || lastCreate.body !== body || lastCreate.ended) {
      lastCreate = { body, key: randomId(), ended: false };
    }
    const mine = lastCreate;
    formMessage("Creating the task…", true);
    const startedAt = performance.now();
    let task;
    try {
      task = await api.create(request, mine.key);
    } catch (error) {
      formMessage("");
      authProblem(error);
      return;
    }
    formMessage("");
    mine.taskId = task.id;
    requests.put(task.id, { request, names: references.names() });
    if (view.current?.task.id !== task.id) view.show(task, { request, startedAt });
    history.load();
  } finally {
    button.disabled = false;
  }
});

const view = new TaskView({
  api,
  $,
  onEnd: (task) => {
    if (lastCreate?.taskId === task.id) lastCreate.ended = true;
    history.load();
  },
  onUseAsReference: async (task) => {
    const link = task.results[0];
    try {
      const response = await fetch(link);
      if (!response.ok) throw new Error(String(response.status));
      const blob = await response.blob();
      references.addFiles([new File([blob], `${task.id}.mp4`, { type: "video/mp4" })]);
    } catch {
      references.addUrl("video", link); // another origin (R2V_PUBLIC_URL): pass the link on
    }
    $("zone-video-title").scrollIntoView({ block: "nearest" });
  },
  onError: authProblem,
});

// ---- history ---------------------------------------------------------------------------

const history = new History({
  api,
  $,
  onOpen: ({ task, video }) => {
    const stored = requests.get(task.id);
    const took = video?.completed_at ? video.completed_at - video.created_at : null;
    view.show(task, { request: stored?.request || null, took });
    $("result-title").scrollIntoView({ block: "nearest" });
  },
  onRerun: async ({ task, video }) => {
    const stored = requests.get(task.id);
    let asked = null;
    if (!stored) {
      try {
        asked = await api.request(task.id); // made elsewhere (the SDK, curl): as it was sent
      } catch {
        asked = null;
      }
    }
    if (stored || asked) {
      const request = stored ? stored.request : asked;
      references.restore(request, stored ? stored.names : {});
      fillSettings(request);
      prompt.value = request.prompt;
    } else {
      // an older server without the request route: what the task itself tells
      references.clear();
      const [resolution, ratio] = sizeOf(video?.size);
      fillSettings({
        model: task.model,
        resolution,
        aspect_ratio: ratio,
        duration: task.task_info?.video_duration,
        seed: task.task_info?.seed,
      });
      prompt.value = video?.prompt || "";
      if (prompt.unknown().length) {
        references.say(["This task's references are not known to this browser: add them again."]);
      }
    }
    formMessage("The form holds that task's request: press Generate to run it again.", true);
    $("prompt").focus();
  },
});

function sizeOf(size) {
  for (const resolution of Object.keys(SIZES)) {
    for (const [ratio, wxh] of Object.entries(SIZES[resolution])) {
      if (wxh === size) return [resolution, ratio];
    }
  }
  return [null, null];
}

// ---- start -----------------------------------------------------------------------------

references.render();
prompt.update(false);
const saved = keyStore.get();
if (saved) {
  $("api-key").value = saved;
  useKey(saved);
} else {
  keyMessage("Paste the API key that `r2v serve` printed on its first start.", "info");
}
