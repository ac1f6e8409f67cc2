// The result panel: one task followed live (its Server-Sent Events, read with fetch; a
// poll when the stream cannot be had), Cancel while it runs, the error's code and message
// when it fails, the video, its facts and the request as curl or Python once it is done.

import { snippet } from "./snippets.js";

const TERMINAL = new Set(["completed", "failed"]);
const LABELS = { pending: "Pending", processing: "Processing", completed: "Completed", failed: "Failed" };

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

export function seconds(value) {
  if (Number.isInteger(value) || value >= 10) return `${Math.round(value)} s`;
  return `${value.toFixed(1)} s`;
}

export class TaskView {
  constructor({ api, $, onEnd, onUseAsReference, onError }) {
    this.api = api;
    this.$ = $;
    this.onEnd = onEnd;
    this.onError = onError;
    this.current = null;
    $("cancel").addEventListener("click", () => this.cancel());
    $("use-as-reference").addEventListener("click", () => {
      if (this.current?.task.results) onUseAsReference(this.current.task);
    });
    $("copy-curl").addEventListener("click", () => this.copy("curl"));
    $("copy-python").addEventListener("click", () => this.copy("python"));
  }

  // Show `task` and follow it to its end. `request` is what created it (when known here);
  // `startedAt` the moment it was sent (performance.now()), for "took".
  show(task, { request = null, startedAt = null, took = null } = {}) {
    this.stop();
    const abort = new AbortController();
    this.current = { task, request, startedAt, took, abort, ended: false };
    const $ = this.$;
    $("result-empty").hidden = true;
    $("task").hidden = false;
    $("snippet").hidden = true;
    $("snippets").hidden = !request;
    $("copy-status").textContent = "";
    $("result-video").removeAttribute("src");
    $("result-video").load();
    this.render(task);
    if (!TERMINAL.has(task.status)) this.follow(task.id, abort.signal);
  }

  stop() {
    this.current?.abort.abort();
  }

  render(task) {
    const $ = this.$;
    const current = this.current;
    if (!current || current.task.id !== task.id) return;
    current.task = task;
    const progress = task.status === "completed" ? 100 : task.progress || 0;
    $("task-id").textContent = task.id;
    $("task-status").textContent = LABELS[task.status] || task.status;
    $("task-status").dataset.status = task.status;
    $("task-progress").value = progress;
    $("task-progress").setAttribute("aria-valuetext", `${LABELS[task.status] || task.status}, ${progress}%`);
    $("task-percent").textContent = `${progress}%`;
    $("cancel").hidden = TERMINAL.has(task.status) || task.task_info?.can_cancel === false;
    $("task-error").hidden = task.status !== "failed";
    if (task.status === "failed") {
      $("task-error-code").textContent = task.error?.code || "unknown_error";
      $("task-error-message").textContent = task.error?.message || "the task failed";
    }
    const done = task.status === "completed" && task.results?.length;
    $("task-done").hidden = !done;
    if (done) {
      const link = task.results[0];
      const video = $("result-video");
      if (video.getAttribute("src") !== link) video.src = link;
      $("download").href = link;
      $("download").setAttribute("download", `${task.id}.mp4`);
      $("result-seed").textContent = String(task.task_info?.seed ?? "–");
      $("result-length").textContent = task.task_info?.video_duration ? `${task.task_info.video_duration} s` : "–";
      if (current.took == null && current.startedAt != null) {
        current.took = (performance.now() - current.startedAt) / 1000;
      }
      $("result-took").textContent = current.took != null ? seconds(current.took) : "–";
    }
    if (TERMINAL.has(task.status)) this.ended();
  }

  ended() {
    const current = this.current;
    if (current.ended) return;
    current.ended = true;
    current.abort.abort();
    this.onEnd(current.task);
  }

  async follow(id, signal) {
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const task of this.api.events(id, signal)) {
          failures = 0;
          this.render(task);
          if (TERMINAL.has(task.status)) return;
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error.status === 401 || error.status === 404) return this.onError(error);
        failures++;
      }
      // the stream ended early or could not be had (too many open, a proxy): poll once
      try {
        const task = await this.api.task(id);
        this.render(task);
        if (TERMINAL.has(task.status)) return;
      } catch (error) {
        if (signal.aborted) return;
        if (error.status === 401 || error.status === 404) return this.onError(error);
      }
      await sleep(Math.min(5000, 500 * 2 ** failures), signal);
    }
  }

  async cancel() {
    const current = this.current;
    if (!current) return;
    this.$("cancel").disabled = true;
    try {
      this.render(await this.api.cancel(current.task.id));
    } catch (error) {
      // 409: it ended meanwhile; the stream shows how
      if (error.status !== 409) this.onError(error);
    } finally {
      this.$("cancel").disabled = false;
    }
  }

  async copy(language) {
    const request = this.current?.request;
    if (!request) return;
    const text = snippet(language, request, new URL(".", document.baseURI).href.replace(/\/$/, ""));
    const $ = this.$;
    $("snippet").textContent = text;
    $("snippet").hidden = false;
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch {
      // no clipboard (a page not on https or localhost): the text is shown to select
    }
    $("copy-status").textContent = copied
      ? `Copied the ${language === "curl" ? "curl command" : "Python code"}.`
      : "Select the text below to copy it.";
  }
}
