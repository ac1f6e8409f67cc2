// The key's tasks, newest first, a page at a time (`GET /v1/tasks`, cursor paged), each
// with its prompt (`GET /v1/videos` lists the same page), its thumbnail once completed
// (fetched with the key, shown from a blob: URL), Open and Re-run.

const PAGE = 6;
const LABELS = { pending: "Pending", processing: "Processing", completed: "Completed", failed: "Failed" };

function ago(unixSeconds) {
  const elapsed = Math.max(0, Date.now() / 1000 - unixSeconds);
  if (elapsed < 60) return "just now";
  if (elapsed < 3600) return `${Math.floor(elapsed / 60)} min ago`;
  if (elapsed < 86400) return `${Math.floor(elapsed / 3600)} h ago`;
  return new Date(unixSeconds * 1000).toLocaleDateString();
}

export class History {
  constructor({ api, $, onOpen, onRerun }) {
    this.api = api;
    this.$ = $;
    this.onOpen = onOpen;
    this.onRerun = onRerun;
    this.cursors = [null]; // the `after` of each page seen
    this.at = 0;
    this.thumbs = new Map(); // task id → blob: URL (a completed task's picture never changes)
    this.loading = null;
    $("history-refresh").addEventListener("click", () => this.load());
    $("history-older").addEventListener("click", () => this.turn(1));
    $("history-newer").addEventListener("click", () => this.turn(-1));
  }

  reset() {
    this.cursors = [null];
    this.at = 0;
    for (const url of this.thumbs.values()) URL.revokeObjectURL(url);
    this.thumbs.clear();
    this.$("history-list").replaceChildren();
    this.$("history-empty").hidden = false;
    this.$("history-older").disabled = true;
    this.$("history-newer").disabled = true;
  }

  turn(step) {
    this.at = Math.max(0, this.at + step);
    this.load();
  }

  async load() {
    const $ = this.$;
    const ticket = {};
    this.loading = ticket;
    let page;
    try {
      page = await this.api.page(PAGE, this.cursors[this.at]);
    } catch (error) {
      if (this.loading === ticket) $("history-message").textContent = `${error.message} (${error.code})`;
      return;
    }
    if (this.loading !== ticket) return; // a newer load started meanwhile
    $("history-message").textContent = "";
    if (!page.data.length && this.at > 0) return this.turn(-1);
    this.cursors[this.at + 1] = page.lastId;
    $("history-older").disabled = !page.hasMore;
    $("history-newer").disabled = this.at === 0;
    $("history-empty").hidden = page.data.length > 0;
    $("history-list").replaceChildren(...page.data.map((entry) => this.item(entry)));
  }

  item(entry) {
    const { task, video } = entry;
    const li = document.createElement("li");
    li.className = "history-item";
    li.dataset.taskId = task.id;
    li.dataset.status = task.status;

    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    const prompt = video?.prompt || task.id;
    open.setAttribute("aria-label", `Open ${LABELS[task.status] || task.status} task: ${prompt.slice(0, 80)}`);
    const thumb = document.createElement("span");
    thumb.className = "history-thumb";
    const body = document.createElement("span");
    body.className = "history-body";
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.dataset.status = task.status;
    const running = task.status === "pending" || task.status === "processing";
    badge.textContent = running ? `${LABELS[task.status]} ${task.progress || 0}%` : LABELS[task.status] || task.status;
    if (task.error?.code === "request_cancelled") badge.textContent = "Cancelled";
    else if (task.status === "failed" && task.error?.code) badge.textContent += ` · ${task.error.code}`;
    const text = document.createElement("span");
    text.className = "history-prompt";
    text.textContent = prompt;
    const meta = document.createElement("span");
    meta.className = "history-meta";
    const facts = [];
    if (task.task_info?.video_duration > 0) facts.push(`${task.task_info.video_duration} s`);
    if (video?.size) facts.push(video.size);
    facts.push(task.model.includes("fast") ? "fast" : "standard", ago(task.created));
    meta.textContent = facts.join(" · ");
    body.append(badge, text, meta);
    open.append(thumb, body);
    open.addEventListener("click", () => this.onOpen(entry));

    const rerun = document.createElement("button");
    rerun.type = "button";
    rerun.className = "rerun";
    rerun.textContent = "Re-run";
    rerun.setAttribute("aria-label", `Re-run: ${prompt.slice(0, 80)}`);
    rerun.addEventListener("click", () => this.onRerun(entry));
    li.append(open, rerun);
    if (task.status === "completed") this.thumbnail(task.id, thumb);
    return li;
  }

  async thumbnail(id, into) {
    let url = this.thumbs.get(id);
    if (!url) {
      try {
        url = URL.createObjectURL(await this.api.thumbnail(id));
      } catch {
        return; // gone after retention: the tile stays plain
      }
      this.thumbs.set(id, url);
    }
    const img = new Image();
    img.alt = "";
    img.src = url;
    into.replaceChildren(img);
  }
}
