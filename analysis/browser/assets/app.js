"use strict";
// The results browser's shared state, helpers, header and view switch. Plain scripts, not modules:
// browsers refuse module scripts from file:// pages. Each view registers itself in SMS.views.
var SMS = (function () {
  var data = window.SMS_DATA || {};
  var state = {view: "grid", style: "", group: "", hidden: [], metric: "", by: "mean", order: "worst",
               filter: "", tile: 128, id: "", runs: [], slider: "", width: 320};
  var views = {};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined || !isFinite(value)) return "—";
    var size = Math.abs(value);
    if (size !== 0 && (size < 1e-3 || size >= 1e6)) return value.toExponential(2);
    return String(Number(value.toPrecision(4)));
  }

  function select(options, chosen, onchange, attrs) {
    var node = el("select", attrs);
    options.forEach(function (option) {
      node.appendChild(el("option", {value: option[0], selected: option[0] === chosen, text: option[1]}));
    });
    node.addEventListener("change", function () { onchange(node.value); });
    return node;
  }

  function label(text, control) { return el("label", {}, [text + " ", control]); }

  function runLabel(run) { return (data.runs[run] && data.runs[run].label) || run; }

  function image(style, run, id) {
    var runs = (data.images[style] || {})[run];
    return (runs && runs[id]) || null;
  }

  function metricIndex(metric) { return data.metrics.names.indexOf(metric); }

  function metric(style, run, id, name) {
    var rows = ((data.metrics.values[style] || {})[run] || {})[id];
    var index = metricIndex(name);
    return rows && index >= 0 ? rows[index] : null;
  }

  function direction(name) { return data.metrics.direction[name] || ""; }

  function arrow(name) { return {lower: " ↓", higher: " ↑"}[direction(name)] || ""; }

  function metricsText(style, run, id) {
    var lines = [runLabel(run) + " (" + run + ") · " + id];
    data.metrics.names.forEach(function (name) {
      var value = metric(style, run, id, name);
      if (value !== null) lines.push(name + arrow(name) + ": " + fmt(value));
    });
    return lines.join("\n");
  }

  function readHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    ["view", "style", "group", "metric", "by", "order", "filter", "id", "slider"].forEach(function (key) {
      if (params.has(key)) state[key] = params.get(key);
    });
    ["hidden", "runs"].forEach(function (key) {
      if (params.has(key)) state[key] = params.get(key) ? params.get(key).split(",") : [];
    });
    if (data.styles.indexOf(state.style) < 0) state.style = data.styles[0] || "";
    if (!views[state.view]) state.view = "grid";
  }

  function writeHash() {
    var keys = {grid: ["style", "group", "hidden", "metric", "by", "order", "filter"],
                compare: ["style", "id", "runs", "slider"], tables: [], figures: []}[state.view];
    var params = new URLSearchParams({view: state.view});
    keys.forEach(function (key) {
      var value = Array.isArray(state[key]) ? state[key].join(",") : state[key];
      if (value) params.set(key, value);
    });
    var hash = "#" + params.toString();
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  function show(view) {
    state.view = view;
    Object.keys(views).forEach(function (name) {
      document.getElementById(name + "-view").hidden = name !== view;
      var tab = document.querySelector('#tabs [data-view="' + name + '"]');
      if (tab) tab.classList.toggle("active", name === view);
    });
    views[view].render(document.getElementById(view + "-view"));
    writeHash();
  }

  function header() {
    var profile = document.getElementById("profile");
    profile.textContent = "Profile " + (data.profile || "?") + (data.label ? " — " + data.label : "") + " · " +
      data.styles.length + " styles · " + Object.keys(data.runs).length + " runs · " + countImages() + " outputs";
    var notes = [];
    if (data.standin.length) {
      notes.push("Metrics computed with random stand-in weights (" + data.standin.join(", ") + ").");
    }
    if (data.standinRuns.length) {
      var stylised = runsWithImages();
      var which = data.standinRuns.length === stylised ? "every run" : data.standinRuns.length > 6
        ? data.standinRuns.length + " of " + stylised + " runs" : data.standinRuns.join(", ");
      notes.push("Stylised with stand-in (random) models: " + which + ".");
    }
    if (notes.length) {
      var warning = document.getElementById("standin");
      warning.textContent = notes.join(" ") + " These numbers test the machinery, not any paper.";
      warning.title = data.standinRuns.join(", ");
      warning.hidden = false;
    }
    if (data.problems.length) {
      var problems = document.getElementById("problems");
      problems.querySelector("summary").textContent = data.problems.length + " missing or ignored inputs";
      data.problems.forEach(function (text) { problems.querySelector("ul").appendChild(el("li", {text: text})); });
      problems.hidden = false;
    }
    document.querySelectorAll("#tabs [data-view]").forEach(function (tab) {
      tab.addEventListener("click", function () { show(tab.getAttribute("data-view")); });
    });
  }

  function runsWithImages() {
    var runs = {};
    Object.keys(data.images).forEach(function (style) {
      Object.keys(data.images[style]).forEach(function (run) { runs[run] = true; });
    });
    return Object.keys(runs).length;
  }

  function countImages() {
    var count = 0;
    Object.keys(data.images).forEach(function (style) {
      Object.keys(data.images[style]).forEach(function (run) {
        count += Object.keys(data.images[style][run]).length;
      });
    });
    return count;
  }

  function start() {
    if (!window.SMS_DATA) {
      document.getElementById("profile").textContent = "browser/data.js is missing: run the report stage.";
      return;
    }
    readHash();
    header();
    window.addEventListener("hashchange", function () { readHash(); show(state.view); });
    show(state.view);
    performance.mark("sms-ready");   // the first view drawn: what benchmarks/bench_browser.py times
    document.body.setAttribute("data-ready", "");
  }

  return {data: data, state: state, views: views, el: el, fmt: fmt, select: select, label: label,
          runLabel: runLabel, image: image, metric: metric, direction: direction, arrow: arrow,
          metricsText: metricsText, show: show, writeHash: writeHash, start: start};
})();
