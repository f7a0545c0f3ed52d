"use strict";
// Grid view: one row per content image, one column per run of the chosen group, for one style.
// Rows are added in chunks as the page scrolls and thumbnails load lazily, so a style with hundreds of
// images and a dozen runs paints at once.
(function (SMS) {
  var CHUNK = 40;
  var data = SMS.data;
  var state = SMS.state;
  var el = SMS.el;
  var observer = null;

  function group() {
    return data.groups.filter(function (g) { return g.key === state.group; })[0] || data.groups[0] ||
      {key: "", title: "", columns: {}};
  }

  function allColumns() { return group().columns[state.style] || []; }

  function columns() {
    return allColumns().filter(function (column) { return state.hidden.indexOf(column[1]) < 0; });
  }

  function ids() {
    var found = data.contentOrder.slice();
    var known = {};
    found.forEach(function (id) { known[id] = true; });
    allColumns().forEach(function (column) {
      Object.keys((data.images[state.style] || {})[column[1]] || {}).sort().forEach(function (id) {
        if (!known[id]) { known[id] = true; found.push(id); }
      });
    });
    return found;
  }

  function sortValue(id, shown) {
    if (state.by !== "mean") return SMS.metric(state.style, state.by, id, state.metric);
    var values = shown.map(function (column) { return SMS.metric(state.style, column[1], id, state.metric); })
      .filter(function (value) { return value !== null; });
    if (!values.length) return null;
    return values.reduce(function (a, b) { return a + b; }, 0) / values.length;
  }

  function rows(shown) {
    var list = ids().filter(function (id) { return !state.filter || id.indexOf(state.filter) >= 0; });
    if (!state.metric) return list;
    var worstHigh = SMS.direction(state.metric) !== "higher";   // unknown direction: high counts as worst
    var descending = (state.order === "worst") === worstHigh;
    var keyed = list.map(function (id) { return [id, sortValue(id, shown)]; });
    keyed.sort(function (a, b) {
      if (a[1] === null || b[1] === null) return (a[1] === null) - (b[1] === null);   // missing last
      return descending ? b[1] - a[1] : a[1] - b[1];
    });
    return keyed.map(function (pair) { return pair[0]; });
  }

  function thumbnail(entry, alt, title) {
    return el("a", {href: entry[1], target: "_blank", title: title}, [
      el("img", {src: entry[0] || entry[1], alt: alt, loading: "lazy", decoding: "async"})]);
  }

  function compareButton(id, shown) {
    return el("button", {type: "button", class: "compare", "data-id": id, text: "compare", onclick: function () {
      state.id = id;
      state.runs = shown.map(function (column) { return column[1]; });
      SMS.show("compare");
    }});
  }

  function row(id, shown) {
    var content = data.content[id];
    var head = el("th", {scope: "row"}, [
      content ? thumbnail(content, "content " + id, "content " + id) : el("div", {class: "missing", text: "no content"}),
      el("div", {class: "id", text: id}), compareButton(id, shown)]);
    var cells = shown.map(function (column) {
      var entry = SMS.image(state.style, column[1], id);
      if (!entry) return el("td", {class: "missing", text: "no image"});
      var value = state.metric ? SMS.metric(state.style, column[1], id, state.metric) : null;
      return el("td", {"data-run": column[1]}, [
        thumbnail(entry, column[0] + " · " + id, SMS.metricsText(state.style, column[1], id)),
        el("div", {class: "meta"}, [state.metric ? el("span", {text: SMS.fmt(value)}) : null,
          entry[2] ? el("a", {href: entry[2], target: "_blank", class: "sidecar", text: "sidecar"}) : null])]);
    });
    return el("tr", {"data-id": id}, [head].concat(cells));
  }

  function append(body, list, shown, start) {
    var end = Math.min(start + CHUNK, list.length);
    for (var i = start; i < end; i++) body.appendChild(row(list[i], shown));
    if (end >= list.length) return;
    var sentinel = el("tr", {class: "sentinel"}, [el("td", {colspan: shown.length + 1, text: "…"})]);
    body.appendChild(sentinel);
    observer = new IntersectionObserver(function (entries) {
      if (!entries[0].isIntersecting) return;
      observer.disconnect();
      sentinel.remove();
      append(body, list, shown, end);
    }, {rootMargin: "1200px"});
    observer.observe(sentinel);
  }

  function controls(root, shown) {
    var g = group();
    var metrics = [["", "content order"]].concat(data.metrics.names.map(function (name) {
      return [name, name + SMS.arrow(name)];
    }));
    var by = [["mean", "mean of shown columns"]].concat(shown.map(function (c) { return [c[1], c[0]]; }));
    var redraw = function (key) { return function (value) { state[key] = value; render(root); }; };
    var bar = el("div", {class: "controls"}, [
      SMS.label("Style", SMS.select(data.styles.map(function (s) { return [s, s]; }), state.style,
                                    redraw("style"), {id: "grid-style"})),
      SMS.label("Columns", SMS.select(data.groups.map(function (x) { return [x.key, x.title]; }), g.key,
        function (value) { state.group = value; state.hidden = []; render(root); }, {id: "grid-group"})),
      SMS.label("Sort rows by", SMS.select(metrics, state.metric, redraw("metric"), {id: "grid-metric"})),
      SMS.label("of", SMS.select(by, state.by, redraw("by"), {id: "grid-by"})),
      SMS.select([["worst", "worst first"], ["best", "best first"]], state.order, redraw("order"),
                 {id: "grid-order"}),
      SMS.label("Filter ids", el("input", {id: "grid-filter", type: "search", value: state.filter,
        onchange: function (event) { state.filter = event.target.value; render(root); }})),
      SMS.label("Tile", el("input", {id: "grid-tile", type: "range", min: 64, max: 192, step: 16,
        value: state.tile, oninput: function (event) {
          state.tile = Number(event.target.value);
          root.style.setProperty("--tile", state.tile + "px");
        }}))]);
    var toggles = el("div", {class: "toggles"}, allColumns().map(function (column) {
      var box = el("input", {type: "checkbox", value: column[1], checked: state.hidden.indexOf(column[1]) < 0,
        onchange: function () {
          state.hidden = box.checked ? state.hidden.filter(function (run) { return run !== column[1]; })
                                     : state.hidden.concat([column[1]]);
          render(root);
        }});
      return el("label", {title: column[1]}, [box, " " + column[0]]);
    }));
    return [bar, toggles];
  }

  function render(root) {
    if (observer) observer.disconnect();
    if (data.groups.every(function (g) { return g.key !== state.group; })) state.group = group().key;
    var shown = columns();
    if (state.by !== "mean" && shown.every(function (c) { return c[1] !== state.by; })) state.by = "mean";
    var list = rows(shown);
    root.textContent = "";
    root.style.setProperty("--tile", state.tile + "px");
    controls(root, shown).forEach(function (node) { root.appendChild(node); });
    root.appendChild(el("p", {class: "count", text: list.length + " content images × " + shown.length +
      " runs (" + state.style + "). Click a thumbnail for the full-size image; hover for its metrics."}));
    var head = el("tr", {}, [el("th", {text: "content"})].concat(shown.map(function (column) {
      return el("th", {scope: "col", title: column[1]}, [column[0],
        column[0] !== column[1] ? el("div", {class: "run", text: column[1]}) : null]);
    })));
    var body = el("tbody");
    root.appendChild(el("table", {class: "grid", id: "grid"}, [el("thead", {}, [head]), body]));
    append(body, list, shown, 0);
    SMS.writeHash();
  }

  SMS.views.grid = {render: render};
})(SMS);
