/* The projector: a 2-D map of an embedding space drawn on a <canvas>.
 *
 * The server computes the map (PCA, in [0, 1] × [0, 1]) and resolves selections: a box or
 * a lasso is posted as a shape in that same frame, and the server adds the rows inside to
 * the curator's selection (the browser never ships ids). The map's y axis points up. */
(function () {
  "use strict";

  const root = document.getElementById("projector");
  if (!root) return;
  const canvas = document.getElementById("map-canvas");
  const status = document.getElementById("map-status");
  const tip = document.getElementById("map-tip");
  const ctx = canvas.getContext("2d");
  const PAD = 16;
  const UNCOLORED = "#5f6b7a";
  let map = null; // {ids, x, y, c, legend}
  let drag = null; // {tool, points: [[x, y] in map frame]}

  function tool() {
    const checked = document.querySelector("input[name=tool]:checked");
    return checked ? checked.value : "box";
  }

  // map frame [0, 1] <-> canvas pixels
  function toPx(x, y) {
    return [PAD + x * (canvas.width - 2 * PAD), canvas.height - PAD - y * (canvas.height - 2 * PAD)];
  }
  function toMap(px, py) {
    const x = (px - PAD) / (canvas.width - 2 * PAD);
    const y = (canvas.height - PAD - py) / (canvas.height - 2 * PAD);
    return [Math.min(1.05, Math.max(-0.05, x)), Math.min(1.05, Math.max(-0.05, y))];
  }
  function eventPx(event) {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * (canvas.width / rect.width), (event.clientY - rect.top) * (canvas.height / rect.height)];
  }

  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!map) return;
    const colors = map.legend.map((entry) => entry.color);
    const radius = map.ids.length > 20000 ? 1.5 : 3;
    for (let i = 0; i < map.ids.length; i++) {
      const [px, py] = toPx(map.x[i], map.y[i]);
      ctx.fillStyle = map.c[i] >= 0 ? colors[map.c[i]] : UNCOLORED;
      ctx.fillRect(px - radius, py - radius, 2 * radius, 2 * radius);
    }
    if (drag && drag.points.length) {
      ctx.save();
      ctx.strokeStyle = "#111";
      ctx.setLineDash([5, 4]);
      ctx.fillStyle = "rgba(0, 114, 178, 0.12)";
      ctx.beginPath();
      if (drag.tool === "box") {
        const [ax, ay] = toPx(...drag.points[0]);
        const [bx, by] = toPx(...drag.points[drag.points.length - 1]);
        ctx.rect(ax, ay, bx - ax, by - ay);
      } else {
        drag.points.forEach((p, i) => { const [px, py] = toPx(...p); if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py); });
        ctx.closePath();
      }
      ctx.fill();
      ctx.stroke();
      ctx.restore();
    }
  }

  function legend() {
    const list = document.getElementById("legend");
    if (!list) return;
    list.textContent = "";
    map.legend.forEach((entry) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = entry.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(entry.label + " (" + entry.count + ")"));
      list.appendChild(item);
    });
  }

  function load() {
    fetch(root.dataset.pointsUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => response.json())
      .then((data) => {
        if (data.status === "computing") {
          status.textContent = "Computing the map of " + data.points + " points in the background…";
          setTimeout(load, 2000);
          return;
        }
        if (data.status !== "ready") {
          status.textContent = data.message || "The map could not be drawn.";
          status.classList.add("error");
          return;
        }
        map = data;
        status.textContent = map.ids.length + " points in " + map.space + ". Drag to select; hover for a thumbnail.";
        root.dataset.ready = "1";
        legend();
        draw();
      })
      .catch(() => { status.textContent = "Could not load the map. Check your connection and reload."; });
  }

  function nearest(px, py) {
    if (!map) return -1;
    let best = -1;
    let bestDist = 64; // within 8 px
    for (let i = 0; i < map.ids.length; i++) {
      const [qx, qy] = toPx(map.x[i], map.y[i]);
      const d = (qx - px) * (qx - px) + (qy - py) * (qy - py);
      if (d < bestDist) { bestDist = d; best = i; }
    }
    return best;
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!map) return;
    canvas.setPointerCapture(event.pointerId);
    drag = { tool: tool(), points: [toMap(...eventPx(event))] };
  });
  canvas.addEventListener("pointermove", (event) => {
    const [px, py] = eventPx(event);
    if (drag) {
      const point = toMap(px, py);
      if (drag.tool === "box") drag.points = [drag.points[0], point];
      else drag.points.push(point);
      tip.hidden = true;
      draw();
      return;
    }
    const i = nearest(px, py);
    if (i < 0) { tip.hidden = true; return; }
    const img = tip.querySelector("img");
    const src = "/rows/" + map.ids[i] + "/thumbnail/";
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
    const entry = map.c[i] >= 0 ? map.legend[map.c[i]].label : "";
    tip.querySelector("span").textContent = "row " + map.ids[i] + (entry ? " · " + entry : "");
    tip.style.left = (canvas.offsetLeft + px * (canvas.clientWidth / canvas.width) + 12) + "px";
    tip.style.top = (canvas.offsetTop + py * (canvas.clientHeight / canvas.height) + 12) + "px";
    tip.hidden = false;
  });
  canvas.addEventListener("pointerleave", () => { tip.hidden = true; });
  canvas.addEventListener("pointerup", () => {
    if (!drag) return;
    const shape = drag;
    drag = null;
    draw();
    const values = { shape: shape.tool, filter_qs: root.dataset.filterQs, map_space: root.dataset.space };
    if (shape.tool === "box") {
      if (shape.points.length < 2) return;
      [values.x0, values.y0] = shape.points[0];
      [values.x1, values.y1] = shape.points[1];
    } else {
      if (shape.points.length < 3) return;
      values.points = JSON.stringify(shape.points);
    }
    htmx.ajax("POST", root.dataset.selectUrl, { source: canvas, values: values, target: "#selection-bar", swap: "outerHTML" });
  });

  load();
})();
