// tsnegrid viewer: region names over the grid like place names on a map (data.regions: the
// fine regions, largest first, then the coarse ones that hold them, each with its level). A
// name's size grows with its region and the zoom; it shows once it is at least MIN_PX tall and
// fits its region's width. Zoomed out (up to FINE_ZOOM times the home view), the coarse
// regions are named; zoomed in further, the fine ones are instead. Names never overlap (largest
// placed first), a name is not repeated close by, a region without a name (not sure enough)
// shows none, and clicking a name zooms to its region.
(function () {
  "use strict";

  const data = window.TSNEGRID;
  const state = window.tsnegrid;
  const viewer = state.viewer;
  const regions = data.regions || [];
  const fineAt = [], coarseAt = [];
  regions.forEach((r, k) => (r.level === "coarse" ? coarseAt : fineAt).push(k));
  const coarseIndex = (c) => coarseAt[c]; // a coarse region's number to its place in regions
  const MIN_PX = 11;
  const MAX_PX = 32;
  const SCALE = 0.3; // font px per (cells on the region's side x cell px)
  const FINE_ZOOM = 2; // the fine regions' names from this many times the home view's zoom
  let placed = []; // {k, x0, y0, x1, y1} in viewer-element pixels, as last drawn
  state.labelRects = () => placed.map((p) => ({ ...p, name: regions[p.k].name }));

  const overlap = (a, b) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;

  function layer(ctx, g) {
    placed = [];
    if (!regions.length || state.labelsHidden) return;
    const { o, s, box } = g;
    ctx.save();
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.lineJoin = "round";
    const vp = viewer.viewport;
    const fine = !coarseAt.length || vp.getZoom(true) >= FINE_ZOOM * vp.getHomeZoom();
    state.labelLevel = fine ? "fine" : "coarse";
    for (const k of fine ? fineAt : coarseAt) {
      const r = regions[k];
      if (r.name === null || r.name === undefined) continue;
      const [r0, c0, r1, c1] = r.bbox;
      let cx = o.x + (r.anchor[1] + 0.5) * s;
      let cy = o.y + (r.anchor[0] + 0.5) * s;
      if (cx < -200 || cy < -50 || cx > box.width + 200 || cy > box.height + 50) continue;
      let px = Math.min(MAX_PX, SCALE * Math.sqrt(r.size) * s);
      ctx.font = `600 100px system-ui, sans-serif`;
      const at100 = ctx.measureText(r.name).width;
      px = Math.min(px, (100 * 0.9 * (c1 - c0 + 1) * s) / Math.max(at100, 1));
      if (px < MIN_PX) continue;
      const w = (at100 * px) / 100 + 6;
      const h = px * 1.25;
      // inside the grid's edges (a name never hangs off the mosaic)
      const gw = data.cols * s, gh = data.rows * s;
      if (w > gw || h > gh) continue;
      cx = Math.min(Math.max(cx, o.x + w / 2), o.x + gw - w / 2);
      cy = Math.min(Math.max(cy, o.y + h / 2), o.y + gh - h / 2);
      const rect = { k, x0: cx - w / 2, y0: cy - h / 2, x1: cx + w / 2, y1: cy + h / 2 };
      if (placed.some((p) => overlap(p, rect))) continue;
      if (placed.some((p) => regions[p.k].name === r.name &&
                       Math.hypot((p.x0 + p.x1) / 2 - cx, (p.y0 + p.y1) / 2 - cy) < 3 * w)) {
        continue;
      }
      placed.push(rect);
      ctx.font = `600 ${px.toFixed(1)}px system-ui, sans-serif`;
      ctx.lineWidth = Math.max(2.5, px / 6);
      ctx.strokeStyle = "rgba(0,0,0,0.85)";
      ctx.fillStyle = "#ffffff";
      ctx.strokeText(r.name, cx, cy);
      ctx.fillText(r.name, cx, cy);
    }
    ctx.restore();
  }
  state.layers.push(layer);

  // The region whose name is under a point (viewer-element pixels), or -1.
  state.labelAt = (pos) => {
    const hit = placed.find((p) => pos.x >= p.x0 && pos.x <= p.x1 && pos.y >= p.y0 &&
                                   pos.y <= p.y1);
    return hit ? hit.k : -1;
  };

  state.zoomToRegion = (k) => {
    const [r0, c0, r1, c1] = regions[k].bbox;
    const t = data.tile;
    const rect = new OpenSeadragon.Rect(c0 * t, r0 * t, (c1 - c0 + 1) * t, (r1 - r0 + 1) * t);
    viewer.viewport.fitBounds(viewer.viewport.imageToViewportRectangle(rect));
  };

  if (regions.some((r) => r.name !== null && r.name !== undefined)) {
    const toggle = document.getElementById("labels-shown");
    document.getElementById("labels-row").hidden = false;
    toggle.addEventListener("change", () => {
      state.labelsHidden = !toggle.checked;
      state.drawOverlay();
    });
  }

  viewer.addHandler("canvas-click", (e) => {
    if (!e.quick) return;
    const k = state.labelAt(e.position);
    if (k >= 0) state.zoomToRegion(k);
  });

  // Hover: the region's name (with its folder path) and the coarse region's, in the tip.
  const nameOf = (r) => (r.name === null || r.name === undefined ? null :
    r.name + (r.path && r.path !== r.name ? " (" + r.path + ")" : ""));
  if (data.regionOf) {
    state.tipParts.push((info) => {
      const k = info.region;
      const c = data.coarseOf && info.coarse >= 0 ? coarseIndex(info.coarse) : undefined;
      const parts = [k >= 0 ? nameOf(regions[k]) : null,
                     c !== undefined ? nameOf(regions[c]) : null];
      if (parts[0] === parts[1]) parts[1] = null;
      const text = parts.filter((x) => x).join(" \u00b7 in ");
      return text ? state.el("div", "region: " + text, "region") : null;
    });
  }
}());
