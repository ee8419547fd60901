// tsnegrid viewer: each image's ImageNet concepts (from the model's classifier) in the hover tip,
// and in the search: a query matches a class when it is one of the class's broader names ("dog"
// for every breed, "cat", "bird", "food") or a whole word of its name or synonyms; an image
// matches when a matching class is among its top concepts, scored by the summed probability of
// those classes, so the best examples come first. The classes sit in layout.js, each image's
// concepts in its block's data file, and each class's images in the search index.
(function () {
  "use strict";

  const data = window.TSNEGRID;
  const state = window.tsnegrid;
  const c = data.concepts;
  if (!c) return;
  const n = data.n;

  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  state.conceptClasses = (q) => {
    const word = new RegExp("(^|[^a-z0-9])" + escape(q) + "($|[^a-z0-9])");
    return c.classes.map((cl) => cl.groups.includes(q) || word.test(cl.terms));
  };

  state.searchers.push((q, index) => {
    const hit = state.conceptClasses(q);
    if (!hit.some(Boolean) || !index.concepts) return null;
    const score = new Float32Array(n);
    hit.forEach((yes, code) => {
      if (!yes) return;
      const ids = state.postings(index.concepts[code].ids);
      const raw = atob(index.concepts[code].p); // thousandths, 2 bytes little-endian each
      ids.forEach((i, t) => {
        score[i] += (raw.charCodeAt(2 * t) + 256 * raw.charCodeAt(2 * t + 1)) / 1000;
      });
    });
    return score;
  });

  state.tipParts.push((info) => {
    const list = state.el("ol", undefined, "concepts");
    for (const con of info.concepts) {
      const li = state.el("li");
      li.append(state.el("span", con.name),
                state.el("span", (con.value / 10).toFixed(1) + "%", "value"));
      list.append(li);
    }
    return list.childElementCount ? list : null;
  });
}());
