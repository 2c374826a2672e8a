// The runs page's islands. The server draws the page whole (no JavaScript needed to read it); this adds
// key suggestions in the filter, selection (the Compare link, delete/restore), folding nested runs,
// pinned columns that stay in view, the column picker's search and page size on change.
// Selection (`sel`) and folded parents (`fold`) live in the URL: replaceState keeps them there, so a
// reload or the back button brings them back, and the page's own links and forms carry them along.
(function () {
  "use strict";

  var ATTRIBUTES = ["run_name", "status", "user_id", "start_time", "end_time", "run_id", "artifact_uri", "lifecycle_stage"];
  var PLAIN_KEY = /^\w+(\.\w+)*$/;
  var selected = [];
  var folded = [];

  function listParam(name) {
    var value = new URLSearchParams(location.search).get(name) || "";
    return value.split(",").filter(function (v) { return v; });
  }

  function without(list, item) { return list.filter(function (v) { return v !== item; }); }

  // ---- state in the URL, the links and the forms -------------------------------------------------
  function setParam(url, name, values) {
    if (values.length) url.searchParams.set(name, values.join(","));
    else url.searchParams.delete(name);
  }

  function syncState() {
    var here = new URL(location.href);
    setParam(here, "sel", selected);
    setParam(here, "fold", folded);
    history.replaceState(history.state, "", here.pathname + here.search);
    document.querySelectorAll("a[data-keep]").forEach(function (a) {
      var url = new URL(a.href, location.href);
      setParam(url, "sel", selected);
      setParam(url, "fold", folded);
      a.setAttribute("href", url.pathname + url.search);
    });
    document.querySelectorAll("input[data-state]").forEach(function (input) {
      var values = input.name === "sel" ? selected : folded;
      input.value = values.join(",");
      input.disabled = values.length === 0;
    });
    var next = document.querySelector("#selection input[name=next]");
    if (next) next.value = here.pathname + here.search;
  }

  // ---- selection -----------------------------------------------------------------------------------
  function boxes() { return document.querySelectorAll("#runs tbody input[name=run]"); }

  function showSelection() {
    var onPage = {};
    boxes().forEach(function (box) {
      box.checked = selected.indexOf(box.value) >= 0;
      onPage[box.value] = true;
    });
    // Runs selected on other pages travel as hidden fields, so Delete/Restore act on all of them.
    var form = document.getElementById("selection");
    if (form) {
      form.querySelectorAll("input[data-offpage]").forEach(function (i) { i.remove(); });
      selected.forEach(function (id) {
        if (onPage[id]) return;
        var input = document.createElement("input");
        input.type = "hidden"; input.name = "run"; input.value = id; input.setAttribute("data-offpage", "");
        form.appendChild(input);
      });
    }
    var count = document.getElementById("selected-count");
    if (count) count.textContent = selected.length + " selected";
    var compare = document.getElementById("compare-link");
    if (compare) {
      var ready = selected.length >= 2;
      compare.classList.toggle("disabled", !ready);
      if (ready) {
        compare.setAttribute("href", "/compare?runs=" + selected.join(","));
        compare.removeAttribute("aria-disabled");
      } else {
        compare.removeAttribute("href");
        compare.setAttribute("aria-disabled", "true");
      }
    }
    var all = document.getElementById("select-all");
    if (all) {
      var list = Array.prototype.slice.call(boxes());
      var ticked = list.filter(function (b) { return b.checked; }).length;
      all.checked = list.length > 0 && ticked === list.length;
      all.indeterminate = ticked > 0 && ticked < list.length;
    }
    document.querySelectorAll("#selection button[type=submit]").forEach(function (b) {
      b.disabled = selected.length === 0;
    });
    var summary = document.querySelector("#delete-selected > summary");
    if (summary) summary.classList.toggle("disabled", selected.length === 0);
  }

  function initSelection() {
    selected = listParam("sel");
    var table = document.getElementById("runs");
    if (table) {
      table.addEventListener("change", function (ev) {
        var box = ev.target;
        if (box.id === "select-all") {
          boxes().forEach(function (b) {
            selected = without(selected, b.value);
            if (box.checked) selected.push(b.value);
          });
        } else if (box.name === "run") {
          selected = without(selected, box.value);
          if (box.checked) selected.push(box.value);
        } else {
          return;
        }
        showSelection();
        syncState();
      });
      var all = document.getElementById("select-all");
      if (all) all.hidden = false;
    }
    showSelection();
  }

  // ---- nested runs -----------------------------------------------------------------------------------
  function applyFolds() {
    var hideBelow = null;
    document.querySelectorAll("#runs tbody tr[data-run]").forEach(function (row) {
      var depth = parseInt(row.getAttribute("data-depth") || "0", 10);
      if (hideBelow !== null && depth > hideBelow) { row.hidden = true; return; }
      row.hidden = false;
      hideBelow = null;
      var button = row.querySelector("button.fold");
      if (button) {
        var isFolded = folded.indexOf(row.getAttribute("data-run")) >= 0;
        button.setAttribute("aria-expanded", isFolded ? "false" : "true");
        if (isFolded) hideBelow = depth;
      }
    });
  }

  function initFolds() {
    folded = listParam("fold");
    var table = document.getElementById("runs");
    if (!table) return;
    table.addEventListener("click", function (ev) {
      var button = ev.target.closest("button.fold");
      if (!button) return;
      var id = button.getAttribute("data-fold");
      folded = folded.indexOf(id) >= 0 ? without(folded, id) : folded.concat([id]);
      applyFolds();
      syncState();
    });
  }

  // ---- pinned columns stay in view when the table scrolls sideways ---------------------------------
  function pinColumns() {
    var table = document.getElementById("runs");
    if (!table) return;
    var head = table.querySelector("thead tr.keys");
    if (!head) return;
    var cells = head.children;
    var left = 0;
    for (var i = 0; i < cells.length; i++) {
      var th = cells[i];
      var sticky = th.classList.contains("sel") || th.classList.contains("name") || th.classList.contains("pinned");
      if (!sticky) break;  // pinned columns come first, right after the name
      var width = th.getBoundingClientRect().width;
      th.style.left = left + "px";
      table.querySelectorAll("tbody tr > :nth-child(" + (i + 1) + ")").forEach(function (td) {
        td.style.left = left + "px";
        if (th.classList.contains("pinned")) td.classList.add("pinned-cell");
      });
      left += width;
    }
  }

  // ---- filter key suggestions ----------------------------------------------------------------------
  function identifiers() {
    var block = document.getElementById("run-keys");
    var keys = block ? JSON.parse(block.textContent) : {};
    var out = [];
    function add(prefix, kind, list) {
      (list || []).forEach(function (key) {
        out.push({ text: prefix + "." + (PLAIN_KEY.test(key) ? key : "`" + key + "`"), kind: kind, key: key.toLowerCase() });
      });
    }
    add("metrics", "metric", keys.metrics);
    add("params", "param", keys.params);
    add("tags", "tag", keys.tags);
    add("attributes", "attribute", ATTRIBUTES);
    return out;
  }

  function initSuggestions() {
    var input = document.getElementById("filter");
    var list = document.getElementById("filter-suggestions");
    if (!input || !list) return;
    var all = identifiers();
    var shown = [];
    var active = -1;

    function close() {
      list.hidden = true; shown = []; active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    // The word being typed at the caret, unless the caret is inside a quoted value.
    function wordAtCaret() {
      var before = input.value.slice(0, input.selectionStart || 0);
      var quotes = (before.match(/'/g) || []).length + (before.match(/"/g) || []).length;
      if (quotes % 2 === 1) return null;
      var match = /[\w.`]*$/.exec(before);
      return match && match[0] ? { text: match[0], start: before.length - match[0].length } : null;
    }

    function render() {
      list.textContent = "";
      shown.forEach(function (item, i) {
        var li = document.createElement("li");
        li.id = "suggestion-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", i === active ? "true" : "false");
        var name = document.createElement("span");
        name.textContent = item.text;
        var kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = item.kind;
        li.appendChild(name); li.appendChild(kind);
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); accept(i); });
        list.appendChild(li);
      });
      list.hidden = shown.length === 0;
      input.setAttribute("aria-expanded", shown.length ? "true" : "false");
      if (active >= 0) input.setAttribute("aria-activedescendant", "suggestion-" + active);
      else input.removeAttribute("aria-activedescendant");
    }

    function update() {
      var word = wordAtCaret();
      if (!word) { close(); return; }
      var needle = word.text.toLowerCase().replace(/`/g, "");
      var starts = [], contains = [];
      all.forEach(function (item) {
        var text = item.text.toLowerCase().replace(/`/g, "");
        if (text === needle) return;
        if (text.indexOf(needle) === 0 || item.key.indexOf(needle) === 0) starts.push(item);
        else if (text.indexOf(needle) > 0) contains.push(item);
      });
      shown = starts.concat(contains).slice(0, 12);
      active = -1;
      render();
    }

    function accept(i) {
      var word = wordAtCaret();
      var item = shown[i];
      if (!word || !item) return;
      var value = input.value;
      var end = word.start + word.text.length;
      var insert = item.text + " ";
      input.value = value.slice(0, word.start) + insert + value.slice(end).replace(/^ /, "");
      var caret = word.start + insert.length;
      input.setSelectionRange(caret, caret);
      close();
      input.focus();
    }

    input.addEventListener("input", update);
    input.addEventListener("focus", update);
    input.addEventListener("blur", close);
    input.addEventListener("keydown", function (ev) {
      if (list.hidden) return;
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        var step = ev.key === "ArrowDown" ? 1 : -1;
        active = (active + step + shown.length) % shown.length;
        render();
      } else if ((ev.key === "Enter" || ev.key === "Tab") && active >= 0) {
        ev.preventDefault();
        accept(active);
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        close();
      }
    });
  }

  // ---- column picker search, page size -------------------------------------------------------------
  function initPicker() {
    var find = document.querySelector("#column-picker .picker-find");
    if (!find) return;
    find.hidden = false;
    find.addEventListener("input", function () {
      var needle = find.value.trim().toLowerCase();
      document.querySelectorAll("#column-picker .pick").forEach(function (pick) {
        pick.hidden = needle !== "" && (pick.getAttribute("data-name") || "").indexOf(needle) < 0;
      });
    });
  }

  function initPageSize() {
    var form = document.querySelector("form.page-size");
    if (!form) return;
    var button = form.querySelector("button");
    if (button) button.hidden = true;
    form.querySelector("select").addEventListener("change", function () { form.submit(); });
  }

  // ---- live rows: htmx swaps RUNNING rows in; they get this page's state again ---------------------
  function afterSwap() {
    showSelection();
    applyFolds();
    pinColumns();
    var table = document.getElementById("runs");
    if (table && window.modelyard) window.modelyard.enhance(table);
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSelection();
    initFolds();
    applyFolds();
    pinColumns();
    initSuggestions();
    initPicker();
    initPageSize();
    syncState();
    window.addEventListener("resize", pinColumns);
  });
  document.addEventListener("htmx:afterSettle", afterSwap);
})();
