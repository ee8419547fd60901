// tsnegrid viewer: rectangle or lasso selections on the grid (a tool button, or Shift-drag for
// a rectangle), downloaded as CSV (path,row,col and the metadata fields, in grid order). Runs
// after viewer.js and similar.js, whose state (window.tsnegrid) it extends.
(function () {
  "use strict";

  const data = window.TSNEGRID;
  const state = window.tsnegrid;
  const viewer = state.viewer;
  const $ = (id) => document.getElementById(id);
  const n = data.n;

  // ---- selections ------------------------------------------------------------------------------
  const sel = { mode: "", picked: new Uint8Array(n), count: 0, drawing: null };
  state.selection = sel;

  function setMode(mode) {
    sel.mode = sel.mode === mode ? "" : mode;
    $("tool-rect").setAttribute("aria-pressed", String(sel.mode === "rect"));
    $("tool-lasso").setAttribute("aria-pressed", String(sel.mode === "lasso"));
    viewer.canvas.style.cursor = sel.mode ? "crosshair" : "";
  }
  $("tool-rect").addEventListener("click", () => setMode("rect"));
  $("tool-lasso").addEventListener("click", () => setMode("lasso"));

  function select(list) {
    sel.picked.fill(0);
    for (const j of list) sel.picked[j] = 1;
    sel.count = list.length;
    sel.bitmap = list.length ? state.cellBitmap((px) => {
      for (const j of list) {
        const o = data.cells[j] * 4;
        px[o] = 255; px[o + 1] = 214; px[o + 2] = 10; px[o + 3] = 107; // rgba(255,214,10,0.42)
      }
    }) : null;
    $("selection-count").textContent = sel.count
      ? `${sel.count.toLocaleString()} selected` : "";
    $("selection-csv").disabled = $("selection-clear").disabled = !sel.count;
    state.drawOverlay();
  }
  state.select = select;
  $("selection-clear").addEventListener("click", () => select([]));

  // Pointer positions in grid units (cells), so shapes stay put while zooming.
  const toGrid = (pos) => {
    const p = viewer.viewport.viewerElementToImageCoordinates(pos);
    return { x: p.x / data.tile, y: p.y / data.tile };
  };

  viewer.addHandler("canvas-press", (e) => {
    const ev = e.originalEvent || {};
    const mode = sel.mode || (ev.shiftKey ? "rect" : "");
    sel.drawing = mode ? { mode, pts: [toGrid(e.position)], last: e.position } : null;
  });
  viewer.addHandler("canvas-drag", (e) => {
    const d = sel.drawing;
    if (!d) return;
    e.preventDefaultAction = true; // draw the shape instead of panning
    if (d.mode === "rect") {
      d.pts[1] = toGrid(e.position);
    } else if (Math.hypot(e.position.x - d.last.x, e.position.y - d.last.y) >= 3) {
      d.pts.push(toGrid(e.position));
      d.last = e.position;
    }
    state.drawOverlay();
  });
  viewer.addHandler("canvas-drag-end", (e) => {
    if (sel.drawing) e.preventDefaultAction = true; // no flick after a shape
  });
  viewer.addHandler("canvas-release", () => {
    const d = sel.drawing;
    sel.drawing = null;
    if (d && d.pts.length >= (d.mode === "rect" ? 2 : 3)) select(inside(d));
    else state.drawOverlay();
  });

  // Images whose cell centre lies inside the drawn rectangle or lasso.
  function inside({ mode, pts }) {
    const poly = mode === "rect"
      ? [pts[0], { x: pts[1].x, y: pts[0].y }, pts[1], { x: pts[0].x, y: pts[1].y }] : pts;
    const xs = poly.map((p) => p.x);
    const ys = poly.map((p) => p.y);
    const c0 = Math.max(0, Math.ceil(Math.min(...xs) - 0.5));
    const c1 = Math.min(data.cols - 1, Math.floor(Math.max(...xs) - 0.5));
    const r0 = Math.max(0, Math.ceil(Math.min(...ys) - 0.5));
    const r1 = Math.min(data.rows - 1, Math.floor(Math.max(...ys) - 0.5));
    const out = [];
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const i = state.cellToImage[r * data.cols + c];
        if (i >= 0 && (mode === "rect" || inPolygon(c + 0.5, r + 0.5, poly))) out.push(i);
      }
    }
    return out.sort((a, b) => a - b);
  }

  function inPolygon(x, y, poly) { // even-odd ray casting
    let odd = false;
    for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
      const pa = poly[a], pb = poly[b];
      if ((pa.y > y) !== (pb.y > y) && x < pb.x + (y - pb.y) * (pa.x - pb.x) / (pa.y - pb.y)) {
        odd = !odd;
      }
    }
    return odd;
  }

  state.layers.push((ctx, g) => {
    const { o, s } = g;
    if (sel.count && sel.bitmap) state.drawCells(ctx, sel.bitmap, g);
    const d = sel.drawing;
    if (d && d.pts.length > 1) {
      const at = (p) => [o.x + p.x * s, o.y + p.y * s];
      ctx.strokeStyle = "#ffd60a";
      ctx.lineWidth = 2;
      ctx.beginPath();
      if (d.mode === "rect") {
        const [x0, y0] = at(d.pts[0]);
        const [x1, y1] = at(d.pts[1]);
        ctx.rect(x0, y0, x1 - x0, y1 - y0);
      } else {
        d.pts.forEach((p, k) => (k ? ctx.lineTo(...at(p)) : ctx.moveTo(...at(p))));
        ctx.closePath();
      }
      ctx.stroke();
    }
  });

  // ---- CSV ---------------------------------------------------------------------------------------
  const csvField = (v) => {
    const t = String(v);
    return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
  };

  // path,row,col and every metadata field (renamed when it clashes with those three), in grid
  // order (row by row). The blocks are read one band of block rows at a time, each band's
  // lines kept as a Blob part, so a selection of every image of a large grid never holds all
  // its blocks or all its lines in the page's memory.
  async function selectionBlob() {
    const names = data.fields.map((f) => (["path", "row", "col"].includes(f.name)
      ? `metadata_${f.name}` : f.name));
    const parts = [["path", "row", "col", ...names].map(csvField).join(",") + "\r\n"];
    const S = data.chunk.side;
    const bands = Math.ceil(data.rows / S);
    for (let b = 0; b < bands; b++) {
      const r0 = b * S, r1 = Math.min(data.rows, r0 + S);
      const keys = new Set();
      for (let cell = r0 * data.cols; cell < r1 * data.cols; cell++) {
        const i = state.cellToImage[cell];
        if (i >= 0 && sel.picked[i]) keys.add(state.keyOf(i));
      }
      if (!keys.size) continue;
      $("selection-count").textContent =
        `${sel.count.toLocaleString()} selected: reading rows ${r0 + 1}-${r1} of ${data.rows}`;
      await Promise.all(Array.from(keys, (k) => state.chunk(k)));
      const lines = [];
      for (let cell = r0 * data.cols; cell < r1 * data.cols; cell++) {
        const i = state.cellToImage[cell];
        if (i < 0 || !sel.picked[i]) continue;
        const info = state.infoNow(i) || await state.info(i);
        const [r, c] = state.rowCol(i);
        lines.push([info.path, r, c, ...info.fields].map(csvField).join(",") + "\r\n");
      }
      parts.push(new Blob(lines));
    }
    $("selection-count").textContent = sel.count ? `${sel.count.toLocaleString()} selected` : "";
    return new Blob(parts, { type: "text/csv" });
  }
  state.selectionBlob = selectionBlob;
  state.selectionCsv = async () => (await selectionBlob()).text();

  $("selection-csv").addEventListener("click", async () => {
    const url = URL.createObjectURL(await selectionBlob());
    const a = document.createElement("a");
    a.href = url;
    a.download = "selection.csv";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
  $("similar-select").addEventListener("click", () => {
    const sim = state.similar;
    if (sim.image >= 0) select([sim.image, ...sim.list]);
  });

  document.addEventListener("keydown", (e) => {
    const tag = e.target && e.target.tagName;
    if (e.key === "Escape" && tag !== "INPUT" && tag !== "SELECT") {
      sel.drawing = null;
      select([]);
    }
  });
}());
