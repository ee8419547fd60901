// tsnegrid viewer: OpenSeadragon shows the pyramid; this file adds hover, search, colour-by-field
// and the overlay that similar.js (more like this, selections) and hash.js (the url) draw on.
// layout.js (window.TSNEGRID) is a small index: the grid, the regions, the field and concept
// dictionaries and each image's cell. What the page knows of each image sits in script files
// per block of the grid (data/c*.js), loaded when the view needs them and dropped when not
// used for a while, so the page opens at a million images as at a thousand, from file:// too.
(function () {
  "use strict";

  const data = window.TSNEGRID;
  const $ = (id) => document.getElementById(id);
  const n = data.n;

  // Packed little-endian integers (layout.js and the data files) to an Int32Array.
  function unpack(p) {
    const raw = atob(p.data);
    const w = p.bytes;
    const out = new Int32Array(raw.length / w);
    for (let j = 0, b = 0; j < out.length; j++, b += w) {
      let v = 0;
      for (let t = w - 1; t >= 0; t--) v = v * 256 + raw.charCodeAt(b + t);
      out[j] = v;
    }
    return out;
  }
  // Sorted image indices from gaps in LEB128 varints (the search index's postings).
  function postings(text) {
    const raw = atob(text);
    const out = [];
    let v = 0, shift = 0, last = 0;
    for (let b = 0; b < raw.length; b++) {
      const x = raw.charCodeAt(b);
      v += (x & 0x7f) * 2 ** shift;
      if (x & 0x80) { shift += 7; continue; }
      last += v;
      out.push(last);
      v = 0; shift = 0;
    }
    return out;
  }
  data.cells = unpack(data.cells); // image -> row-major cell

  // Dense row-major cell -> image index (-1 for holes): hover is one array read, not a scan.
  const cellToImage = new Int32Array(data.rows * data.cols).fill(-1);
  for (let i = 0; i < n; i++) cellToImage[data.cells[i]] = i;

  const viewer = OpenSeadragon({
    element: $("osd"),
    tileSources: data.source,
    drawer: "canvas",
    showNavigationControl: false,
    showNavigator: data.rows * data.cols > 4096,
    navigatorPosition: "BOTTOM_RIGHT",
    maxZoomPixelRatio: Math.max(2, 512 / data.tile),
    visibilityRatio: 0.5,
    blendTime: 0.3, // a level's tiles fade in over the one above: the overview crossfades
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
    gestureSettingsTouch: { clickToZoom: false, dblClickToZoom: true, pinchToZoom: true },
  });

  // State the overlay draws from; exposed (read-only use) for tests and the console.
  // layers: extra overlay painters, called with the view geometry after the cell tints.
  // listeners: called with "search", "colour" or "similar" when that state changes.
  // tipParts: functions of an image's info (state.info) giving an extra element for its hover
  // tip (or null). searchers: functions of the lower-case query and the search index giving a
  // score per image (0: no match) or null; a scored image matches, and matches are ranked by
  // score (concepts.js: probability).
  const state = { viewer, cellToImage, match: null, matchCount: 0, colourField: null,
                  query: "", maxLevelLoaded: -1, hovered: -1, layers: [], listeners: [],
                  tipParts: [], searchers: [], rank: null, rankAt: -1, unpack, postings,
                  chunksLoaded: 0 };
  window.tsnegrid = state;
  const changed = (kind) => { for (const fn of state.listeners) fn(kind); };
  state.changed = changed;

  viewer.addHandler("tile-loaded", (e) => {
    state.maxLevelLoaded = Math.max(state.maxLevelLoaded, e.tile.level);
  });
  viewer.addHandler("open", () => viewer.canvas.focus());

  // ---- data files ---------------------------------------------------------------------------
  // Each data file calls a global function with its key and contents; a script tag loads it
  // (from file:// as from a server). Loaded blocks are kept, the least recently used dropped
  // past KEEP.
  const KEEP = 48;
  const waiting = new Map(); // "kind:key" -> resolve function
  const loaded = new Map(); // "kind:key" -> contents (insertion order: least recent first)
  const loading = new Map(); // "kind:key" -> promise
  const arrive = (kind) => (key, obj) => {
    const resolve = waiting.get(kind + ":" + key);
    if (resolve) resolve(obj);
  };
  window.tsnegridChunk = arrive("c");
  window.tsnegridNear = arrive("n");
  window.tsnegridField = arrive("f");
  window.tsnegridSearch = (obj) => arrive("s")("", obj);

  function load(kind, key, src, prepare) {
    const id = kind + ":" + key;
    if (loaded.has(id)) {
      const v = loaded.get(id);
      loaded.delete(id);
      loaded.set(id, v);
      return Promise.resolve(v);
    }
    if (loading.has(id)) return loading.get(id);
    const p = new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      waiting.set(id, (obj) => {
        waiting.delete(id);
        const v = prepare ? prepare(obj) : obj;
        loaded.set(id, v);
        for (const old of loaded.keys()) {
          if (loaded.size <= KEEP) break;
          if (!old.startsWith("s:") && !old.startsWith("f:")) loaded.delete(old);
        }
        resolve(v);
      });
      tag.src = src;
      tag.onload = () => {
        tag.remove();
        loading.delete(id);
        if (waiting.has(id)) {
          waiting.delete(id);
          reject(new Error(`${src} holds no data.`));
        }
      };
      tag.onerror = () => {
        tag.remove();
        loading.delete(id);
        waiting.delete(id);
        reject(new Error(`Cannot load ${src}.`));
      };
      document.head.append(tag);
    });
    loading.set(id, p);
    return p;
  }
  state.load = load;

  const S = data.chunk.side;
  const keyOfCell = (cell) => {
    const r = Math.floor(cell / data.cols), c = cell % data.cols;
    return Math.floor(r / S) + "_" + Math.floor(c / S);
  };
  state.keyOf = (i) => keyOfCell(data.cells[i]);
  state.chunkKeys = () => { // every block that holds an image
    const keys = new Set();
    for (let i = 0; i < n; i++) keys.add(state.keyOf(i));
    return Array.from(keys);
  };

  function chunk(key) {
    return load("c", key, `${data.chunk.dir}/c${key}.js`, (c) => {
      c.at = new Map(c.images.map((img, j) => [img, j]));
      state.chunksLoaded++;
      return c;
    });
  }
  state.chunk = chunk;

  // What the page knows of image i, from its block: path, link, metadata values (by field, ""
  // when none), concepts ([{name, value}], value in thousandths), fine and coarse region.
  function infoFrom(c, i) {
    const j = c.at.get(i);
    if (j === undefined) return null;
    const fields = data.fields.map((f, t) => {
      const v = c.fields[t][j];
      return f.values ? (v >= 0 ? f.values[v] : "") : (v === null ? "" : v);
    });
    let concepts = [];
    if (c.concepts && data.concepts) {
      const k = data.concepts.k;
      for (let t = j * k; t < (j + 1) * k; t++) {
        const code = c.concepts.codes[t];
        if (code >= 0) {
          concepts.push({ code, name: data.concepts.classes[code].name,
                          value: c.concepts.values[t] });
        }
      }
    }
    return { image: i, path: c.paths[j], href: c.hrefs[j], fields, concepts,
             region: c.region ? c.region[j] : -1, coarse: c.coarse ? c.coarse[j] : -1 };
  }
  state.info = (i) => chunk(state.keyOf(i)).then((c) => infoFrom(c, i));
  state.infoNow = (i) => {
    const c = loaded.get("c:" + state.keyOf(i));
    return c ? infoFrom(c, i) : null;
  };

  // ---- pointer -> image -------------------------------------------------------------------
  function imageAt(pos) {
    if (!viewer.world.getItemCount()) return -1;
    const p = viewer.viewport.viewerElementToImageCoordinates(pos);
    const col = Math.floor(p.x / data.tile);
    const row = Math.floor(p.y / data.tile);
    if (row < 0 || col < 0 || row >= data.rows || col >= data.cols) return -1;
    return cellToImage[row * data.cols + col];
  }
  state.imageAt = imageAt;

  const baseName = (path) => path.slice(path.lastIndexOf("/") + 1);
  state.baseName = baseName;
  state.rowCol = (i) => [Math.floor(data.cells[i] / data.cols), data.cells[i] % data.cols];

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  state.el = el;

  function fillTip(info) {
    const tip = $("tip");
    tip.replaceChildren(el("div", baseName(info.path), "name"), el("div", info.path, "path"));
    const table = el("table");
    data.fields.forEach((f, t) => {
      if (!info.fields[t]) return;
      const tr = el("tr");
      tr.append(el("th", f.name), el("td", info.fields[t]));
      table.append(tr);
    });
    if (table.childElementCount) tip.append(table);
    for (const part of state.tipParts) {
      const extra = part(info);
      if (extra) tip.append(extra);
    }
    const img = el("img");
    img.alt = "";
    img.src = info.href;
    tip.append(img);
  }

  let tipAt = { x: 0, y: 0 };
  function placeTip() {
    const tip = $("tip");
    const box = $("osd").getBoundingClientRect();
    tip.style.left = Math.min(tipAt.x + 16, box.width - 200) + "px";
    tip.style.top = Math.min(tipAt.y + 16, box.height - 120) + "px";
  }

  function showTip(i, pos) {
    tipAt = pos;
    if (i !== state.hovered) {
      state.hovered = i;
      const now = state.infoNow(i);
      if (now) {
        fillTip(now);
        $("tip").hidden = false;
      } else {
        $("tip").hidden = true; // until its block arrives
        state.info(i).then((info) => {
          if (state.hovered !== i || !info) return;
          fillTip(info);
          placeTip();
          $("tip").hidden = false;
        }, () => {});
      }
    } else if (state.infoNow(i)) {
      $("tip").hidden = false;
    }
    placeTip();
  }

  function hideTip() {
    state.hovered = -1;
    $("tip").hidden = true;
  }

  new OpenSeadragon.MouseTracker({
    element: viewer.canvas,
    moveHandler: (e) => {
      const i = imageAt(e.position);
      if (i >= 0) showTip(i, e.position); else hideTip();
    },
    leaveHandler: hideTip,
  });

  // A click selects (similar.js); Ctrl- or Cmd-click opens the original in a new tab. The
  // window opens at once (a popup must open in the click) and gets its address when known.
  state.openOriginal = (i) => {
    const now = state.infoNow(i);
    if (now) { window.open(now.href, "_blank", "noopener"); return; }
    state.info(i).then((info) => window.open(info.href, "_blank", "noopener"));
  };

  // ---- search -----------------------------------------------------------------------------
  // The index (data/search.js, loaded on the first query) holds postings per word of the paths
  // and metadata and per concept class; a query matches the images of every term it is part
  // of. Where the index left single-image words out (data.search.partial) and finds nothing,
  // the blocks are searched one by one.
  const searchIndex = () => load("s", "", data.search.script);
  state.searchIndex = searchIndex;
  let searchSeq = 0;

  async function scanBlocks(q, match, seq) {
    let count = 0;
    const keys = state.chunkKeys();
    for (let t = 0; t < keys.length; t++) {
      if (seq !== searchSeq) return -1;
      $("matches").textContent = `searching block ${t + 1} of ${keys.length}\u2026`;
      const c = await chunk(keys[t]);
      c.images.forEach((img, j) => {
        const info = infoFrom(c, img);
        const text = [info.path, ...info.fields].join("\n").toLowerCase();
        if (text.includes(q) && !match[img]) { match[img] = 1; count++; }
      });
    }
    return count;
  }

  async function search(query) {
    const seq = ++searchSeq;
    const q = query.trim().toLowerCase();
    if ($("search").value !== query) $("search").value = query;
    const was = state.query;
    state.query = query.trim();
    if (!q) {
      state.match = null;
      state.matchCount = 0;
      state.rank = null;
      $("matches").textContent = "";
    } else {
      const index = await searchIndex();
      if (seq !== searchSeq) return;
      const match = new Uint8Array(n);
      const score = new Float32Array(n);
      let count = 0;
      index.terms.forEach((term, t) => {
        if (!term.includes(q)) return;
        for (const i of postings(index.postings[t])) if (!match[i]) { match[i] = 1; count++; }
      });
      for (const fn of state.searchers) {
        const s = fn(q, index);
        if (!s) continue;
        for (let i = 0; i < n; i++) {
          if (s[i] > score[i]) score[i] = s[i];
          if (s[i] > 0 && !match[i]) { match[i] = 1; count++; }
        }
      }
      if (!count && index.partial) {
        count = await scanBlocks(q, match, seq);
        if (count < 0) return;
      }
      state.match = match;
      state.matchCount = count;
      // Best-scored first (then in grid order): Enter steps through them.
      const rank = [];
      for (let i = 0; i < n; i++) if (match[i]) rank.push(i);
      rank.sort((a, b) => score[b] - score[a] || data.cells[a] - data.cells[b]);
      state.rank = rank;
      state.rankAt = -1;
      state.score = score;
      $("matches").textContent = `${count.toLocaleString()} of ${n.toLocaleString()} match`;
    }
    paintCells();
    viewer.forceRedraw();
    drawOverlay();
    if (state.query !== was) changed("search");
  }
  state.search = search;

  let searchTimer = 0;
  $("search").addEventListener("input", (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => search(e.target.value), n > 20000 ? 150 : 0);
  });
  $("search").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && state.match) zoomToFirstMatch();
  });

  // Enter: the best match first, then the next one on each press.
  function zoomToFirstMatch() {
    if (!state.rank || !state.rank.length) return;
    state.rankAt = (state.rankAt + 1) % state.rank.length;
    const i = state.rank[state.rankAt];
    const row = Math.floor(data.cells[i] / data.cols);
    const col = data.cells[i] % data.cols;
    const rect = new OpenSeadragon.Rect((col - 2) * data.tile, (row - 2) * data.tile,
                                        5 * data.tile, 5 * data.tile);
    viewer.viewport.fitBounds(viewer.viewport.imageToViewportRectangle(rect));
  }

  // ---- colour by field ----------------------------------------------------------------------
  const palette = (k, total) => (total <= 10
    ? ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"][k]
    : `hsl(${(k * 137.508) % 360}, 70%, 55%)`);

  data.fields.forEach((f, t) => { f.index = t; });
  for (const f of data.fields) {
    if (f.colourable) $("colour-by").append(new Option(f.name, f.name));
  }
  $("colour-by").addEventListener("change", (e) => setColourField(e.target.value));

  // A colourable field's code per image (255: none), from data/f*.js.
  const fieldCodes = (f) => load("f", String(f.index), f.script, (p) => {
    const v = unpack(p);
    const codes = new Uint8Array(v.length);
    codes.set(v);
    return codes;
  });

  async function setColourField(name) {
    const f = data.fields.find((x) => x.name === name && x.colourable) || null;
    const was = state.colourField;
    $("colour-by").value = f ? f.name : "";
    if (f) f.codes = await fieldCodes(f);
    state.colourField = f;
    const legend = $("legend");
    legend.replaceChildren();
    if (f) {
      f.colours = f.values.map((_, k) => palette(k, f.values.length));
      const counts = new Array(f.values.length).fill(0);
      for (const c of f.codes) if (c !== 255) counts[c]++;
      const order = counts.map((_, k) => k).sort((a, b) => counts[b] - counts[a]);
      for (const k of order) {
        const li = el("li");
        const sw = el("span", undefined, "swatch");
        sw.style.background = f.colours[k];
        li.append(sw, el("span", f.values[k]), el("span", counts[k].toLocaleString(), "count"));
        li.addEventListener("click", () => {
          $("search").value = f.values[k];
          search(f.values[k]);
        });
        legend.append(li);
      }
    }
    paintCells();
    drawOverlay();
    if (f !== was) changed("colour");
  }
  state.setColourField = setColourField;

  // ---- per-cell paint: one pixel per cell, drawn scaled over the visible cells --------------
  // Search dimming and field colours are painted once per change into a cols x rows bitmap
  // (4 MB at a million cells); a redraw is one scaled drawImage, whatever the zoom.
  function cellBitmap(fill) {
    const canvas = document.createElement("canvas");
    canvas.width = data.cols;
    canvas.height = data.rows;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(data.cols, data.rows);
    fill(img.data);
    ctx.putImageData(img, 0, 0);
    return canvas;
  }
  state.cellBitmap = cellBitmap;
  const rgb = (style) => { // a CSS colour to [r, g, b]
    const c = document.createElement("canvas").getContext("2d");
    c.fillStyle = style;
    const hex = c.fillStyle;
    if (hex.startsWith("#")) return [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
    return hex.match(/\d+/g).slice(0, 3).map(Number);
  };
  let tints = null;
  function paintCells() {
    const f = state.colourField;
    if (!state.match && !f) { tints = null; return; }
    const colours = f ? f.colours.map(rgb) : [];
    tints = cellBitmap((px) => {
      for (let cell = 0; cell < data.rows * data.cols; cell++) {
        const i = cellToImage[cell];
        const o = cell * 4;
        if (state.match && (i < 0 || !state.match[i])) {
          px[o + 3] = 184; // rgba(0,0,0,0.72)
        } else if (f && i >= 0 && f.codes[i] !== 255) {
          const [r, g, b] = colours[f.codes[i]];
          px[o] = r; px[o + 1] = g; px[o + 2] = b; px[o + 3] = 115; // 0.45
        }
      }
    });
  }
  state.paintCells = paintCells;

  // Draw a cols x rows bitmap over the visible cells.
  function drawCells(ctx, bitmap, { o, s, r0, r1, c0, c1 }) {
    if (r1 < r0 || c1 < c0) return;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(bitmap, c0, r0, c1 - c0 + 1, r1 - r0 + 1,
                  o.x + c0 * s, o.y + r0 * s, (c1 - c0 + 1) * s, (r1 - r0 + 1) * s);
  }
  state.drawCells = drawCells;

  // ---- overlay: dims non-matches, tints by colour field ------------------------------------
  const overlay = $("overlay");
  // The view in overlay pixels: the grid's origin o, the cell side s, the visible rows and cols.
  function geometry(box) {
    const vp = viewer.viewport;
    const o = vp.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
    const s = vp.imageToViewerElementCoordinates(new OpenSeadragon.Point(data.tile, 0)).x - o.x;
    return { o, s, box,
             c0: Math.max(0, Math.floor(-o.x / s)),
             c1: Math.min(data.cols - 1, Math.floor((box.width - o.x) / s)),
             r0: Math.max(0, Math.floor(-o.y / s)),
             r1: Math.min(data.rows - 1, Math.floor((box.height - o.y) / s)) };
  }
  function drawOverlay() {
    const box = $("osd").getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    if (overlay.width !== Math.round(box.width * dpr)) overlay.width = Math.round(box.width * dpr);
    if (overlay.height !== Math.round(box.height * dpr)) {
      overlay.height = Math.round(box.height * dpr);
    }
    overlay.style.width = box.width + "px";
    overlay.style.height = box.height + "px";
    const ctx = overlay.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, box.width, box.height);
    if (!viewer.world.getItemCount()) return;
    const g = geometry(box);
    if (tints) drawCells(ctx, tints, g);
    for (const layer of state.layers) layer(ctx, g);
  }
  state.drawOverlay = drawOverlay;
  viewer.addHandler("update-viewport", drawOverlay);
  window.addEventListener("resize", drawOverlay);

  // ---- panel ------------------------------------------------------------------------------
  $("summary").textContent = `${n.toLocaleString()} images on a ${data.rows}\u00d7${data.cols} grid`;
  $("zoom-in").addEventListener("click", () => viewer.viewport.zoomBy(1.6));
  $("zoom-out").addEventListener("click", () => viewer.viewport.zoomBy(1 / 1.6));
  $("home").addEventListener("click", () => viewer.viewport.goHome());
}());
