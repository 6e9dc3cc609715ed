// nnlab playground page: talks to the server's /api, draws what the server's model computes.
// No build step, nothing external. The whole setup lives in the URL hash (share link).
"use strict";

const $ = (id) => document.getElementById(id);
const FIELDS = ["dataset", "noise", "train_ratio", "n_samples", "batch_size", "model", "layers",
  "width", "activation", "init", "batchnorm", "residual", "kan_hidden", "grid", "k", "optimizer",
  "lr", "reg", "lam", "clip", "clip_value", "seed"];
const CLASS_RGB = [[245, 124, 0], [30, 136, 229], [67, 160, 71], [142, 36, 170], [229, 57, 53]];
let options = null, sid = null, source = null, data = null, state = null, status = "paused";

// ---------------------------------------------------------------- API
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let payload = null;
  try { payload = await res.json(); } catch (e) { payload = null; }
  if (!res.ok) {
    const msg = payload && payload.detail ? payload.detail : `${res.status} ${res.statusText}`;
    const err = new Error(typeof msg === "string" ? msg : JSON.stringify(msg));
    err.status = res.status;
    throw err;
  }
  return payload;
}

function showError(msg) {
  const box = $("error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

// ---------------------------------------------------------------- form <-> URL
function fillSelect(id, values) {
  const sel = $(id);
  sel.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = o.textContent = v;
    sel.appendChild(o);
  }
}

function readForm() {
  const cfg = {};
  for (const f of FIELDS) {
    const el = $(f);
    cfg[f] = el.type === "checkbox" ? el.checked : el.value;
  }
  return cfg;
}

function writeForm(cfg) {
  for (const f of FIELDS) {
    if (!(f in cfg)) continue;
    const el = $(f);
    let v = cfg[f];
    if (Array.isArray(v)) v = v.join(",");
    if (el.type === "checkbox") el.checked = v === true || v === "1" || v === "true";
    else if (el.tagName === "SELECT" && ![...el.options].some((o) => o.value === String(v))) {
      const o = document.createElement("option");  // keep a bad URL value visible
      o.value = o.textContent = String(v);
      el.appendChild(o);
      el.value = String(v);
    } else el.value = v;
  }
  toggleModelOptions();
}

function urlConfig() {
  const raw = location.hash.length > 1 ? location.hash.slice(1) : location.search.slice(1);
  const cfg = {};
  for (const [k, v] of new URLSearchParams(raw)) cfg[k] = v;
  return cfg;
}

function toQuery(cfg) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(cfg)) {
    p.set(k, typeof v === "boolean" ? (v ? "1" : "0") : Array.isArray(v) ? v.join(",") : v);
  }
  return p.toString();
}

function setURL(cfg) {
  const q = toQuery(cfg);
  history.replaceState(null, "", "#" + q);
  $("share").href = location.pathname + "#" + q;
}

function toggleModelOptions() {
  const kan = $("model").value === "kan";
  $("mlp-opts").hidden = kan;
  $("kan-opts").hidden = !kan;
}

// ---------------------------------------------------------------- session lifecycle
let opening = null;  // the one session request in flight: clicks while it runs wait for it

function openSession(cfg) {
  if (!opening) {
    opening = (async () => {
      const s = await api("POST", "/api/sessions", cfg);
      if (sid && sid !== s.id) navigator.sendBeacon(`/api/sessions/${sid}/close`);
      sid = s.id;
      applySummary(s);
      listen();
    })().finally(() => { opening = null; });
  }
  return opening;
}

function applySummary(s) {
  status = s.status;
  writeForm(s.config);
  setURL(s.config);
  renderStatus(s.status, s.error);
  const regression = options.datasets.regression.some((d) => d.name === s.config.dataset);
  $("formula-box").hidden = !(s.config.model === "kan" && regression);
  $("formula").innerHTML = "";
}

function listen() {
  if (source) source.close();
  source = new EventSource(`/api/sessions/${sid}/events`);
  source.addEventListener("data", (e) => { data = JSON.parse(e.data); draw(); });
  source.addEventListener("state", (e) => {
    state = JSON.parse(e.data);
    status = state.status;
    renderStatus(state.status, state.error);
    draw();
  });
  source.onerror = async () => {
    // the stream dropped: if our session is gone (server restart, idle timeout), start anew
    if (!sid) return;
    try { await api("GET", `/api/sessions/${sid}`); } catch (err) {
      if (err.status === 404) {
        source.close();
        sid = null;
        try { await openSession(readForm()); } catch (e2) { showError(e2.message); }
      }
    }
  };
}

async function applyForm(fromURL) {
  const cfg = fromURL && !(fromURL instanceof Event) ? fromURL : readForm();
  toggleModelOptions();
  try {
    if (opening) await opening.catch(() => null);
    if (sid) applySummary(await api("POST", `/api/sessions/${sid}/reset`, cfg));
    else await openSession(cfg);
    showError("");
  } catch (err) {
    setURL(cfg);
    showError(err.message);
  }
}

async function control(action) {
  if (opening) await opening.catch(() => null);
  if (!sid) { await applyForm(); if (!sid) return; }
  try {
    const s = await api("POST", `/api/sessions/${sid}/${action}`);
    status = s.status;
    renderStatus(s.status, s.error);
    if (action === "reset") applySummary(s);
    showError("");
  } catch (err) { showError(err.message); }
}

function renderStatus(st, error) {
  const el = $("status");
  el.textContent = st === "error" ? "error — press Reset" : st;
  el.className = "status " + st;
  $("play").textContent = st === "playing" ? "❚❚ Pause" : "▶ Play";
  if (st === "error" && error) showError("Training failed: " + error);
}

// ---------------------------------------------------------------- drawing helpers
function mix(rgb, t) {  // t=0 white, t=1 full colour
  return rgb.map((c) => Math.round(255 + (c - 255) * t));
}

function diverging(v) {  // v in [-1, 1] -> orange (neg) .. white .. blue (pos)
  const t = Math.max(-1, Math.min(1, v));
  return t < 0 ? mix(CLASS_RGB[0], -t) : mix(CLASS_RGB[1], t);
}

function heatImage(res, colorAt) {
  const off = document.createElement("canvas");
  off.width = off.height = res;
  const ctx = off.getContext("2d");
  const img = ctx.createImageData(res, res);
  for (let i = 0; i < res * res; i++) {
    const c = colorAt(i);
    img.data.set([c[0], c[1], c[2], 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return off;
}

function fmt(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  return Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(4) : v.toExponential(2);
}

// ---------------------------------------------------------------- drawing
function draw() {
  if (!state || !data) return;
  const h = state.history;
  const n = h.epoch.length - 1;
  $("epoch").textContent = `epoch ${state.epoch}`;
  for (const [id, key] of [["train-loss", "train_loss"], ["test-loss", "test_loss"]]) {
    $(id).textContent = fmt(h[key][n]);
    $(id).dataset.value = h[key][n];
  }
  $("acc-wrap").hidden = !h.test_acc;
  if (h.test_acc) $("test-acc").textContent = (100 * h.test_acc[n]).toFixed(1) + "%";
  drawSurface();
  drawLoss();
  drawGrads();
  if (state.edges) drawEdges(); else drawNeurons();
}

function yRange() {
  const ys = data.train.y.concat(data.test.y);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  return [lo, hi];
}

function drawSurface() {
  const cv = $("surface"), ctx = cv.getContext("2d"), s = state.surface, R = s.range;
  const W = cv.width, H = cv.height;
  ctx.clearRect(0, 0, W, H);
  const classification = data.task === "classification";
  $("surface-title").textContent = classification ? "Decision boundary" :
    (s.dim === 2 ? "Regression surface" : "Regression curve");
  $("surface-legend").textContent = s.dim === 2 ? "filled: train points · outlined: test points" :
    "blue: train points · orange: test points · line: the model";
  if (s.dim === 2) {
    const C = data.n_classes;
    let color;
    if (classification) {
      color = (i) => mix(CLASS_RGB[s.label[i] % 5], Math.max(0, (s.conf[i] - 1 / C) / (1 - 1 / C)) * 0.75);
    } else {
      const [lo, hi] = yRange(), mid = (lo + hi) / 2, half = (hi - lo) / 2;
      color = (i) => diverging((s.value[i] - mid) / half);
    }
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(heatImage(s.res, color), 0, 0, W, H);
    const px = (x) => ((x + R) / (2 * R)) * W, py = (y) => H - ((y + R) / (2 * R)) * H;
    for (const [set, outline] of [[data.train, false], [data.test, true]]) {
      set.x.forEach((p, i) => {
        const y = set.y[i];
        let c;
        if (classification) c = CLASS_RGB[y % 5];
        else { const [lo, hi] = yRange(); c = diverging((y - (lo + hi) / 2) / ((hi - lo) / 2)); }
        ctx.beginPath();
        ctx.arc(px(p[0]), py(p[1]), 3.2, 0, 2 * Math.PI);
        ctx.fillStyle = outline ? "rgba(255,255,255,0.9)" : `rgb(${c})`;
        ctx.strokeStyle = outline ? `rgb(${c})` : "#fff";
        ctx.lineWidth = outline ? 2 : 1;
        ctx.fill(); ctx.stroke();
      });
    }
  } else {
    let [lo, hi] = yRange();
    lo = Math.min(lo, ...s.value); hi = Math.max(hi, ...s.value);
    const pad = 0.08 * (hi - lo);
    const px = (x) => ((x + R) / (2 * R)) * W, py = (y) => H - ((y - lo + pad) / (hi - lo + 2 * pad)) * H;
    for (const [set, col] of [[data.train, "#1565c0"], [data.test, "#ef6c00"]]) {
      ctx.fillStyle = col;
      set.x.forEach((p, i) => { ctx.beginPath(); ctx.arc(px(p[0]), py(set.y[i]), 2.5, 0, 7); ctx.fill(); });
    }
    ctx.strokeStyle = "#222"; ctx.lineWidth = 2; ctx.beginPath();
    s.value.forEach((v, i) => {
      const x = -R + (2 * R * i) / (s.res - 1);
      i ? ctx.lineTo(px(x), py(v)) : ctx.moveTo(px(x), py(v));
    });
    ctx.stroke();
  }
}

function drawLoss() {
  const cv = $("loss"), ctx = cv.getContext("2d"), h = state.history;
  const W = cv.width, H = cv.height, pad = 4;
  ctx.clearRect(0, 0, W, H);
  const all = h.train_loss.concat(h.test_loss).filter((v) => v > 0 && isFinite(v));
  if (!all.length) return;
  const lo = Math.log10(Math.min(...all)), hi = Math.log10(Math.max(...all)) + 1e-9;
  const e0 = h.epoch[0], e1 = Math.max(h.epoch[h.epoch.length - 1], e0 + 1);
  const px = (e) => pad + ((e - e0) / (e1 - e0)) * (W - 2 * pad);
  const py = (v) => H - pad - ((Math.log10(v) - lo) / Math.max(hi - lo, 1e-6)) * (H - 2 * pad);
  for (const [key, col] of [["train_loss", "#1565c0"], ["test_loss", "#ef6c00"]]) {
    ctx.strokeStyle = col; ctx.lineWidth = 1.8; ctx.beginPath();
    h[key].forEach((v, i) => { const x = px(h.epoch[i]), y = py(Math.max(v, 1e-12)); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
  }
  ctx.fillStyle = "#556";
  ctx.fillText(fmt(10 ** hi), W - 60, 12);
  ctx.fillText(fmt(10 ** lo), W - 60, H - 6);
}

function drawGrads() {
  const box = $("grads"), g = state.grad_norms;
  const top = Math.max(...g, 1e-12);
  box.innerHTML = "";
  g.forEach((v, i) => {
    const row = document.createElement("div");
    row.className = "bar";
    const name = i === g.length - 1 ? "output" : `layer ${i + 1}`;
    row.innerHTML = `<span class="name">${name}</span><span class="fill" style="width:${Math.max(1, 200 * v / top)}px"></span><span>${fmt(v)}</span>`;
    box.appendChild(row);
  });
}

function drawNeurons() {
  const net = $("network");
  net.innerHTML = "";
  $("inside-title").textContent = "Inside the MLP: each hidden neuron's output";
  state.neurons.forEach((layer, l) => {
    const col = document.createElement("div");
    col.className = "layer";
    col.innerHTML = `<h3>layer ${l + 1}</h3>`;
    layer.values.forEach((vals, j) => {
      const cv = document.createElement("canvas");
      cv.className = "neuron"; cv.width = 44; cv.height = 44;
      const lo = layer.lo[j], hi = layer.hi[j], span = Math.max(Math.abs(lo), Math.abs(hi), 1e-9);
      const ctx = cv.getContext("2d");
      if (layer.dim === 2) {
        ctx.imageSmoothingEnabled = true;
        ctx.drawImage(heatImage(layer.res, (i) => diverging(vals[i] / span)), 0, 0, 44, 44);
      } else {
        ctx.strokeStyle = "#1565c0"; ctx.beginPath();
        vals.forEach((v, i) => { const x = (i / (vals.length - 1)) * 44, y = 22 - (v / span) * 20; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
        ctx.stroke();
      }
      cv.title = `neuron ${j + 1}: output in [${fmt(lo)}, ${fmt(hi)}]`;
      col.appendChild(cv);
    });
    if (layer.width > layer.values.length) {
      const more = document.createElement("span");
      more.className = "more";
      more.textContent = `+${layer.width - layer.values.length} more`;
      col.appendChild(more);
    }
    net.appendChild(col);
  });
}

function drawEdges() {
  const net = $("network");
  net.innerHTML = "";
  $("inside-title").textContent = "Inside the KAN: each edge's learned function φ (opacity = importance)";
  state.edges.forEach((layer, l) => {
    const col = document.createElement("div");
    col.className = "layer";
    col.innerHTML = `<h3>layer ${l + 1}: ${layer.in} → ${layer.out}</h3>`;
    const grid = document.createElement("div");
    grid.className = "edges";
    grid.style.gridTemplateColumns = `repeat(${layer.in}, 54px)`;
    for (let o = 0; o < layer.out; o++) {
      for (let i = 0; i < layer.in; i++) {
        const ys = layer.y[o][i], xs = layer.x[i];
        const cv = document.createElement("canvas");
        cv.className = "edge"; cv.width = 54; cv.height = 38;
        const imp = layer.importance[o][i];
        cv.style.opacity = (0.12 + 0.88 * imp).toFixed(3);
        cv.dataset.importance = imp;
        cv.title = `φ[${l + 1}] input ${i + 1} → node ${o + 1}, importance ${fmt(layer.score[o][i])}`;
        const ctx = cv.getContext("2d");
        const lo = Math.min(...ys), hi = Math.max(...ys), span = Math.max(hi - lo, 1e-9);
        ctx.strokeStyle = "#6a1b9a"; ctx.lineWidth = 1.6; ctx.beginPath();
        ys.forEach((v, k) => { const x = 3 + (k / (ys.length - 1)) * 48, y = 35 - ((v - lo) / span) * 32; k ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
        ctx.stroke();
        grid.appendChild(cv);
      }
    }
    col.appendChild(grid);
    net.appendChild(col);
  });
}

async function discover() {
  const box = $("formula");
  $("discover").disabled = true;
  box.textContent = "running the symbolic pipeline…";
  try {
    const r = await api("POST", `/api/sessions/${sid}/formula`);
    box.innerHTML = r.mathml;
    const code = document.createElement("code");
    const kept = r.unmatched ? ` · ${r.unmatched} edge(s) matched no library function and stay splines (phi_l_o_i)` : "";
    code.textContent = `R² on the test points = ${r.r2.toFixed(4)}${kept}\nLaTeX: ${r.latex}\nfull precision: ${r.formula}`;
    box.appendChild(code);
  } catch (err) { box.textContent = ""; showError(err.message); }
  $("discover").disabled = false;
}

// ---------------------------------------------------------------- start
async function main() {
  try {
    options = await api("GET", "/api/options");
  } catch (err) { showError("cannot reach the playground server: " + err.message); return; }
  fillSelect("dataset", options.datasets.classification.concat(options.datasets.regression.map((d) => d.name)));
  fillSelect("model", options.models);
  fillSelect("activation", options.activations);
  fillSelect("init", options.inits);
  fillSelect("optimizer", options.optimizers);
  fillSelect("reg", options.regularizers);
  fillSelect("clip", options.clips);
  writeForm(options.defaults);
  const fromURL = urlConfig();
  writeForm(fromURL);
  $("setup").addEventListener("change", (e) => {
    if (e.target.id === "model" && $("model").value !== "kan" && $("reg").value === "kan") {
      $("reg").value = "none";  // the KAN sparsity penalty has no meaning for an MLP
    }
    applyForm();
  });
  $("play").addEventListener("click", () => control(status === "playing" ? "pause" : "play"));
  $("step").addEventListener("click", () => control("step"));
  $("reset").addEventListener("click", () => control("reset"));
  $("discover").addEventListener("click", discover);
  for (const id of ["play", "step", "reset"]) $(id).disabled = false;
  window.addEventListener("hashchange", () => {  // a pasted link: apply its setup
    const cfg = urlConfig();
    writeForm(cfg);
    applyForm(cfg);
  });
  window.addEventListener("pagehide", () => { if (sid) navigator.sendBeacon(`/api/sessions/${sid}/close`); });
  try {
    await openSession(Object.keys(fromURL).length ? fromURL : readForm());
  } catch (err) {
    showError(err.message);
    renderStatus("error");
  }
}

main();
