/* Curio's small amount of plain JS: what a browser must do itself.
 *
 * Grid selection: a click ticks one row; a shift-click ticks every row between the last
 * clicked row and this one. The server is the source of truth (it resolves the range in
 * the current filter and order, also over rows not loaded yet); here we only mirror the
 * result on the checkboxes that are on screen. */
(function () {
  "use strict";

  let anchorId = null;

  function results() { return document.getElementById("results"); }
  function tiles() { return Array.from(document.querySelectorAll("#grid .tile")); }
  function setTile(tile, checked) {
    const box = tile.querySelector(".select-row");
    if (box) box.checked = checked;
    tile.classList.toggle("selected", checked);
  }

  // Selection requests run one after another, so the bar always shows the count of the
  // last click, and a range never races the click that set its anchor.
  let queue = Promise.resolve();
  function post(url, values, source) {
    queue = queue.then(() => htmx.ajax("POST", url, {
      source: source,
      values: values,
      target: "#selection-bar",
      swap: "outerHTML",
    })).catch(() => toast("Could not update the selection. Check your connection and try again.", "error"));
    return queue;
  }

  document.addEventListener("click", function (event) {
    const box = event.target.closest && event.target.closest("#grid .select-row");
    if (!box) return;
    const tile = box.closest(".tile");
    const rowId = tile.dataset.rowId;
    const checked = box.checked;
    const all = tiles();
    if (event.shiftKey && anchorId !== null) {
      const from = all.findIndex((t) => t.dataset.rowId === anchorId);
      const to = all.indexOf(tile);
      if (from !== -1) {
        const [lo, hi] = from < to ? [from, to] : [to, from];
        for (let i = lo; i <= hi; i++) setTile(all[i], checked);
      }
      post("/selection/range/", {
        row: rowId,
        anchor: anchorId,
        selected: checked ? "1" : "0",
        filter_qs: results().dataset.filterQs,
      }, box);
    } else {
      setTile(tile, checked);
      // The filter rides along so the re-rendered bar's "Find similar to selected" searches
      // inside the filter on screen.
      post("/selection/toggle/", { row: rowId, selected: checked ? "1" : "0", filter_qs: results().dataset.filterQs }, box);
    }
    anchorId = rowId;
  });

  // The script is deferred, so <body> exists; htmx dispatches HX-Trigger events on it.
  document.body.addEventListener("selectionChanged", onSelectionChanged);
  document.body.addEventListener("curioError", function (event) {
    toast(event.detail.message, "error");
  });

  // A grid request that was already on its way when the selection changed brings tiles
  // rendered with the old selection (Select all clicked while a filter change loads). Its
  // swap would untick boxes the server holds selected, so the grid is fetched once more.
  let gridRequests = 0;
  let gridStale = false;
  const isGridRequest = (event) => event.detail.target && event.detail.target.id === "results";
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (isGridRequest(event)) gridRequests++;
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (!isGridRequest(event)) return;
    gridRequests = Math.max(0, gridRequests - 1);
  });
  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (!isGridRequest(event) || gridRequests > 0 || !gridStale) return;
    gridStale = false;
    htmx.ajax("GET", window.location.pathname + window.location.search, { target: "#results", swap: "outerHTML" });
  });

  function onSelectionChanged(event) {
    if (gridRequests > 0) gridStale = true;
    const detail = event.detail || {};
    if (detail.action === "all") tiles().forEach((t) => setTile(t, true));
    if (detail.action === "clear") { tiles().forEach((t) => setTile(t, false)); anchorId = null; }
    if (detail.action === "add") toast("Added " + detail.added + " of the " + detail.inside + " rows inside the shape to the selection.", "info");
  }

  function toast(message, level) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = "toast toast-" + (level || "info");
    item.setAttribute("role", level === "error" ? "alert" : "status");
    item.textContent = message;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "link";
    close.textContent = "Dismiss";
    close.addEventListener("click", () => item.remove());
    item.appendChild(close);
    box.appendChild(item);
  }
  window.curioToast = toast;
})();
