// The reference lists: images, videos and audio, each item numbered by its place in its
// list (`@Image1` is the first image). Local files are uploaded at once (`POST /v1/files`),
// so their URLs are ready by the time the task is created; links are passed on as they are.
// The seed's limits are checked as items are added; what only the server can judge (the
// real type from the bytes, its own caps) comes back as the server's message.

import { previewOf, placeholder } from "./previews.js";

export const KINDS = ["image", "video", "audio"];
export const LABEL = { image: "Image", video: "Video", audio: "Audio" };
const PLURAL = { image: "images", video: "videos", audio: "audio clips" };
const MAX = { image: 9, video: 3, audio: 3 };
const MAX_TOTAL = 12;
const MB = 1000 * 1000;
const MAX_BYTES = { image: 30 * MB, audio: 15 * MB };
const MAX_VIDEO_TOTAL_BYTES = 50 * MB;
const MAX_AUDIO_SECONDS = 15;
const VIDEO_SECONDS = [2, 15];
const KIND_OF_TYPE = {
  "image/jpeg": "image", "image/png": "image", "image/webp": "image",
  "video/mp4": "video", "video/quicktime": "video",
  "audio/mpeg": "audio", "audio/mp3": "audio", "audio/wav": "audio", "audio/x-wav": "audio",
  "audio/wave": "audio", "audio/vnd.wave": "audio",
};
const KIND_OF_EXTENSION = {
  jpg: "image", jpeg: "image", png: "image", webp: "image",
  mp4: "video", mov: "video", mp3: "audio", wav: "audio",
};
const UNSUPPORTED =
  "is not a supported reference: add a JPEG, PNG or WebP image, an MP4 or MOV video, or an MP3 or WAV audio file";

export function mentionOf(kind, index) {
  return `@${LABEL[kind]}${index}`;
}

function extensionKind(name) {
  const match = /\.([a-z0-9]{2,5})$/i.exec(name || "");
  return match ? KIND_OF_EXTENSION[match[1].toLowerCase()] || null : null;
}

export function kindOfFile(file) {
  return KIND_OF_TYPE[file.type] || extensionKind(file.name);
}

function nameOfUrl(url) {
  try {
    const parsed = new URL(url);
    const last = parsed.pathname.split("/").filter(Boolean).pop();
    return decodeURIComponent(last || parsed.host);
  } catch {
    return url;
  }
}

function megabytes(bytes) {
  return `${(bytes / MB).toFixed(bytes < 10 * MB ? 1 : 0)} MB`;
}

let nextId = 1;

export class References {
  constructor({ api, root, message, onChange, onPick }) {
    this.api = api;
    this.root = root;
    this.message = message;
    this.onChange = onChange;
    this.onPick = onPick;
    this.lists = { image: [], video: [], audio: [] };
    this.problems = [];
  }

  get all() {
    return KINDS.flatMap((kind) => this.lists[kind]);
  }

  // Every mention that names a reference, in list order: [{kind, index, text, name}].
  mentions() {
    return KINDS.flatMap((kind) =>
      this.lists[kind].map((item, i) => ({ kind, index: i + 1, text: mentionOf(kind, i + 1), name: item.name })),
    );
  }

  count(kind) {
    return this.lists[kind].length;
  }

  // The fields of the create request; every upload must have finished (see `settled`).
  fields() {
    const urls = (kind) => this.lists[kind].map((item) => item.url);
    return { image_urls: urls("image"), video_urls: urls("video"), audio_urls: urls("audio") };
  }

  names() {
    return Object.fromEntries(KINDS.map((kind) => [kind, this.lists[kind].map((item) => item.name)]));
  }

  // Waits for uploads in flight; true when every reference has its URL.
  async settled() {
    await Promise.allSettled(this.all.map((item) => item.upload).filter(Boolean));
    return this.all.every((item) => item.url);
  }

  // What would make the server refuse the request, found without asking it; null if nothing.
  requestProblem() {
    const { image, video, audio } = this.lists;
    if (audio.length && !image.length && !video.length) {
      return "Audio references need at least one image or video reference: add one, or remove the audio.";
    }
    const seconds = video.map((item) => item.duration);
    if (video.length && seconds.every((s) => Number.isFinite(s))) {
      const total = seconds.reduce((a, b) => a + b, 0);
      if (total < VIDEO_SECONDS[0]) {
        return `The videos last ${total.toFixed(1)} s in all: reference videos must total at least ${VIDEO_SECONDS[0]} s.`;
      }
    }
    return null;
  }

  say(problems) {
    this.problems = problems;
    this.message.textContent = problems.join(" ");
  }

  // Local files (picked, dropped or pasted): the kind follows the file.
  addFiles(files) {
    const problems = [];
    for (const file of files) {
      const kind = kindOfFile(file);
      const problem = kind ? this.refusal(kind, file.size) : `${file.name} ${UNSUPPORTED}.`;
      if (problem) {
        problems.push(problem);
        continue;
      }
      const item = { id: nextId++, kind, name: file.name, file, bytes: file.size, url: null };
      this.lists[kind].push(item);
      this.preview(item, file);
      this.startUpload(item);
    }
    this.say(problems);
    this.changed();
  }

  // A link, in the zone of `kind` (or the kind its name says, when dropped elsewhere).
  addUrl(kind, text) {
    const url = text.trim();
    let parsed;
    try {
      parsed = new URL(url);
    } catch {
      this.say([`${url.slice(0, 80) || "That"} is not a link: paste a full http(s) URL.`]);
      return false;
    }
    if (!["http:", "https:", "asset:"].includes(parsed.protocol)) {
      this.say([`Use an http or https link (got ${parsed.protocol}).`]);
      return false;
    }
    if (url.length > 2048) {
      this.say(["That link is longer than 2048 characters."]);
      return false;
    }
    const problem = this.refusal(kind, 0);
    if (problem) {
      this.say([problem]);
      return false;
    }
    const item = { id: nextId++, kind, name: nameOfUrl(url), url, bytes: 0 };
    this.lists[kind].push(item);
    item.preview = placeholder(kind, parsed.host);
    if (parsed.origin === location.origin) {
      // this server's own file (an upload, a result): readable with the key, so shown
      this.api.blob(url).then((blob) => this.preview(item, blob), () => {});
    }
    this.say([]);
    this.changed();
    return true;
  }

  // Why an item of `kind` and `bytes` cannot be added now, or null.
  refusal(kind, bytes) {
    if (this.count(kind) >= MAX[kind]) {
      return `At most ${MAX[kind]} ${PLURAL[kind]}: remove one first.`;
    }
    if (this.all.length >= MAX_TOTAL) {
      return `At most ${MAX_TOTAL} references in all (images, videos and audio together).`;
    }
    if (kind === "video") {
      const total = this.lists.video.reduce((sum, item) => sum + item.bytes, 0) + bytes;
      if (total >= MAX_VIDEO_TOTAL_BYTES) {
        return `Reference videos must be under 50 MB in all; these would be ${megabytes(total)}.`;
      }
    } else if (bytes > MAX_BYTES[kind]) {
      return `An ${kind} reference may be at most ${MAX_BYTES[kind] / MB} MB; this one is ${megabytes(bytes)}.`;
    }
    return null;
  }

  startUpload(item) {
    item.abort = new AbortController();
    item.upload = this.api.upload(item.file, item.abort.signal).then(
      (uploaded) => {
        item.url = uploaded.url;
        item.upload = null;
        if (uploaded.kind && uploaded.kind !== item.kind) this.move(item, uploaded.kind);
        this.changed();
      },
      (error) => {
        item.upload = null;
        if (error.name === "AbortError") return;
        this.drop(item);
        this.say([...this.problems, `${item.name}: ${error.message} (${error.code})`]);
        this.changed();
      },
    );
  }

  // The server read the bytes as another kind than the name said.
  move(item, kind) {
    this.drop(item);
    const problem = this.refusal(kind, item.bytes);
    if (problem) {
      this.say([`${item.name} is a ${kind} file. ${problem}`]);
      return;
    }
    item.kind = kind;
    this.lists[kind].push(item);
    this.preview(item, item.file);
  }

  async preview(item, blob) {
    item.preview = item.preview || placeholder(item.kind, "");
    try {
      const { element, duration } = await previewOf(item.kind, blob);
      item.preview = element;
      if (Number.isFinite(duration)) item.duration = duration;
    } catch {
      return; // undecodable here (a MOV codec the browser lacks): the server judges it
    }
    this.checkDuration(item);
    this.changed();
  }

  checkDuration(item) {
    if (!this.lists[item.kind].includes(item) || !Number.isFinite(item.duration)) return;
    let problem = null;
    if (item.kind === "audio" && item.duration > MAX_AUDIO_SECONDS + 0.05) {
      problem = `${item.name} lasts ${item.duration.toFixed(1)} s: an audio reference may be at most ${MAX_AUDIO_SECONDS} s.`;
    } else if (item.kind === "video") {
      const total = this.lists.video.reduce((sum, other) => sum + (other.duration || 0), 0);
      if (total > VIDEO_SECONDS[1] + 0.05) {
        problem = `${item.name} would make the videos last ${total.toFixed(1)} s in all: at most ${VIDEO_SECONDS[1]} s.`;
      }
    }
    if (problem) {
      this.remove(item);
      this.say([...this.problems, problem]);
    }
  }

  drop(item) {
    const list = this.lists[item.kind];
    const at = list.indexOf(item);
    if (at >= 0) list.splice(at, 1);
  }

  remove(item) {
    item.abort?.abort();
    this.drop(item);
    this.changed();
  }

  clear() {
    for (const item of this.all) item.abort?.abort();
    this.lists = { image: [], video: [], audio: [] };
    this.say([]);
    this.changed();
  }

  // Refill from a past request: its links, with the names they had.
  restore(request, names = {}) {
    this.clear();
    for (const kind of KINDS) {
      (request[`${kind}_urls`] || []).forEach((url, i) => {
        if (this.addUrl(kind, url) && names[kind]?.[i]) {
          this.lists[kind][this.lists[kind].length - 1].name = names[kind][i];
        }
      });
    }
    this.changed();
  }

  changed() {
    this.render();
    this.onChange();
  }

  render() {
    for (const kind of KINDS) {
      const list = this.root.querySelector(`[data-list="${kind}"]`);
      list.replaceChildren(...this.lists[kind].map((item, i) => this.tile(item, i + 1)));
      this.root.querySelector(`[data-count="${kind}"]`).textContent = `${this.count(kind)} / ${MAX[kind]}`;
      list.closest(".zone").classList.toggle("has-items", this.count(kind) > 0);
    }
  }

  tile(item, index) {
    const mention = mentionOf(item.kind, index);
    const li = document.createElement("li");
    li.className = "ref";
    li.dataset.state = item.url ? "ready" : "uploading";
    const pick = document.createElement("button");
    pick.type = "button";
    pick.className = "thumb";
    pick.title = item.name;
    pick.setAttribute("aria-label", `${mention}, ${item.name}: insert the mention`);
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = mention;
    pick.append(item.preview || placeholder(item.kind, ""), tag);
    if (Number.isFinite(item.duration)) {
      const length = document.createElement("span");
      length.className = "length";
      length.textContent = `${item.duration.toFixed(1)} s`;
      pick.append(length);
    }
    if (!item.url) {
      const busy = document.createElement("span");
      busy.className = "busy";
      busy.textContent = "Uploading…";
      pick.append(busy);
    }
    pick.addEventListener("click", () => this.onPick(mention));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.setAttribute("aria-label", `Remove ${mention} (${item.name})`);
    remove.textContent = "×";
    remove.addEventListener("click", () => this.remove(item));
    li.append(pick, remove);
    return li;
  }
}
