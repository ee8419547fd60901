// tsnegrid viewer: OpenSeadragon shows the pyramid; this file adds hover, search, colour-by-field
// and the overlay that similar.js (more like this, selections) and hash.js (the url) draw on.
// Data comes from layout.js (window.TSNEGRID), so the page works from file://.
(function () {
  "use strict";

  const data = window.TSNEGRID;
  const $ = (id) => document.getElementById(id);
  const n = data.cells.length;

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
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
    gestureSettingsTouch: { clickToZoom: false, dblClickToZoom: true, pinchToZoom: true },
  });

  // State the overlay draws from; exposed (read-only use) for tests and the console.
  // layers: extra overlay painters, called with the view geometry after the cell tints.
  // listeners: called with "search", "colour" or "similar" when that state changes.
  // tipParts: functions of an image index giving an extra element for its hover tip (or null).
  // searchers: functions of the lower-case query giving a score per image (0: no match) or
  // null; a scored image matches, and matches are ranked by score (concepts.js: probability).
  const state = { viewer, cellToImage, match: null, matchCount: 0, colourField: null,
                  query: "", maxLevelLoaded: -1, hovered: -1, layers: [], listeners: [],
                  tipParts: [], searchers: [], rank: null, rankAt: -1 };
  window.tsnegrid = state;
  const changed = (kind) => { for (const fn of state.listeners) fn(kind); };
  state.changed = changed;

  viewer.addHandler("tile-loaded", (e) => {
    state.maxLevelLoaded = Math.max(state.maxLevelLoaded, e.tile.level);
  });
  viewer.addHandler("open", () => viewer.canvas.focus());

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

  function showTip(i, pos) {
    const tip = $("tip");
    if (i !== state.hovered) {
      state.hovered = i;
      tip.replaceChildren(el("div", baseName(data.paths[i]), "name"),
                          el("div", data.paths[i], "path"));
      const table = el("table");
      for (const f of data.fields) {
        const code = f.codes[i];
        if (code < 0) continue;
        const tr = el("tr");
        tr.append(el("th", f.name), el("td", f.values[code]));
        table.append(tr);
      }
      if (table.childElementCount) tip.append(table);
      for (const part of state.tipParts) {
        const extra = part(i);
        if (extra) tip.append(extra);
      }
      const img = el("img");
      img.alt = "";
      img.src = data.hrefs[i];
      tip.append(img);
    }
    const box = $("osd").getBoundingClientRect();
    tip.style.left = Math.min(pos.x + 16, box.width - 200) + "px";
    tip.style.top = Math.min(pos.y + 16, box.height - 120) + "px";
    tip.hidden = false;
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

  // A click selects (similar.js); Ctrl- or Cmd-click opens the original in a new tab.
  state.openOriginal = (i) => window.open(data.hrefs[i], "_blank", "noopener");

  // ---- search -----------------------------------------------------------------------------
  let haystack = null; // built on first search: one lower-case string per image
  function search(query) {
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
      if (!haystack) {
        haystack = data.paths.map((p, i) => [p, ...data.fields.map(
          (f) => (f.codes[i] < 0 ? "" : f.values[f.codes[i]]))].join("\n").toLowerCase());
      }
      const match = new Uint8Array(n);
      const score = new Float32Array(n);
      for (const fn of state.searchers) {
        const s = fn(q);
        if (s) for (let i = 0; i < n; i++) if (s[i] > score[i]) score[i] = s[i];
      }
      let count = 0;
      for (let i = 0; i < n; i++) {
        if (score[i] > 0 || haystack[i].includes(q)) { match[i] = 1; count++; }
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

  for (const f of data.fields) {
    if (f.colourable) $("colour-by").append(new Option(f.name, f.name));
  }
  $("colour-by").addEventListener("change", (e) => setColourField(e.target.value));

  function setColourField(name) {
    const f = data.fields.find((x) => x.name === name && x.colourable) || null;
    const was = state.colourField;
    state.colourField = f;
    $("colour-by").value = f ? f.name : "";
    const legend = $("legend");
    legend.replaceChildren();
    if (f) {
      f.colours = f.values.map((_, k) => palette(k, f.values.length));
      const counts = new Array(f.values.length).fill(0);
      for (const c of f.codes) if (c >= 0) counts[c]++;
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
    drawOverlay();
    if (f !== was) changed("colour");
  }
  state.setColourField = setColourField;

  // ---- overlay: dims non-matches, tints by colour field; only visible cells are drawn -----
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
    if (state.match || state.colourField) drawTints(ctx, g);
    for (const layer of state.layers) layer(ctx, g);
  }
  state.drawOverlay = drawOverlay;

  function drawTints(ctx, { o, s, r0, r1, c0, c1 }) {
    const paths = new Map(); // fill style -> Path2D, so each colour is one fill call
    const add = (style, r, c) => {
      if (!paths.has(style)) paths.set(style, new Path2D());
      paths.get(style).rect(o.x + c * s, o.y + r * s, s, s);
    };
    const f = state.colourField;
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const i = cellToImage[r * data.cols + c];
        if (state.match && (i < 0 || !state.match[i])) add("rgba(0,0,0,0.72)", r, c);
        else if (f && i >= 0 && f.codes[i] >= 0) add(f.colours[f.codes[i]], r, c);
      }
    }
    for (const [style, path] of paths) {
      ctx.globalAlpha = style.startsWith("rgba") ? 1 : 0.45;
      ctx.fillStyle = style;
      ctx.fill(path);
    }
    ctx.globalAlpha = 1;
  }
  viewer.addHandler("update-viewport", drawOverlay);
  window.addEventListener("resize", drawOverlay);

  // ---- panel ------------------------------------------------------------------------------
  $("summary").textContent = `${n.toLocaleString()} images on a ${data.rows}\u00d7${data.cols} grid`;
  $("zoom-in").addEventListener("click", () => viewer.viewport.zoomBy(1.6));
  $("zoom-out").addEventListener("click", () => viewer.viewport.zoomBy(1 / 1.6));
  $("home").addEventListener("click", () => viewer.viewport.goHome());
}());
