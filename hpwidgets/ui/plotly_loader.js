// plotly.js for every hpwidgets widget on a page: the live charts (livechart.js) and the explainers
// (explain/live.py) each start with this file, so both share one evaluation of the ~5 MB bundle.

const PLOTLY_KEY = "__hpwidgets_plotly__";

// Evaluate the UMD bundle with a private `module`, so a page's AMD `define` (or an old global
// Plotly) cannot capture it. `new Function` needs 'unsafe-eval'; where a CSP forbids it, fall back
// to a classic <script> from a Blob URL (anywidget itself loads our ESM from a Blob URL).
function evaluatePlotly(code) {
  try {
    const module = { exports: {} };
    new Function("module", "exports", "define", code)(module, module.exports, undefined);
    if (module.exports && module.exports.extendTraces) return Promise.resolve(module.exports);
  } catch (err) {
    console.warn("hpwidgets: eval of plotly.js refused, trying a script tag", err);
  }
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    const script = document.createElement("script");
    script.src = url;
    script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("no Plotly global")));
    script.onerror = () => reject(new Error("hpwidgets: could not load plotly.js"));
    document.head.appendChild(script);
  });
}

// One evaluation per page: its promise exists before any widget has the bundle, so a widget without
// one (an explainer reopened without a kernel) draws as soon as another widget evaluates it.
function sharedPlotly() {
  if (!globalThis[PLOTLY_KEY]) {
    const shared = { started: false };
    shared.promise = new Promise((resolve, reject) => Object.assign(shared, { resolve, reject }));
    globalThis[PLOTLY_KEY] = shared;
  }
  return globalThis[PLOTLY_KEY];
}

// The page's plotly, evaluating `code` (the bundle) if no widget has yet.
function loadPlotly(code) {
  const shared = sharedPlotly();
  if (code && !shared.started) {
    shared.started = true;
    evaluatePlotly(code).then(shared.resolve, shared.reject);
  }
  return shared.promise;
}
