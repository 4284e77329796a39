// hpwidgets live charts: an anywidget ESM module (no bundler, no CDN).
//
// Model state:  plotly_js  the plotly.min.js bundle from the plotly Python package (once per panel)
//               snapshot   JSON text of {seq, order, charts: {name: {data, layout}}}: the full
//                          figures, refreshed rarely by Python (study end, space edits, resyncs)
// Messages in:  {type: "inc", seq, ops: [{c, t, d}], texts}: the new points of one batch of
//               trials; each op is Plotly.extendTraces(div_of_chart_c, d, t)
// Messages out: {type: "rendered"} after the first draw; {type: "resync"} when an inc was missed
// plotly_loader.js comes first in the ESM (livechart.py): loadPlotly and the shared evaluation.

const MIN_REDRAW_MS = 100; // at most 10 redraws a second, whatever the trial rate
const REFIT_AFTER_MS = 50; // one re-measure for a burst of box resizes (a sibling shown, the output attached)
// The same as hpwidgets/charts/figures.py's PLOT_CONFIG (a test keeps them equal).
const CONFIG = {
  responsive: true, displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d",
                           "toggleSpikelines", "hoverClosestCartesian", "hoverCompareCartesian"],
};

// "dimensions[2].values" -> the array at that path in a trace, created if missing.
function arrayAt(trace, path) {
  const parts = path.replace(/\[(\d+)\]/g, ".$1").split(".");
  let obj = trace;
  for (const key of parts.slice(0, -1)) {
    if (obj[key] === undefined) obj[key] = {};
    obj = obj[key];
  }
  const last = parts[parts.length - 1];
  if (!Array.isArray(obj[last])) obj[last] = [];
  return obj[last];
}

// Hover texts travel once per trial in `texts` (keyed by trial number); traces and ops carry the
// trial numbers in `customdata`, and get their `text` back here before plotly sees them.
function fillTrace(trace, texts) {
  if (trace.customdata && !trace.text) trace.text = trace.customdata.map((n) => texts[n]);
}

function fillOp(op, texts) {
  if (op.d.customdata && !op.d.text) op.d.text = op.d.customdata.map((col) => col.map((n) => texts[n]));
}

function countPoints(figure) {
  let n = 0;
  for (const trace of figure.data || []) {
    const values = trace.x || (trace.dimensions && trace.dimensions[0] && trace.dimensions[0].values) || [];
    n += values.length;
  }
  return n;
}

class ChartsView {
  constructor(Plotly, model, el) {
    this.Plotly = Plotly;
    this.model = model;
    this.root = document.createElement("div");
    this.root.className = "hpw-charts";
    this.root.style.cssText = "display:flex;flex-wrap:wrap;gap:4px;width:100%";
    el.appendChild(this.root);
    this.el = el;
    this.divs = {};
    this.figs = {};
    this.plotted = new Set();
    this.applied = -1;
    this.pending = [];
    this.timer = null;
    this.lastDraw = 0;
    this.resyncAsked = false;
    this.refitTimer = null;
    // Plotly's `responsive` follows window resizes only: a box resized by a sibling chart appearing,
    // or attached to the page after its first draw (a reopened notebook), is re-measured here.
    this.resizes = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => this.refitSoon());
  }

  div(name) {
    if (!this.divs[name]) {
      const d = document.createElement("div");
      d.className = `hpw-chart hpw-chart-${name}`;
      d.dataset.chart = name;
      // The other charts share a row when there is room; draw() sets who spans it all.
      d.style.cssText = "flex:1 1 420px;min-width:320px;display:none";
      this.root.appendChild(d);
      this.divs[name] = d;
      if (this.resizes) this.resizes.observe(d);
    }
    return this.divs[name];
  }

  load(text) {
    const snapshot = JSON.parse(text || "{}"); // fresh arrays each time: plotly mutates what it draws
    if (snapshot.seq === undefined || snapshot.seq < this.applied) return;
    this.figs = snapshot.charts || {};
    for (const fig of Object.values(this.figs)) for (const trace of fig.data || []) fillTrace(trace, snapshot.texts || {});
    this.plotted.clear();
    const order = snapshot.order || Object.keys(this.figs);
    for (const name of order) this.place(name); // every box its final width before plotly measures one
    for (const name of order) this.draw(name);
    this.applied = snapshot.seq;
    this.resyncAsked = false;
    this.pending = this.pending.filter((m) => m.seq > this.applied);
    this.flush();
  }

  // Show chart `name`'s box (with its share of the row) when it has points, else hide it.
  place(name) {
    const fig = this.figs[name];
    const d = this.div(name);
    const shown = Boolean(fig) && countPoints(fig) > 0;
    d.style.display = shown ? "" : "none";
    // The slice grid, and parallel coordinates with many axes, span the full width (charts/figures.py).
    const wide = name === "slices" || Boolean(fig && fig.layout && fig.layout.meta && fig.layout.meta.hpw_full_width);
    if (shown) d.style.flexBasis = wide ? "100%" : "420px";
    return shown;
  }

  draw(name) {
    if (!this.place(name)) return;
    const fig = this.figs[name];
    this.Plotly.react(this.divs[name], fig.data, fig.layout, CONFIG);
    this.plotted.add(name);
  }

  refitSoon() {
    if (this.refitTimer === null) this.refitTimer = setTimeout(() => this.refit(), REFIT_AFTER_MS);
  }

  // Redraw at its box's width every drawn chart whose figure has another width (a hidden or detached
  // box measures 0: it is left alone until it is shown).
  refit() {
    this.refitTimer = null;
    for (const name of this.plotted) {
      const d = this.divs[name];
      const drawn = d._fullLayout ? d._fullLayout.width : null;
      if (!drawn || d.clientWidth === 0 || Math.abs(drawn - d.clientWidth) <= 1) continue;
      Promise.resolve(this.Plotly.Plots.resize(d))
        .catch((err) => console.debug("hpwidgets: resize skipped", name, err));
    }
  }

  receive(msg) {
    if (!msg || msg.type !== "inc") return;
    this.pending.push(msg);
    if (this.timer === null) {
      const wait = Math.max(0, MIN_REDRAW_MS - (Date.now() - this.lastDraw));
      this.timer = setTimeout(() => this.flush(), wait);
    }
  }

  flush() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.pending.sort((a, b) => a.seq - b.seq);
    const ops = [];
    while (this.pending.length && this.pending[0].seq <= this.applied + 1) {
      const msg = this.pending.shift();
      if (msg.seq === this.applied + 1) {
        for (const op of msg.ops) fillOp(op, msg.texts || {});
        ops.push(...msg.ops);
      }
      this.applied = Math.max(this.applied, msg.seq);
    }
    if (this.pending.length && !this.resyncAsked) {
      this.resyncAsked = true; // a gap: this view missed messages (e.g. sent before it rendered)
      this.model.send({ type: "resync", have: this.applied });
    }
    if (ops.length) this.apply(ops);
    this.lastDraw = Date.now();
    this.el.dataset.hpwSeq = String(this.applied);
  }

  apply(ops) {
    const byChart = new Map();
    for (const op of ops) {
      if (!byChart.has(op.c)) byChart.set(op.c, []);
      byChart.get(op.c).push(op);
    }
    for (const [name, list] of byChart) {
      if (!this.figs[name]) continue;
      if (this.plotted.has(name)) this.extend(name, list);
      else {
        for (const op of list) this.append(this.figs[name], op);
        this.draw(name);
      }
    }
  }

  append(fig, op) {
    op.t.forEach((traceIndex, i) => {
      for (const [path, columns] of Object.entries(op.d)) arrayAt(fig.data[traceIndex], path).push(...columns[i]);
    });
  }

  extend(name, ops) {
    const d = this.divs[name];
    for (const op of ops) {
      try {
        this.Plotly.extendTraces(d, op.d, op.t);
      } catch (err) {
        // A trace type extendTraces cannot grow: append by hand and redraw the whole chart.
        console.warn("hpwidgets: extendTraces failed, redrawing", name, err);
        this.append({ data: d.data }, op);
        this.Plotly.react(d, d.data, d.layout, CONFIG);
      }
    }
  }

  dispose() {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.refitTimer !== null) clearTimeout(this.refitTimer);
    if (this.resizes) this.resizes.disconnect();
    for (const d of Object.values(this.divs)) this.Plotly.purge(d);
  }
}

async function render({ model, el }) {
  el.classList.add("hpw-livechart");
  const early = []; // increments that arrive while plotly.js is still being evaluated
  let view = null;
  const onMsg = (msg) => (view ? view.receive(msg) : early.push(msg));
  const onSnapshot = () => view && view.load(model.get("snapshot"));
  model.on("msg:custom", onMsg);
  model.on("change:snapshot", onSnapshot);
  const status = document.createElement("div");
  status.className = "hpw-chart-status";
  status.textContent = "loading plotly.js…";
  el.appendChild(status);
  try {
    const Plotly = await loadPlotly(model.get("plotly_js"));
    status.remove();
    view = new ChartsView(Plotly, model, el);
    view.load(model.get("snapshot"));
    for (const msg of early) view.receive(msg);
    el.dataset.hpwRendered = "true";
    model.send({ type: "rendered" });
  } catch (err) {
    status.textContent = `hpwidgets: charts unavailable (${err})`;
  }
  return () => {
    model.off("msg:custom", onMsg);
    model.off("change:snapshot", onSnapshot);
    if (view) view.dispose();
  };
}

export default { render };
