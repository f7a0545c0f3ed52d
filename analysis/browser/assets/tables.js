"use strict";
// Tables view: the report's tables (value [95% CI]), each sortable by any column: click a header to sort,
// again to reverse; a missing value (—) stays last either way. Figures view: the report's figures and the
// runtime table.
(function (SMS) {
  var data = SMS.data;
  var el = SMS.el;

  function sortRows(table, body, column, ascending) {
    var numeric = table.columns[column][2];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, column, numeric);
      var y = cellValue(b, column, numeric);
      if (x === null || y === null) return (x === null) - (y === null);
      var order = numeric ? x - y : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function cellValue(row, column, numeric) {
    var cell = row.cells[column];
    if (!numeric) return cell.textContent;
    var value = cell.getAttribute("data-value");
    return value === null ? null : Number(value);
  }

  function tableBlock(table, prefix) {
    var body = el("tbody", {}, table.rows.map(function (row) {
      return el("tr", {}, row.map(function (cell, k) {
        return el("td", {class: table.columns[k][2] ? "number" : null,
                         "data-value": cell[1] === null ? null : String(cell[1]), text: cell[0]});
      }));
    }));
    var sorted = {column: -1, ascending: true};
    var headers = table.columns.map(function (column, k) {
      var th = el("th", {scope: "col", "data-key": column[0], "aria-sort": "none", title: "sort by " + column[1]}, [
        el("button", {type: "button", text: column[1], onclick: function () {
          sorted.ascending = sorted.column === k ? !sorted.ascending : true;
          sorted.column = k;
          headers.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
          th.setAttribute("aria-sort", sorted.ascending ? "ascending" : "descending");
          sortRows(table, body, k, sorted.ascending);
        }})]);
      return th;
    });
    return el("section", {class: "table-block"}, [
      el("h2", {text: table.title}),
      el("div", {class: "scroll"}, [el("table", {class: "sortable", id: prefix + table.name}, [
        el("thead", {}, [el("tr", {}, headers)]), body])]),
      table.caption ? el("p", {class: "caption", text: table.caption}) : null,
      table.notes.length ? el("ol", {class: "notes"}, table.notes.map(function (note) {
        return el("li", {text: note});
      })) : null]);
  }

  function renderTables(root) {
    if (root.childNodes.length) return;   // static: built once, keeps its sort order between visits
    root.appendChild(el("p", {text: "Click a column header to sort (again to reverse); — = no value, " +
                                    "reasons numbered below each table."}));
    data.tables.forEach(function (table) { root.appendChild(tableBlock(table, "table-")); });
  }

  function renderFigures(root) {
    if (root.childNodes.length) return;
    if (!data.figures.length) root.appendChild(el("p", {text: "The report wrote no figures."}));
    data.figures.forEach(function (figure) {
      root.appendChild(el("figure", {class: "figure"}, [
        el("a", {href: figure.src, target: "_blank"}, [el("img", {src: figure.src, alt: figure.title,
                                                                   loading: "lazy"})]),
        el("figcaption", {text: figure.title})]));
    });
    data.tables.filter(function (table) { return table.name === "table1_runtime"; }).forEach(function (table) {
      root.appendChild(tableBlock(table, "figure-"));
    });
  }

  SMS.views.tables = {render: renderTables};
  SMS.views.figures = {render: renderFigures};
})(SMS);
