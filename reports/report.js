/* report.js - filtering, sorting and opening in mtasim's HTML report.
   Reads the page and sets hidden / open / class only: it never writes
   markup, so nothing from a scenario can become code through it. */
(function () {
  "use strict";
  var table = document.getElementById("runs-table");
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var sections = {};
  Array.prototype.forEach.call(document.querySelectorAll("details.run"), function (d) {
    sections[d.getAttribute("data-run")] = d;
  });
  var filter = "all";
  var search = document.getElementById("search");

  function visible(row) {
    var failed = !row.classList.contains("pass");
    if (filter === "failed" && !failed) return false;
    if (filter === "passed" && failed) return false;
    var q = search.value.trim().toLowerCase();
    return q === "" || row.getAttribute("data-search").indexOf(q) !== -1;
  }

  function apply() {
    rows.forEach(function (row) {
      var show = visible(row);
      row.classList.toggle("hidden-row", !show);
      var section = sections[row.getAttribute("data-run")];
      if (section) section.hidden = !show;
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-filter]"), function (b) {
    b.addEventListener("click", function () {
      filter = b.getAttribute("data-filter");
      Array.prototype.forEach.call(document.querySelectorAll("[data-filter]"), function (o) {
        o.classList.toggle("on", o === b);
      });
      apply();
    });
  });
  search.addEventListener("input", apply);

  function openAll(open) {
    Object.keys(sections).forEach(function (k) {
      if (!sections[k].hidden) sections[k].open = open;
    });
  }
  document.getElementById("expand").addEventListener("click", function () { openAll(true); });
  document.getElementById("collapse").addEventListener("click", function () { openAll(false); });

  /* Sort by a column: numbers by data-v, text by its content; stable. */
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.addEventListener("click", function () {
      var desc = th.classList.contains("asc");
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) {
        o.classList.remove("asc", "desc");
      });
      th.classList.add(desc ? "desc" : "asc");
      var numeric = th.getAttribute("data-sort") !== "text";
      var keyed = rows.map(function (row, i) {
        var cell = row.cells[col];
        var v = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
        return { row: row, i: i, v: numeric ? parseFloat(v) || 0 : v.toLowerCase() };
      });
      keyed.sort(function (a, b) {
        var c = a.v < b.v ? -1 : a.v > b.v ? 1 : a.i - b.i;
        return desc ? -c : c;
      });
      keyed.forEach(function (k) { table.tBodies[0].appendChild(k.row); });
    });
  });

  /* A link to a run opens its section. */
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target && target.tagName === "DETAILS") target.open = true;
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  document.documentElement.classList.add("js");
})();
