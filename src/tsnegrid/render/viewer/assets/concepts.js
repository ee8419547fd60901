// tsnegrid viewer: each image's ImageNet concepts (data.concepts, from the model's classifier) in
// the hover tip, and in the search: a query matches a class when it is one of the class's broader
// names ("dog" for every breed, "cat", "bird", "food") or a whole word of its name or synonyms;
// an image matches when a matching class is among its top concepts, scored by the summed
// probability of those classes, so the best examples come first.
(function () {
  "use strict";

  const data = window.TSNEGRID;
  const state = window.tsnegrid;
  const c = data.concepts;
  if (!c) return;
  const n = data.cells.length;
  const k = c.k;

  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  state.conceptClasses = (q) => {
    const word = new RegExp("(^|[^a-z0-9])" + escape(q) + "($|[^a-z0-9])");
    return c.classes.map((cl) => cl.groups.includes(q) || word.test(cl.terms));
  };

  state.searchers.push((q) => {
    const hit = state.conceptClasses(q);
    if (!hit.some(Boolean)) return null;
    const score = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = i * k; j < (i + 1) * k; j++) {
        const code = c.codes[j];
        if (code >= 0 && hit[code]) s += c.values[j] / 1000;
      }
      score[i] = s;
    }
    return score;
  });

  state.tipParts.push((i) => {
    const list = state.el("ol", undefined, "concepts");
    for (let j = i * k; j < (i + 1) * k; j++) {
      const code = c.codes[j];
      if (code < 0) continue;
      const li = state.el("li");
      li.append(state.el("span", c.classes[code].name),
                state.el("span", (c.values[j] / 10).toFixed(1) + "%", "value"));
      list.append(li);
    }
    return list.childElementCount ? list : null;
  });
}());
