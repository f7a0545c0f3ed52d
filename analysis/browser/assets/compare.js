"use strict";
// Compare view: one content image's outputs side by side at full size, that image's metrics per run (the
// best of the shown runs in bold), each output's provenance, and a before/after slider against the content.
(function (SMS) {
  var data = SMS.data;
  var state = SMS.state;
  var el = SMS.el;

  function ids() {
    var found = data.contentOrder.slice();
    Object.keys(data.images[state.style] || {}).forEach(function (run) {
      Object.keys(data.images[state.style][run]).forEach(function (id) {
        if (found.indexOf(id) < 0) found.push(id);
      });
    });
    return found;
  }

  function available() {   // declared runs with an output of this image, in params.yaml order
    return Object.keys(data.runs).filter(function (run) { return SMS.image(state.style, run, state.id); });
  }

  function chosen(runs) {
    var picked = state.runs.filter(function (run) { return runs.indexOf(run) >= 0; });
    return picked.length ? picked : runs.slice(0, 4);
  }

  function provenance(run) {
    var entry = SMS.image(state.style, run, state.id);
    var folder = (data.provenance[state.style] || {})[run] || {};
    var models = folder.models || {};
    var parts = [];
    if (entry[3] !== null && entry[3] !== undefined) parts.push("seed " + entry[3]);
    if (entry[4] !== null) parts.push(SMS.fmt(entry[4]) + " s");
    if (folder.iterations && folder.iterations.length) parts.push(folder.iterations.join(", ") + " iterations");
    if (folder.config_digest) parts.push("config " + folder.config_digest);
    Object.keys(models).forEach(function (key) {
      if (models[key]) parts.push(key + " " + String(models[key]).slice(0, 12));
    });
    return parts.join(" · ");
  }

  function card(title, subtitle, full, links, note, run) {
    return el("figure", {class: "card" + (run ? "" : " content"), "data-run": run || null}, [
      el("figcaption", {}, [el("strong", {text: title}), subtitle ? el("span", {class: "run", text: subtitle}) : null]),
      el("a", {href: full, target: "_blank"}, [el("img", {class: "full", src: full, alt: title})]),
      el("div", {class: "links"}, links), note ? el("div", {class: "provenance", text: note}) : null]);
  }

  function metricsTable(runs) {
    var head = el("tr", {}, [el("th", {text: "metric"})].concat(runs.map(function (run) {
      return el("th", {scope: "col", "data-run": run, text: SMS.runLabel(run)});
    })));
    var body = data.metrics.names.map(function (name) {
      var values = runs.map(function (run) { return SMS.metric(state.style, run, state.id, name); });
      var finite = values.filter(function (v) { return v !== null; });
      var best = !finite.length || !SMS.direction(name) ? null
        : (SMS.direction(name) === "lower" ? Math.min : Math.max).apply(null, finite);
      return el("tr", {"data-metric": name}, [el("th", {scope: "row", text: name + SMS.arrow(name)})].concat(
        values.map(function (value, k) {
          return el("td", {"data-run": runs[k], class: value !== null && value === best && finite.length > 1 ? "best" : null,
                           text: SMS.fmt(value)});
        })));
    });
    return el("table", {class: "metrics", id: "compare-metrics"}, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  function slider(runs, content) {
    var run = runs.indexOf(state.slider) >= 0 ? state.slider : runs[0];
    var entry = SMS.image(state.style, run, state.id);
    var after = el("img", {class: "after", src: entry[1], alt: SMS.runLabel(run)});
    var wrap = el("div", {class: "after-wrap"}, [after]);
    var range = el("input", {type: "range", min: 0, max: 100, value: 50, "aria-label": "split position",
      oninput: function () { wrap.style.clipPath = "inset(0 0 0 " + range.value + "%)"; }});
    wrap.style.clipPath = "inset(0 0 0 50%)";
    var pick = SMS.select(runs.map(function (r) { return [r, SMS.runLabel(r)]; }), run, function (value) {
      state.slider = value;
      render(document.getElementById("compare-view"));
    }, {id: "slider-run"});
    return el("section", {class: "slider-block"}, [
      el("h3", {}, ["Before / after: content ◀ ▶ ", pick]),
      el("div", {class: "slider", id: "slider"}, [el("img", {class: "before", src: content[1], alt: "content"}), wrap]),
      range]);
  }

  function render(root) {
    var list = ids();
    if (list.indexOf(state.id) < 0) state.id = list[0] || "";
    var runs = available();
    var shown = chosen(runs);
    var at = list.indexOf(state.id);
    var go = function (id) { state.id = id; render(root); };
    root.textContent = "";
    root.style.setProperty("--full", state.width + "px");
    root.appendChild(el("div", {class: "controls"}, [
      SMS.label("Style", SMS.select(data.styles.map(function (s) { return [s, s]; }), state.style,
        function (value) { state.style = value; render(root); }, {id: "compare-style"})),
      el("button", {type: "button", text: "◀", disabled: at <= 0, onclick: function () { go(list[at - 1]); }}),
      SMS.label("Content image", SMS.select(list.map(function (id) { return [id, id]; }), state.id, go,
                                            {id: "compare-id"})),
      el("button", {type: "button", text: "▶", disabled: at >= list.length - 1,
                    onclick: function () { go(list[at + 1]); }}),
      SMS.label("Image width", el("input", {id: "compare-width", type: "range", min: 128, max: 768, step: 32,
        value: state.width, oninput: function (event) {
          state.width = Number(event.target.value);
          root.style.setProperty("--full", state.width + "px");
        }}))]));
    root.appendChild(el("div", {class: "toggles"}, runs.map(function (run) {
      var box = el("input", {type: "checkbox", value: run, checked: shown.indexOf(run) >= 0, onchange: function () {
        state.runs = runs.filter(function (r) {
          return r === run ? box.checked : shown.indexOf(r) >= 0;
        });
        render(root);
      }});
      return el("label", {title: run}, [box, " " + SMS.runLabel(run)]);
    })));
    var content = data.content[state.id];
    var cards = [];
    if (content) cards.push(card("content", state.id, content[1], [el("a", {href: content[1], target: "_blank",
                                                                            text: "full size"})]));
    shown.forEach(function (run) {
      var entry = SMS.image(state.style, run, state.id);
      cards.push(card(SMS.runLabel(run), run, entry[1], [
        el("a", {href: entry[1], target: "_blank", text: "full size"}),
        entry[2] ? el("a", {href: entry[2], target: "_blank", class: "sidecar", text: "sidecar (config, seed, hashes, timings)"}) : null],
        provenance(run), run));
    });
    if (!shown.length) root.appendChild(el("p", {text: "No run has an output of " + state.id + " in " + state.style + "."}));
    root.appendChild(el("div", {class: "cards"}, cards));
    if (shown.length && data.metrics.names.length) root.appendChild(metricsTable(shown));
    if (shown.length && content) root.appendChild(slider(shown, content));
    state.runs = shown;
    SMS.writeHash();
  }

  SMS.views.compare = {render: render};
})(SMS);
