// tsnegrid viewer: the url's hash holds the view (zoom, centre in cells, search, colour field,
// the image whose look-alikes are shown), e.g. #zoom=4.000&x=12.50&y=30.25&q=cat&colour=category,
// so a view can be shared and reopened. Moving the view rewrites the current history entry;
// a new search, colour field or picked image adds one, so Back undoes it. Runs last.
(function () {
  "use strict";

  const data = window.TSNEGRID;
  const state = window.tsnegrid;
  const viewer = state.viewer;
  const TYPING_MS = 1000; // search edits closer together than this share one history entry
  let applying = false;
  let opened = false;
  let lastSearchEdit = 0;
  let viewTimer = 0;

  // The parts of the hash that Back should step through (the view itself is not one of them).
  function discrete() {
    const p = new URLSearchParams();
    if (state.query) p.set("q", state.query);
    if (state.colourField) p.set("colour", state.colourField.name);
    if (state.similar && state.similar.image >= 0) p.set("image", String(state.similar.image));
    return p;
  }

  function current() {
    const p = new URLSearchParams();
    if (opened) {
      const vp = viewer.viewport;
      const c = vp.viewportToImageCoordinates(vp.getCenter(true));
      p.set("zoom", vp.getZoom(true).toFixed(3));
      p.set("x", (c.x / data.tile).toFixed(2));
      p.set("y", (c.y / data.tile).toFixed(2));
    }
    for (const [k, v] of discrete()) p.set(k, v);
    return "#" + p.toString();
  }

  const discreteOf = (hash) => {
    const p = new URLSearchParams(hash.slice(1));
    for (const k of ["zoom", "x", "y"]) p.delete(k);
    return p.toString();
  };

  function write(push) {
    if (applying) return;
    const h = current();
    if (h === location.hash) return;
    // Only a change of search, colour or image deserves its own entry.
    const add = push && discreteOf(h) !== discreteOf(location.hash);
    try {
      history[add ? "pushState" : "replaceState"](null, "", h);
    } catch (err) { // some browsers refuse the History API on file:// pages
      if (add) location.hash = h; else location.replace(h);
    }
  }
  state.writeHash = write;

  // The search, colour and look-alikes load data files: they are awaited while ``applying``,
  // so what they change is not written back as a new history entry.
  async function apply(immediately) {
    const p = new URLSearchParams(location.hash.slice(1));
    applying = true;
    try {
      const q = p.get("q") || "";
      if (q !== state.query) await state.search(q);
      const colour = p.get("colour") || "";
      if (colour !== (state.colourField ? state.colourField.name : "")) {
        await state.setColourField(colour);
      }
      const z = parseFloat(p.get("zoom"));
      const x = parseFloat(p.get("x"));
      const y = parseFloat(p.get("y"));
      if (opened && z > 0 && Number.isFinite(x) && Number.isFinite(y)) {
        const vp = viewer.viewport;
        vp.panTo(vp.imageToViewportCoordinates(x * data.tile, y * data.tile), immediately);
        vp.zoomTo(z, null, immediately);
      }
      const image = p.has("image") ? parseInt(p.get("image"), 10) : -1;
      if (state.similar && image !== state.similar.image) {
        if (image >= 0 && image < data.n) await state.showSimilar(image);
        else state.clearSimilar();
      }
    } finally {
      applying = false;
    }
  }
  state.applyHash = apply;

  state.listeners.push((kind) => {
    if (applying) return;
    if (kind === "search") {
      const now = Date.now();
      write(now - lastSearchEdit > TYPING_MS);
      lastSearchEdit = now;
    } else {
      write(true);
    }
  });

  viewer.addHandler("viewport-change", () => {
    if (applying || !opened) return;
    clearTimeout(viewTimer);
    viewTimer = setTimeout(() => write(false), 250);
  });

  const onOpen = () => {
    opened = true;
    apply(true);
    // The view is in the hash from the start, not only after the first viewport change
    // (which an overlay drawn before the image opened may never cause).
    viewTimer = setTimeout(() => write(false), 250);
  };
  if (viewer.world.getItemCount()) onOpen(); else viewer.addHandler("open", onOpen);

  const onNavigate = () => {
    if (location.hash !== current()) apply(false);
  };
  window.addEventListener("popstate", onNavigate);
  window.addEventListener("hashchange", onNavigate);
}());
