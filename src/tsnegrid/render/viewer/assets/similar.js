// tsnegrid viewer: "more like this": a click lights up an image's nearest neighbours (from its
// block's data/n*.js, loaded on first use) wherever they sit. Runs after viewer.js, whose state
// (window.tsnegrid) it extends.
(function () {
  "use strict";

  const data = window.TSNEGRID;
  const state = window.tsnegrid;
  const viewer = state.viewer;
  const $ = (id) => document.getElementById(id);
  const n = data.n;
  const NEAR = 3; // "near": at most this many cells away in rows and in columns
  const MARK = 9; // smallest marker side in screen px, so look-alikes show at any zoom

  // The cells within NEAR of image i (in rows and in columns), clipped to the grid: the dashed
  // square and the "within NEAR cells" count both come from it.
  const nearBox = (i) => {
    const [r, c] = state.rowCol(i);
    return { r0: Math.max(0, r - NEAR), c0: Math.max(0, c - NEAR),
             r1: Math.min(data.rows - 1, r + NEAR), c1: Math.min(data.cols - 1, c + NEAR) };
  };
  const inBox = (b, j) => {
    const [r, c] = state.rowCol(j);
    return r >= b.r0 && r <= b.r1 && c >= b.c0 && c <= b.c1;
  };

  // ---- more like this -----------------------------------------------------------------------
  // box: nearBox(image); square: the dashed square as last drawn, {x0, y0, x1, y1} in
  // viewer-element pixels (null when none is).
  const sim = { image: -1, list: [], near: 0, box: null, square: null, pending: -1 };
  state.similar = sim;

  // Each block's look-alikes sit in data/n*.js: k indices per image, in the block's order.
  function neighborsOf(i) {
    if (!data.neighbors) {
      return Promise.reject(new Error("No neighbours are stored with this grid."));
    }
    const key = state.keyOf(i);
    const k = data.neighbors.k;
    return Promise.all([state.chunk(key), state.load("n", key, `${data.chunk.dir}/n${key}.js`,
                                                     state.unpack)])
      .then(([c, idx]) => {
        const j = c.at.get(i);
        return Array.from(idx.subarray(j * k, (j + 1) * k));
      });
  }
  state.neighborsOf = neighborsOf;

  function showSimilar(i) {
    if (!(i >= 0 && i < n)) {
      clearSimilar();
      return Promise.resolve();
    }
    sim.pending = i;
    $("similar").hidden = false;
    $("similar-name").textContent = "";
    const open = $("similar-open");
    open.removeAttribute("href");
    state.info(i).then((info) => {
      if (sim.pending !== i) return;
      $("similar-name").textContent = state.baseName(info.path);
      open.href = info.href;
    }, () => {});
    return neighborsOf(i).then((list) => {
      if (sim.pending !== i) return; // another image was picked meanwhile
      const k = list.length;
      sim.image = i;
      sim.list = list;
      sim.box = nearBox(i);
      sim.near = sim.list.filter((j) => inBox(sim.box, j)).length;
      const space = data.neighbors.from === "coords" ? "in the 2-D points" : "in the embedding";
      $("similar-count").textContent = `${k} nearest ${space}: ${sim.near} within ${NEAR} ` +
        `cells, ${k - sim.near} farther away`;
      state.drawOverlay();
      state.changed("similar");
    }, (err) => {
      $("similar-count").textContent = err.message;
    });
  }

  function clearSimilar() {
    sim.pending = -1;
    $("similar").hidden = true;
    if (sim.image < 0) return;
    sim.image = -1;
    sim.list = [];
    sim.near = 0;
    sim.box = null;
    state.drawOverlay();
    state.changed("similar");
  }
  state.showSimilar = showSimilar;
  state.clearSimilar = clearSimilar;

  function fitCells(list) {
    let r0 = Infinity, r1 = -1, c0 = Infinity, c1 = -1;
    for (const j of list) {
      const [r, c] = state.rowCol(j);
      r0 = Math.min(r0, r); r1 = Math.max(r1, r); c0 = Math.min(c0, c); c1 = Math.max(c1, c);
    }
    const t = data.tile;
    const rect = new OpenSeadragon.Rect((c0 - 1) * t, (r0 - 1) * t, (c1 - c0 + 3) * t,
                                        (r1 - r0 + 3) * t);
    viewer.viewport.fitBounds(viewer.viewport.imageToViewportRectangle(rect));
  }

  $("similar-zoom").addEventListener("click", () => fitCells([sim.image, ...sim.list]));
  $("similar-clear").addEventListener("click", clearSimilar);

  // Dim the rest, punch the look-alikes out, mark them: cyan when near, orange when far.
  state.layers.push((ctx, { o, s, box }) => {
    sim.square = null;
    if (sim.image < 0) return;
    const shown = [sim.image, ...sim.list];
    ctx.fillStyle = "rgba(0,0,0,0.55)";
    ctx.fillRect(0, 0, box.width, box.height);
    for (const j of shown) {
      const [r, c] = state.rowCol(j);
      ctx.clearRect(o.x + c * s, o.y + r * s, s, s);
    }
    const b = sim.box;
    const sq = { x0: o.x + b.c0 * s, y0: o.y + b.r0 * s,
                 x1: o.x + (b.c1 + 1) * s, y1: o.y + (b.r1 + 1) * s };
    sim.square = sq;
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = "rgba(255,255,255,0.8)";
    ctx.lineWidth = 1; // half a pixel in from the edges: the line stays on the grid
    ctx.strokeRect(sq.x0 + 0.5, sq.y0 + 0.5, sq.x1 - sq.x0 - 1, sq.y1 - sq.y0 - 1);
    ctx.setLineDash([]);
    const m = Math.max(s, MARK);
    for (const j of shown) {
      const [r, c] = state.rowCol(j);
      const self = j === sim.image;
      ctx.strokeStyle = self ? "#ffffff" : inBox(b, j) ? "#35d0ff" : "#ff9f1a";
      ctx.lineWidth = self ? 3 : 2;
      ctx.strokeRect(o.x + (c + 0.5) * s - m / 2, o.y + (r + 0.5) * s - m / 2, m, m);
    }
  });

  // ---- click and keys ------------------------------------------------------------------------
  viewer.addHandler("canvas-click", (e) => {
    if (!e.quick) return;
    if (state.labelAt && state.labelAt(e.position) >= 0) return; // a region's name: labels.js
    const i = state.imageAt(e.position);
    const ev = e.originalEvent || {};
    if (ev.ctrlKey || ev.metaKey) {
      if (i >= 0) state.openOriginal(i);
    } else if (i >= 0) {
      showSimilar(i);
    } else {
      clearSimilar();
    }
  });

  document.addEventListener("keydown", (e) => {
    const tag = e.target && e.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    if (e.key === "n" && state.hovered >= 0) {
      showSimilar(state.hovered);
    } else if (e.key === "Escape") {
      clearSimilar();
    }
  });

}());
