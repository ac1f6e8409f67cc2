// The request that made a task, as a curl command or as Python with r2v's SDK. The key
// is read from $R2V_API_KEY in both, never written into the text.

const SDK_FIELDS = [
  "model", "prompt", "resolution", "aspect_ratio", "duration", "generate_audio", "seed",
  "image_urls", "video_urls", "audio_urls", "callback_url",
];

function shellQuote(text) {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

// A Python literal: JSON's strings, numbers and lists are Python's too.
function python(value) {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null) return "None";
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return `[\n${value.map((item) => `            ${python(item)},`).join("\n")}\n        ]`;
  }
  return JSON.stringify(value);
}

export function snippet(language, request, base) {
  if (language === "curl") {
    return [
      `curl -s ${shellQuote(`${base}/v1/videos/generations`)} \\`,
      `  -H "Authorization: Bearer $R2V_API_KEY" -H "Content-Type: application/json" \\`,
      `  -d ${shellQuote(JSON.stringify(request, null, 2))}`,
    ].join("\n");
  }
  const fields = SDK_FIELDS.filter((name) => request[name] !== undefined && request[name] !== null)
    .map((name) => `        ${name}=${python(request[name])},`);
  return [
    "import os",
    "",
    "from r2v.client import Client",
    "",
    `with Client(${JSON.stringify(base)}, api_key=os.environ["R2V_API_KEY"]) as client:`,
    "    task = client.videos.create(",
    ...fields,
    "    )",
    "    done = client.tasks.wait(task.id)",
    '    client.download(done, "out.mp4")',
  ].join("\n");
}
