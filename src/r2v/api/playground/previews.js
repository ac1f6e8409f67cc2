// Thumbnails of references, made in the browser from the file itself: the picture, a
// video's first frame, an audio clip's waveform. Nothing leaves the page to make them.

const SIZE = 160; // canvas pixels: sharp at the 80 px the tiles show, on 2x screens

function once(target, ok, failed = "error") {
  return new Promise((resolve, reject) => {
    target.addEventListener(ok, resolve, { once: true });
    target.addEventListener(failed, () => reject(new Error(`cannot decode (${failed})`)), { once: true });
  });
}

const ICONS = {
  image: "M4 5h16v14H4z M7 15l3-4 3 3 2-2 3 3",
  video: "M3 6h12v12H3z M15 10l6-3v10l-6-3",
  audio: "M9 18V6l10-2v12 M9 18a3 3 0 1 1-3-3h3 M19 16a3 3 0 1 1-3-3h3",
};

// A tile for a reference not shown (a link to another site: the page's policy fetches
// nothing from other origins).
export function placeholder(kind, caption) {
  const box = document.createElement("span");
  box.className = `placeholder ${kind}`;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[kind]);
  svg.append(path);
  box.append(svg);
  if (caption) {
    const text = document.createElement("span");
    text.className = "caption";
    text.textContent = caption;
    box.append(text);
  }
  return box;
}

async function imagePreview(blob) {
  const url = URL.createObjectURL(blob);
  const img = new Image();
  img.alt = "";
  img.decoding = "async";
  img.src = url;
  try {
    await img.decode();
  } catch (error) {
    URL.revokeObjectURL(url);
    throw error;
  }
  return { element: img }; // the object URL lives as long as the page: tiles are few
}

async function videoPreview(blob) {
  const url = URL.createObjectURL(blob);
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  video.src = url;
  try {
    await once(video, "loadeddata");
    const seeked = once(video, "seeked");
    video.currentTime = Math.min(0.05, video.duration / 2 || 0);
    await seeked;
    const canvas = document.createElement("canvas");
    const scale = SIZE / Math.max(video.videoWidth, video.videoHeight);
    canvas.width = Math.max(1, Math.round(video.videoWidth * scale));
    canvas.height = Math.max(1, Math.round(video.videoHeight * scale));
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return { element: canvas, duration: video.duration };
  } finally {
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(url);
  }
}

async function audioPreview(blob) {
  const context = new AudioContext();
  let audio;
  try {
    audio = await context.decodeAudioData(await blob.arrayBuffer());
  } finally {
    context.close();
  }
  const bars = 24;
  const samples = audio.getChannelData(0);
  const step = Math.max(1, Math.floor(samples.length / bars));
  const peaks = [];
  for (let bar = 0; bar < bars; bar++) {
    let peak = 0;
    for (let i = bar * step; i < Math.min(samples.length, (bar + 1) * step); i += 16) {
      peak = Math.max(peak, Math.abs(samples[i]));
    }
    peaks.push(peak);
  }
  const loudest = Math.max(...peaks, 1e-6);
  const canvas = document.createElement("canvas");
  canvas.width = SIZE;
  canvas.height = SIZE;
  canvas.className = "waveform";
  const draw = canvas.getContext("2d");
  draw.fillStyle = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#4f46e5";
  const width = SIZE / bars;
  peaks.forEach((peak, bar) => {
    const height = Math.max(6, (peak / loudest) * SIZE * 0.5);
    draw.fillRect(bar * width + 1.5, (SIZE - height) / 2, width - 3, height);
  });
  return { element: canvas, duration: audio.duration };
}

export function previewOf(kind, blob) {
  if (kind === "image") return imagePreview(blob);
  if (kind === "video") return videoPreview(blob);
  return audioPreview(blob);
}
