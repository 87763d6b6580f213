// Ember playground: a small client for the `ember serve` public API.
// Everything user- or server-provided is inserted with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "ember-api-key";

// All models from GET /v1/models, by name.
let models = new Map();

// ---------------------------------------------------------------- API ----

/** Sends a request (POST with a JSON body, GET without); resolves with the
 *  response, or throws an Error whose message is suitable for the user. */
async function send(path, body) {
  const headers = {};
  const key = $("api-key").value.trim();
  if (key) headers["Authorization"] = `Bearer ${key}`;
  const init = { method: body === undefined ? "GET" : "POST", headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch (err) {
    throw new Error(`cannot reach the server (${err.message})`);
  }
}

/** The JSON of a response's text, or null when it is not JSON (e.g. a proxy
 *  error page). */
function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** Throws the user-facing error of a failed response. */
function fail(res, data) {
  if (res.status === 401) {
    throw new Error($("api-key").value.trim()
      ? "The API key was rejected: check the \"API key\" field above."
      : "This server requires an API key: enter it in the \"API key\" field above.");
  }
  const msg = data && data.error && data.error.message;
  throw new Error(msg || `HTTP ${res.status} ${res.statusText}`.trim());
}

/** Calls the API; resolves with the parsed JSON or throws an Error whose
 *  message is suitable for the user. */
async function api(path, body) {
  const res = await send(path, body);
  const data = parseJson(await res.text());
  if (!res.ok) fail(res, data);
  if (data === null) throw new Error("the server sent an invalid response");
  return data;
}

/** Calls a streaming route: `onEvent(data)` gets each server-sent event's
 *  JSON as it comes (until `[DONE]`); an error event throws. */
async function stream(path, body, onEvent) {
  const res = await send(path, body);
  if (!res.ok) fail(res, parseJson(await res.text()));
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const text = event.split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!text || text === "[DONE]") continue;
      const data = parseJson(text);
      if (data === null) continue;
      if (data.error) throw new Error(data.error.message || "the answer failed");
      onEvent(data);
    }
  }
}

const predictPath = (name) => `/v1/models/${encodeURIComponent(name)}:predict`;

// Ticket per result element, so that only the latest request renders
// (e.g. an automatic predict on pointerup racing a button click).
const tickets = new WeakMap();

/** Runs a request while tracking `data-state` on `el` (pending/done/error).
 *  `render(data)` shows the answer; `fail(message)` shows an error. */
async function tracked(el, path, body, render, fail) {
  const ticket = (tickets.get(el) || 0) + 1;
  tickets.set(el, ticket);
  el.dataset.state = "pending";
  try {
    const data = await api(path, body);
    if (tickets.get(el) !== ticket) return;
    render(data);
    el.dataset.state = "done";
  } catch (err) {
    if (tickets.get(el) !== ticket) return;
    fail(err.message);
    el.dataset.state = "error";
  }
}

/** First prediction of a predict response, or throws. */
function firstPrediction(data) {
  const p = data && Array.isArray(data.predictions) && data.predictions[0];
  if (!p) throw new Error("the server returned no prediction");
  return p;
}

// ------------------------------------------------------------ helpers ----

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

const pct = (score) => `${(score * 100).toFixed(1)}%`;

/** Resets a result element to its empty state. */
function resetResult(node) {
  tickets.set(node, (tickets.get(node) || 0) + 1); // drop in-flight answers
  node.textContent = "";
  delete node.dataset.state;
  delete node.dataset.label;
  delete node.dataset.value;
}

/** Fills a <select> with model names; keeps the current choice if possible. */
function fillSelect(select, items, labelOf = (m) => m.name) {
  const previous = select.options.length > 0 ? select.value : null;
  select.replaceChildren(...items.map((m) => el("option", { value: m.name, text: labelOf(m) })));
  if (items.some((m) => m.name === previous)) select.value = previous;
}

/** Draws a horizontal bar per class. `order` (optional) gives the class
 *  labels in display order; otherwise labels are sorted naturally. */
function renderBars(container, top, order = [], best = null) {
  const rank = (label) => {
    const i = order.indexOf(label);
    return i < 0 ? Infinity : i;
  };
  const rows = [...(top || [])].sort((a, b) =>
    rank(a.label) - rank(b.label) ||
    String(a.label).localeCompare(String(b.label), undefined, { numeric: true }));
  container.replaceChildren(...rows.map((t) => {
    const width = Math.max(0, Math.min(100, t.score * 100));
    const fill = el("div", { class: "bar-fill" });
    fill.style.width = `${width}%`;
    return el("div", { class: t.label === best ? "bar best" : "bar", dataset: { label: t.label } },
      el("span", { class: "bar-label", text: t.label }),
      el("div", { class: "bar-track" }, fill),
      el("span", { class: "bar-score", text: pct(t.score) }));
  }));
}

/** Shows a classification or regression prediction in `result`. */
function showPrediction(result, bars, p, order = []) {
  if (typeof p.value === "number") {
    result.textContent = `${Number(p.value.toPrecision(6))}`;
    result.dataset.value = String(p.value);
    bars.replaceChildren();
  } else {
    result.textContent = typeof p.score === "number" ? `${p.label} (${pct(p.score)})` : String(p.label);
    result.dataset.label = p.label;
    renderBars(bars, p.top, order, p.label);
  }
}

// ------------------------------------------------------- models list ----

function renderModelsList() {
  const list = $("models-list");
  if (models.size === 0) {
    list.replaceChildren(el("li", { class: "empty", text: "No models are loaded." }));
    return;
  }
  list.replaceChildren(...[...models.values()].map((m) =>
    el("li", { dataset: { name: m.name, kind: m.kind } },
      el("div", { class: "model-head" },
        el("strong", { text: m.name }),
        el("span", { class: `badge kind-${m.kind}`, text: m.kind })),
      el("pre", { text: m.summary || "" }))));
}

// ------------------------------------------------------------- digit ----

const SIZE = 28;  // MNIST image side
const BOX = 20;   // MNIST digits are scaled to fit a 20×20 box

const canvas = $("digit-canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
let lastPoint = null; // last pointer position while drawing

function clearCanvas() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

/** Pointer position in canvas pixels (the canvas may be shown scaled). */
function canvasPoint(e) {
  const r = canvas.getBoundingClientRect();
  return { x: (e.clientX - r.left) * canvas.width / r.width,
           y: (e.clientY - r.top) * canvas.height / r.height };
}

function strokeTo(p) {
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 20;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(lastPoint.x, lastPoint.y);
  ctx.lineTo(p.x, p.y);
  ctx.stroke();
  lastPoint = p;
}

function setupDrawing() {
  clearCanvas();
  canvas.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    lastPoint = canvasPoint(e);
    // A dot, so that a single tap leaves ink (zero-length strokes draw nothing).
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.arc(lastPoint.x, lastPoint.y, 10, 0, 2 * Math.PI);
    ctx.fill();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (lastPoint) strokeTo(canvasPoint(e));
  });
  canvas.addEventListener("pointerup", () => {
    if (!lastPoint) return;
    lastPoint = null;
    predictDigit();
  });
  canvas.addEventListener("pointercancel", () => { lastPoint = null; });
}

/** Downscales a region of `src` to tw×th with smoothing, halving in steps so
 *  that every source pixel contributes (a single 10× bilinear step would
 *  skip most of them). Returns the resulting canvas. */
function downscale(src, sx, sy, sw, sh, tw, th) {
  let cur = src;
  while (sw / 2 >= tw && sh / 2 >= th) {
    const half = document.createElement("canvas");
    half.width = Math.ceil(sw / 2);
    half.height = Math.ceil(sh / 2);
    const h = half.getContext("2d");
    h.imageSmoothingEnabled = true;
    h.imageSmoothingQuality = "high";
    h.drawImage(cur, sx, sy, sw, sh, 0, 0, half.width, half.height);
    [cur, sx, sy, sw, sh] = [half, 0, 0, half.width, half.height];
  }
  const out = document.createElement("canvas");
  out.width = tw;
  out.height = th;
  const o = out.getContext("2d", { willReadFrequently: true });
  o.imageSmoothingEnabled = true;
  o.imageSmoothingQuality = "high";
  o.drawImage(cur, sx, sy, sw, sh, 0, 0, tw, th);
  return out;
}

/** Turns the drawing into 784 MNIST-like pixel values (0..255, row-major),
 *  or null when nothing is drawn. */
function digitPixels() {
  const { width: W, height: H } = canvas;
  const img = ctx.getImageData(0, 0, W, H).data;

  // Bounding box of the ink (red channel > 0).
  let x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (img[(y * W + x) * 4] > 0) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return null;

  // Scale the box so that its larger side is 20 px, keeping the aspect ratio.
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  const scale = BOX / Math.max(bw, bh);
  const sw = Math.max(1, Math.round(bw * scale));
  const sh = Math.max(1, Math.round(bh * scale));
  const small = downscale(canvas, x0, y0, bw, bh, sw, sh)
    .getContext("2d").getImageData(0, 0, sw, sh).data;

  // Intensity-weighted centre of mass, in continuous coordinates
  // (pixel x covers [x, x+1), so its centre is x + 0.5).
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const v = small[(y * sw + x) * 4];
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  const cx = mass > 0 ? mx / mass : sw / 2;
  const cy = mass > 0 ? my / mass : sh / 2;

  // Shift so that the centre of mass lands on (14, 14), staying inside.
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const ox = clamp(Math.round(SIZE / 2 - cx), 0, SIZE - sw);
  const oy = clamp(Math.round(SIZE / 2 - cy), 0, SIZE - sh);

  const pixels = new Array(SIZE * SIZE).fill(0);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      pixels[(y + oy) * SIZE + (x + ox)] = small[(y * sw + x) * 4];
    }
  }
  return pixels;
}

/** Shows the 28×28 image that was sent (scaled up by CSS). */
function drawPreview(pixels) {
  const preview = $("digit-preview").getContext("2d");
  const image = preview.createImageData(SIZE, SIZE);
  pixels.forEach((v, i) => {
    image.data.set([v, v, v, 255], i * 4);
  });
  preview.putImageData(image, 0, 0);
}

function clearDigit() {
  clearCanvas();
  resetResult($("digit-result"));
  $("digit-bars").replaceChildren();
  $("digit-preview").getContext("2d").clearRect(0, 0, SIZE, SIZE);
}

function predictDigit() {
  const result = $("digit-result");
  const bars = $("digit-bars");
  const model = models.get($("digit-model").value);
  if (!model) return;
  resetResult(result);
  bars.replaceChildren();

  const pixels = digitPixels();
  if (!pixels) {
    result.textContent = "draw a digit";
    result.dataset.state = "error";
    return;
  }
  drawPreview(pixels);
  tracked(result, predictPath(model.name), { instances: [pixels], top_k: 1000 },
    (data) => showPrediction(result, bars, firstPrediction(data), model.input.classes || []),
    (msg) => { result.textContent = msg; });
}

// --------------------------------------------------------------- FAQ ----

function askFaq() {
  const answers = $("faq-answers");
  const message = $("faq-message");
  const name = $("faq-index").value;
  const query = $("faq-query").value.trim();
  resetResult(answers);
  message.textContent = "";
  if (!name) return;
  if (!query) {
    message.textContent = "Type a question first.";
    answers.dataset.state = "error";
    return;
  }
  tracked(answers, `/v1/faq/${encodeURIComponent(name)}/ask`, { query, top_k: 3 },
    (data) => {
      const list = (data && data.answers) || [];
      if (list.length === 0) message.textContent = "No answer found.";
      answers.replaceChildren(...list.map((a) =>
        el("li", { dataset: { question: a.question } },
          el("div", { class: "question", text: a.question }),
          el("div", { class: "answer", text: a.answer }),
          el("div", { class: "score", text: `score ${Number(a.score).toFixed(3)}` }))));
    },
    (msg) => { message.textContent = msg; });
}

// -------------------------------------------------------------- chat ----

// The free chat's conversation so far ({role, content}); the FAQ bot answers
// each question on its own.
let conversation = [];

function clearChat() {
  conversation = [];
  resetResult($("chat-log"));
  $("chat-message").textContent = "";
}

/** Adds a message to the log; returns its text element. */
function addMessage(role, text) {
  const log = $("chat-log");
  const body = el("div", { class: "msg-text", text });
  const message = el("div", { class: `msg ${role}` }, body);
  log.append(message);
  log.scrollTop = log.scrollHeight;
  return body;
}

function sendChat() {
  const log = $("chat-log");
  const message = $("chat-message");
  const model = $("chat-model").value;
  const faq = $("chat-faq").value;
  const input = $("chat-input");
  const text = input.value.trim();
  message.textContent = "";
  if (!model) return;
  if (!text) {
    message.textContent = "Type a message first.";
    return;
  }
  input.value = "";
  addMessage("user", text);
  const reply = addMessage("assistant", "");
  const bubble = reply.parentElement;
  const ticket = (tickets.get(log) || 0) + 1;
  tickets.set(log, ticket);
  log.dataset.state = bubble.dataset.state = "pending";
  const append = (piece) => {
    reply.textContent += piece;
    log.scrollTop = log.scrollHeight;
  };

  let request;
  if (faq) {
    // The FAQ bot: its sources first, the reply as it is written, then the
    // whole answer (whose reply is trimmed).
    request = stream(`/v1/faq/${encodeURIComponent(faq)}/ask`, { query: text, llm: model, stream: true },
      (data) => {
        if (typeof data.delta === "string") {
          append(data.delta);
          return;
        }
        if (Array.isArray(data.answers) && data.answers.length > 0) {
          bubble.querySelector(".sources")?.remove();
          bubble.append(el("ol", { class: "sources", "aria-label": "From the FAQ" },
            ...data.answers.map((a) => el("li", { dataset: { question: a.question },
              text: `${a.question} (${Number(a.score).toFixed(3)})` }))));
        }
        if (typeof data.reply === "string") {
          reply.textContent = data.reply;
          bubble.dataset.known = String(data.known);
        }
      });
  } else {
    conversation.push({ role: "user", content: text });
    const messages = [...conversation];
    request = stream("/v1/chat/completions",
      { model, messages, stream: true, temperature: 0, max_tokens: 256 },
      (data) => {
        const delta = data.choices && data.choices[0] && data.choices[0].delta;
        if (delta && typeof delta.content === "string") append(delta.content);
      }).then(() => conversation.push({ role: "assistant", content: reply.textContent }));
  }
  request.then(
    () => {
      bubble.dataset.state = "done";
      if (tickets.get(log) === ticket) log.dataset.state = "done";
    },
    (err) => {
      bubble.dataset.state = "error";
      if (faq === "") conversation.pop(); // the question went unanswered
      if (tickets.get(log) !== ticket) return;
      message.textContent = err.message;
      log.dataset.state = "error";
    });
}

// --------------------------------------------------------- recommend ----

function recommend() {
  const items = $("recommend-items");
  const note = $("recommend-note");
  const message = $("recommend-message");
  const name = $("recommend-model").value;
  const user = $("recommend-user").value.trim();
  const k = Number($("recommend-k").value) || 10;
  resetResult(items);
  note.textContent = "";
  message.textContent = "";
  if (!name) return;
  if (!user) {
    message.textContent = "Type a user id first.";
    items.dataset.state = "error";
    return;
  }
  tracked(items, `/v1/recommend/${encodeURIComponent(name)}`,
    { user, k, explain: $("recommend-explain").checked },
    (data) => {
      note.textContent = data.fallback || "";
      items.replaceChildren(...(data.items || []).map((r) => {
        const because = (r.because || []).map(([title]) => title);
        return el("li", { dataset: { item: r.item } },
          el("div", { class: "question", text: r.title || `item ${r.item}` }),
          ...(because.length ? [el("div", { class: "answer", text: `because of ${because.join(", ")}` })] : []),
          el("div", { class: "score", text: `item ${r.item} · score ${Number(r.score).toFixed(3)}` }));
      }));
    },
    (msg) => { message.textContent = msg; });
}

// ------------------------------------------------------------- table ----

/** Rebuilds the form fields from the selected table model's columns. */
function buildTableForm() {
  const fields = $("table-fields");
  const model = models.get($("table-model").value);
  resetResult($("table-result"));
  $("table-bars").replaceChildren();
  if (!model) {
    fields.replaceChildren();
    return;
  }
  const columns = model.input.columns || [];
  fields.replaceChildren(...columns.map((col) => {
    let control;
    if (col.kind === "categorical") {
      control = el("select", { name: col.name },
        el("option", { value: "", text: "(missing)" }),
        ...(col.categories || []).map((c) => el("option", { value: c, text: c })));
    } else {
      control = el("input", { type: "number", step: "any", name: col.name, placeholder: "(missing)" });
    }
    return el("label", { class: "field" }, el("span", { text: col.name }), control);
  }));
}

function predictTable() {
  const result = $("table-result");
  const bars = $("table-bars");
  const model = models.get($("table-model").value);
  if (!model) return;
  resetResult(result);
  bars.replaceChildren();

  // Raw column values; empty fields are sent as null (missing).
  const instance = {};
  for (const col of model.input.columns || []) {
    const control = $("table-form").elements.namedItem(col.name);
    const raw = control ? control.value : "";
    if (raw === "") instance[col.name] = null;
    else instance[col.name] = col.kind === "categorical" ? raw : Number(raw);
  }
  tracked(result, predictPath(model.name), { instances: [instance], top_k: 1000 },
    (data) => showPrediction(result, bars, firstPrediction(data)),
    (msg) => { result.textContent = msg; });
}

// -------------------------------------------------------------- text ----

function predictText() {
  const result = $("text-result");
  const bars = $("text-bars");
  const name = $("text-model").value;
  if (!name) return;
  resetResult(result);
  bars.replaceChildren();
  tracked(result, predictPath(name), { instances: [$("text-input").value], top_k: 1000 },
    (data) => showPrediction(result, bars, firstPrediction(data)),
    (msg) => { result.textContent = msg; });
}

// -------------------------------------------------------------- setup ----

const isDigitModel = (m) => {
  const img = m.kind === "network" && m.input && m.input.image;
  return !!img && img.height === SIZE && img.width === SIZE && img.channels === 1;
};

/** Shows each section only when a model of its kind exists. */
function buildSections() {
  const all = [...models.values()];
  const groups = {
    digit: all.filter(isDigitModel),
    faq: all.filter((m) => m.kind === "faq"),
    table: all.filter((m) => m.kind === "table"),
    text: all.filter((m) => m.kind === "text"),
    chat: all.filter((m) => m.kind === "language"),
    recommend: all.filter((m) => m.kind === "recommender"),
  };
  fillSelect($("digit-model"), groups.digit);
  fillSelect($("faq-index"), groups.faq,
    (m) => (m.input && m.input.questions != null ? `${m.name} (${m.input.questions} questions)` : m.name));
  fillSelect($("table-model"), groups.table,
    (m) => (m.input && m.input.target ? `${m.name} (${m.input.target})` : m.name));
  fillSelect($("text-model"), groups.text);
  fillSelect($("chat-model"), groups.chat);
  // The FAQ bot when there is an index to answer from, else free chat.
  fillSelect($("chat-faq"), [...groups.faq, { name: "" }],
    (m) => (m.name ? `FAQ ${m.name} (the bot)` : "nothing (free chat)"));
  fillSelect($("recommend-model"), groups.recommend,
    (m) => (m.input && m.input.users != null ? `${m.name} (${m.input.users} users, ${m.input.items} items)` : m.name));
  for (const [kind, list] of Object.entries(groups)) {
    $(`${kind}-section`).hidden = list.length === 0;
  }
  buildTableForm();
}

async function loadModels() {
  const status = $("status");
  status.textContent = "Loading models…";
  status.className = "status";
  try {
    const data = await api("/v1/models");
    models = new Map((data.data || []).map((m) => [m.name, m]));
    renderModelsList();
    buildSections();
    status.textContent = `${models.size} model${models.size === 1 ? "" : "s"} loaded.`;
    document.body.dataset.ready = "true";
  } catch (err) {
    status.textContent = err.message;
    status.className = "status error";
    document.body.dataset.ready = "error";
  }
}

function init() {
  const key = $("api-key");
  try {
    key.value = localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    // localStorage can be unavailable (privacy mode); the key just isn't kept.
  }
  key.addEventListener("change", () => {
    try {
      localStorage.setItem(KEY_STORAGE, key.value.trim());
    } catch { /* see above */ }
    loadModels();
  });

  setupDrawing();
  $("digit-predict").addEventListener("click", predictDigit);
  $("digit-clear").addEventListener("click", clearDigit);
  $("digit-model").addEventListener("change", () => {
    resetResult($("digit-result"));
    $("digit-bars").replaceChildren();
  });

  $("faq-ask").addEventListener("click", askFaq);
  $("faq-query").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      askFaq();
    }
  });

  $("chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sendChat();
  });
  $("chat-clear").addEventListener("click", clearChat);
  $("chat-model").addEventListener("change", clearChat);
  $("chat-faq").addEventListener("change", clearChat);

  $("recommend-form").addEventListener("submit", (e) => {
    e.preventDefault();
    recommend();
  });

  $("table-model").addEventListener("change", buildTableForm);
  $("table-form").addEventListener("submit", (e) => {
    e.preventDefault();
    predictTable();
  });

  $("text-predict").addEventListener("click", predictText);
  $("text-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      predictText();
    }
  });

  loadModels();
}

init();
