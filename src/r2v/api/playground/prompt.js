// The prompt: a textarea over a backdrop that repeats its text with the mentions marked
// (a mention naming no reference in red), `@` completion of the mentions that exist (a
// listbox driven from the textarea, as ARIA's combobox pattern), and a count against 5000.

export const MAX_PROMPT_CHARS = 5000;
// as the server reads mentions (r2v.grammar, whose MENTION and KINDS a test holds equal to
// these): `@Image1`, `@image 1`, `@ Image1`, `@图片1`, `@图像1`, `@照片1`…
const MENTION = /@\s?(image|video|audio|图片|图像|照片|视频|音频)\s?(\d{1,3})/giu;
const KIND_OF = {
  image: "image", 图片: "image", 图像: "image", 照片: "image",
  video: "video", 视频: "video", audio: "audio", 音频: "audio",
};
const TYPING = /(?:^|[^\w@])@([A-Za-z]{0,5}\d{0,3})$/u;

export function parseMentions(text) {
  return [...text.matchAll(MENTION)].map((match) => ({
    kind: KIND_OF[match[1].toLowerCase()],
    index: Number(match[2]),
    start: match.index,
    end: match.index + match[0].length,
    text: match[0],
  }));
}

export function characters(text) {
  return [...text].length; // code points, as the server counts
}

function escape(text) {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

export class Prompt {
  constructor({ textarea, backdrop, list, status, count, mentions }) {
    this.textarea = textarea;
    this.backdrop = backdrop;
    this.list = list;
    this.status = status;
    this.count = count;
    this.mentions = mentions; // () => [{kind, index, text, name}] that exist
    this.options = [];
    this.active = 0;
    this.selection = null; // where the caret was when the prompt lost the focus
    textarea.addEventListener("input", () => this.update(true));
    textarea.addEventListener("scroll", () => (backdrop.scrollTop = textarea.scrollTop));
    textarea.addEventListener("keydown", (event) => this.key(event));
    textarea.addEventListener("blur", () => {
      this.selection = [textarea.selectionStart, textarea.selectionEnd];
      this.close();
    });
    textarea.addEventListener("click", () => this.update(true));
    list.addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus
    list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.choose(Number(option.dataset.index));
    });
  }

  get value() {
    return this.textarea.value;
  }

  set value(text) {
    this.textarea.value = text;
    this.selection = [text.length, text.length];
    this.update(false);
  }

  // Mentions that name no reference.
  unknown() {
    const have = new Set(this.mentions().map((m) => `${m.kind}${m.index}`));
    return parseMentions(this.value).filter((m) => !have.has(`${m.kind}${m.index}`));
  }

  update(completing) {
    const text = this.value;
    const have = new Set(this.mentions().map((m) => `${m.kind}${m.index}`));
    let html = "";
    let at = 0;
    for (const m of parseMentions(text)) {
      const known = have.has(`${m.kind}${m.index}`);
      html += escape(text.slice(at, m.start));
      html += `<mark class="${known ? "known" : "unknown"}">${escape(m.text)}</mark>`;
      at = m.end;
    }
    html += escape(text.slice(at));
    this.backdrop.innerHTML = `${html}\n`; // the newline keeps a last empty line's height
    this.backdrop.scrollTop = this.textarea.scrollTop;

    const used = characters(text);
    this.count.textContent = `${used} / ${MAX_PROMPT_CHARS}`;
    this.count.classList.toggle("over", used > MAX_PROMPT_CHARS);

    const missing = this.unknown();
    this.textarea.setAttribute("aria-invalid", String(missing.length > 0 || used > MAX_PROMPT_CHARS));
    this.status.textContent = missing.length
      ? `${[...new Set(missing.map((m) => m.text))].join(", ")} ${missing.length === 1 ? "names" : "name"} no reference.`
      : "";
    this.status.classList.toggle("bad", missing.length > 0);
    if (completing) this.complete();
  }

  // Put `mention` at the caret (where it was when the prompt lost the focus, else at the end).
  insert(mention) {
    const text = this.value;
    const [start, end] = document.activeElement === this.textarea
      ? [this.textarea.selectionStart, this.textarea.selectionEnd]
      : this.selection || [text.length, text.length];
    const before = text.slice(0, start);
    const after = text.slice(end);
    const lead = before && !/\s$/.test(before) ? " " : "";
    const trail = after && /^\s/.test(after) ? "" : " ";
    this.textarea.value = before + lead + mention + trail + after;
    const caret = (before + lead + mention + trail).length;
    this.textarea.focus();
    this.textarea.setSelectionRange(caret, caret);
    this.update(false);
  }

  complete() {
    const caret = this.textarea.selectionStart;
    if (caret !== this.textarea.selectionEnd) return this.close();
    const typed = TYPING.exec(this.value.slice(0, caret));
    if (!typed) return this.close();
    const prefix = `@${typed[1]}`.toLowerCase();
    const options = this.mentions().filter((m) => m.text.toLowerCase().startsWith(prefix));
    if (!options.length || (options.length === 1 && options[0].text.toLowerCase() === prefix)) {
      return this.close();
    }
    this.options = options;
    this.typedLength = prefix.length;
    this.active = Math.min(this.active, options.length - 1);
    this.renderList();
    this.place();
  }

  renderList() {
    this.list.replaceChildren(
      ...this.options.map((m, i) => {
        const li = document.createElement("li");
        li.id = `mention-option-${i}`;
        li.setAttribute("role", "option");
        li.dataset.index = String(i);
        li.setAttribute("aria-selected", String(i === this.active));
        const tag = document.createElement("strong");
        tag.textContent = m.text;
        const name = document.createElement("span");
        name.textContent = m.name;
        li.append(tag, " ", name);
        return li;
      }),
    );
    this.list.hidden = false;
    this.textarea.setAttribute("aria-activedescendant", `mention-option-${this.active}`);
  }

  // Under the caret: the backdrop lays the text out as the textarea does.
  place() {
    const caret = this.textarea.selectionStart;
    const box = this.backdrop.parentElement;
    // a copy of the text up to the caret, laid out alike, ends where the caret is
    const mirror = document.createElement("div");
    mirror.className = "prompt-backdrop mirror";
    mirror.textContent = this.value.slice(0, caret);
    const spot = document.createElement("span");
    spot.textContent = "\u200b";
    mirror.append(spot);
    box.append(mirror);
    const frame = box.getBoundingClientRect();
    const at = spot.getBoundingClientRect();
    mirror.remove();
    const top = at.bottom - frame.top - this.textarea.scrollTop + 4;
    const width = this.list.offsetWidth || 220;
    const left = Math.max(0, Math.min(at.left - frame.left, frame.width - width));
    this.list.style.top = `${Math.round(top)}px`;
    this.list.style.left = `${Math.round(left)}px`;
  }

  close() {
    if (this.list.hidden) return;
    this.list.hidden = true;
    this.options = [];
    this.active = 0;
    this.textarea.removeAttribute("aria-activedescendant");
  }

  choose(index) {
    const option = this.options[index];
    if (!option) return;
    const caret = this.textarea.selectionStart;
    const text = this.value;
    const start = caret - this.typedLength;
    const after = text.slice(caret);
    const trail = /^\s/.test(after) ? "" : " ";
    this.textarea.value = text.slice(0, start) + option.text + trail + after;
    const end = start + option.text.length + trail.length;
    this.textarea.setSelectionRange(end, end);
    this.close();
    this.update(false);
  }

  key(event) {
    if (this.list.hidden) return;
    const count = this.options.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      this.active = (this.active + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
      this.renderList();
    } else if (event.key === "Enter" || event.key === "Tab") {
      this.choose(this.active);
    } else if (event.key === "Escape") {
      this.close();
    } else {
      return;
    }
    event.preventDefault();
  }
}
