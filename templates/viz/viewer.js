// Kilnflow's pipeline viewer: draws the embedded view model as an SVG graph.
// Layered (Sugiyama-style) layout: ranks by longest path, crossings reduced by
// barycentre sweeps, x positions by isotonic regression, so thousands of nodes
// lay out in well under a second and namespaces re-lay out as they open.
"use strict";
(function () {
  var model = JSON.parse(document.getElementById("kilnflow-model").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var RANK_GAP = 78, GAP = 26, CHAR = 7, PAD = 24, MIN_W = 64, DUMMY_W = 10;
  var run = model.run;
  var nodes = model.nodes || [], datasets = model.datasets || [];
  var byId = new Map();
  nodes.concat(datasets).forEach(function (v) {
    byId.set(v.id, v);
    v.ancestors = v.namespace ? prefixes(v.namespace) : [];
  });
  var state = {
    collapsed: new Set(model.namespaces || []),
    tags: new Set(),
    params: true,
    selected: null,
    transform: null,
  };
  var current = null;  // the drawn graph: vertices, edges, positions

  function prefixes(namespace) {
    var parts = namespace.split("."), out = [];
    for (var i = 1; i <= parts.length; i++) out.push(parts.slice(0, i).join("."));
    return out;
  }
  function esc(text) {
    return String(text).replace(/[&<>"]/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c];
    });
  }
  function seconds(value) {
    if (typeof value !== "number") return "";
    if (value < 0.001) return "<1 ms";
    if (value < 1) return Math.round(value * 1000) + " ms";
    if (value < 120) return value.toFixed(2) + " s";
    return Math.floor(value / 60) + " min " + Math.round(value % 60) + " s";
  }
  function element(id) { return document.getElementById(id); }

  // ---- the graph as currently filtered and collapsed ------------------------
  function representative(v) {
    for (var i = 0; i < v.ancestors.length; i++) {
      if (state.collapsed.has(v.ancestors[i])) return "ns:" + v.ancestors[i];
    }
    return v.id;
  }
  function visibleGraph() {
    var vertices = new Map(), edges = new Map(), nodeRep = new Map();
    function group(id) {
      var g = vertices.get(id);
      if (!g) {
        var namespace = id.slice(3);
        g = {id: id, kind: "namespace", namespace: namespace, members: [],
             label: namespace.split(".").pop(), ancestors: prefixes(namespace)};
        vertices.set(id, g);
      }
      return g;
    }
    nodes.forEach(function (n) {
      if (state.tags.size && !n.tags.some(function (t) { return state.tags.has(t); })) return;
      var rep = representative(n);
      nodeRep.set(n.id, rep);
      if (rep === n.id) vertices.set(n.id, {id: n.id, kind: "node", item: n, ancestors: n.ancestors});
      else group(rep).members.push(n);
    });
    (model.edges || []).forEach(function (edge) {
      var nodeEnd = edge[0].lastIndexOf("node:", 0) === 0 ? 0 : 1;
      var rep = nodeRep.get(edge[nodeEnd]);
      if (rep === undefined) return;
      var data = byId.get(edge[1 - nodeEnd]);
      if (data.kind === "parameters" && !state.params) return;
      var dataRep = representative(data);
      if (dataRep === data.id) {
        if (!vertices.has(data.id)) {
          vertices.set(data.id, {id: data.id, kind: data.kind, item: data, ancestors: data.ancestors});
        }
      } else {
        group(dataRep);
      }
      var pair = nodeEnd === 0 ? [rep, dataRep] : [dataRep, rep];
      if (pair[0] !== pair[1]) edges.set(pair[0] + "\u0000" + pair[1], pair);
    });
    vertices.forEach(describeVertex);
    return {vertices: Array.from(vertices.values()), edges: Array.from(edges.values())};
  }
  function describeVertex(v) {
    var item = v.item, sub = "";
    if (v.kind === "node") {
      v.label = item.label;
      v.status = item.status || "";
      if (item.status === "success") sub = seconds(item.duration);
      else if (item.status === "failed") sub = "\u2717 failed";
      else if (item.status) sub = item.status;
    } else if (v.kind === "namespace") {
      var statuses = v.members.map(function (m) { return m.status; });
      var total = v.members.reduce(function (sum, m) { return sum + (m.duration || 0); }, 0);
      v.status = !run ? "" : statuses.indexOf("failed") >= 0 ? "failed"
        : statuses.indexOf("pending") >= 0 ? "pending"
        : statuses.length && statuses.every(function (s) { return s === "success"; }) ? "success"
        : "not run";
      v.label = "\u25b8 " + v.label;
      sub = v.members.length + (v.members.length === 1 ? " node" : " nodes");
      if (run && total) sub += " \u00b7 " + seconds(total);
      if (v.status === "failed") sub += " \u00b7 \u2717 failed";
    } else {
      v.label = item.label;
      v.status = "";
      sub = item.type && item.kind === "dataset" ? item.type : "";
    }
    v.sub = sub;
    v.w = Math.max(MIN_W, v.label.length * CHAR + PAD, sub.length * CHAR * 0.85 + PAD);
    v.h = sub ? 40 : 28;
  }

  // ---- layout ------------------------------------------------------------------
  function layout(vertices, edgeList) {
    var n = vertices.length, index = new Map();
    vertices.forEach(function (v, i) { index.set(v.id, i); });
    var succ = [], pred = [], i;
    for (i = 0; i < n; i++) { succ.push([]); pred.push([]); }
    var edges = edgeList.map(function (e) { return [index.get(e[0]), index.get(e[1])]; });
    edges.forEach(function (e) { succ[e[0]].push(e[1]); pred[e[1]].push(e[0]); });

    // Ranks: longest path from the sources; a cycle (possible once a namespace
    // is collapsed) is broken at the vertex with the fewest unmet inputs.
    var rank = [], waiting = [], queued = new Uint8Array(n), done = new Uint8Array(n);
    var queue = [], head = 0, count = 0;
    for (i = 0; i < n; i++) {
      rank.push(0);
      waiting.push(pred[i].length);
      if (!waiting[i]) { queue.push(i); queued[i] = 1; }
    }
    while (count < n) {
      if (head === queue.length) {
        var best = -1;
        for (i = 0; i < n; i++) {
          if (!queued[i] && (best < 0 || waiting[i] < waiting[best])) best = i;
        }
        queue.push(best); queued[best] = 1;
      }
      var v = queue[head++];
      done[v] = 1; count++;
      succ[v].forEach(function (w) {
        if (done[w]) return;
        if (rank[v] + 1 > rank[w]) rank[w] = rank[v] + 1;
        if (--waiting[w] === 0 && !queued[w]) { queue.push(w); queued[w] = 1; }
      });
    }
    // Sources sit just above their first reader rather than all at the top.
    for (i = 0; i < n; i++) {
      if (!pred[i].length && succ[i].length) {
        rank[i] = Math.min.apply(null, succ[i].map(function (s) { return rank[s]; })) - 1;
      }
    }
    // Long edges pass through dummy vertices so they keep clear of others.
    var width = vertices.map(function (v) { return v.w; });
    var up = pred.map(function () { return []; }), down = pred.map(function () { return []; });
    var budget = 2 * n + 1000, routes = [];
    edges.forEach(function (e) {
      var a = e[0], b = e[1], chain = [a];
      if (rank[a] >= rank[b]) { routes.push({edge: e, chain: null}); return; }
      var span = rank[b] - rank[a];
      if (span > 1 && budget >= span - 1) {
        budget -= span - 1;
        for (var r = rank[a] + 1; r < rank[b]; r++) {
          var d = rank.length;
          rank.push(r); width.push(DUMMY_W); up.push([]); down.push([]);
          chain.push(d);
        }
      }
      chain.push(b);
      for (var k = 1; k < chain.length; k++) {
        var p = chain[k - 1], q = chain[k];
        if (rank[q] === rank[p] + 1) { down[p].push(q); up[q].push(p); }
      }
      routes.push({edge: e, chain: chain});
    });
    var total = rank.length, layers = [], pos = new Float64Array(total);
    for (i = 0; i < total; i++) {
      (layers[rank[i]] || (layers[rank[i]] = [])).push(i);
    }
    layers = layers.filter(Boolean);
    var rowOf = new Int32Array(total);
    layers.forEach(function (layer, r) {
      layer.forEach(function (v, j) { pos[v] = j; rowOf[v] = r; });
    });
    // Crossings: barycentre sweeps down and up.
    var key = new Float64Array(total), groupKey = new Float64Array(total);
    var group = [];  // the outermost open namespace of each vertex; null for dummies
    for (i = 0; i < total; i++) {
      var ancestors = i < n ? vertices[i].ancestors || [] : [];
      group.push(ancestors.length && !state.collapsed.has(ancestors[0]) ? ancestors[0] : null);
    }
    function sortLayer(layer, neighbours) {
      for (var i = 0; i < layer.length; i++) {
        var v = layer[i], ns = neighbours[v], sum = 0;
        for (var j = 0; j < ns.length; j++) sum += pos[ns[j]];
        key[v] = ns.length ? sum / ns.length : pos[v];
      }
      // Members of one open namespace stay side by side, where their mean puts them,
      // so the namespace's box holds few strangers.
      var sums = new Map(), counts = new Map();
      for (i = 0; i < layer.length; i++) {
        var g = group[layer[i]];
        if (g === null) continue;
        sums.set(g, (sums.get(g) || 0) + key[layer[i]]);
        counts.set(g, (counts.get(g) || 0) + 1);
      }
      for (i = 0; i < layer.length; i++) {
        var own = group[layer[i]];
        groupKey[layer[i]] = own === null ? key[layer[i]] : sums.get(own) / counts.get(own);
      }
      layer.sort(function (a, b) {
        return groupKey[a] - groupKey[b] || key[a] - key[b] || pos[a] - pos[b];
      });
      for (i = 0; i < layer.length; i++) pos[layer[i]] = i;
    }
    var sweeps = total > 20000 ? 2 : 8, s, r2;
    for (s = 0; s < sweeps; s++) {
      if (s % 2 === 0) for (r2 = 1; r2 < layers.length; r2++) sortLayer(layers[r2], up);
      else for (r2 = layers.length - 2; r2 >= 0; r2--) sortLayer(layers[r2], down);
    }
    // x: as close to the neighbours' mean as non-overlap allows (isotonic regression).
    var x = new Float64Array(total);
    function place(layer, desired) {
      var offsets = [0], j;
      for (j = 1; j < layer.length; j++) {
        var apart = group[layer[j - 1]] !== group[layer[j]] && layer[j - 1] < n && layer[j] < n;
        offsets.push(offsets[j - 1] + (width[layer[j - 1]] + width[layer[j]]) / 2 + GAP + (apart ? 2 * GAP : 0));
      }
      var blocks = [];
      for (j = 0; j < layer.length; j++) {
        blocks.push({sum: desired[j] - offsets[j], count: 1});
        while (blocks.length > 1) {
          var last = blocks[blocks.length - 1], prev = blocks[blocks.length - 2];
          if (prev.sum / prev.count <= last.sum / last.count) break;
          prev.sum += last.sum; prev.count += last.count; blocks.pop();
        }
      }
      j = 0;
      blocks.forEach(function (block) {
        for (var c = 0; c < block.count; c++, j++) x[layer[j]] = block.sum / block.count + offsets[j];
      });
    }
    function mean(list, fallback) {
      if (!list.length) return fallback;
      var sum = 0;
      for (var j = 0; j < list.length; j++) sum += x[list[j]];
      return sum / list.length;
    }
    layers.forEach(function (layer) { place(layer, layer.map(function () { return 0; })); });
    for (s = 0; s < 5; s++) {
      if (s % 2 === 0) {
        for (r2 = 1; r2 < layers.length; r2++) {
          place(layers[r2], layers[r2].map(function (v) { return mean(up[v], x[v]); }));
        }
      } else {
        for (r2 = layers.length - 2; r2 >= 0; r2--) {
          place(layers[r2], layers[r2].map(function (v) { return mean(down[v], x[v]); }));
        }
      }
    }
    vertices.forEach(function (v, j) { v.x = x[j]; v.y = rowOf[j] * RANK_GAP; });
    return routes.map(function (route) {
      var a = vertices[route.edge[0]], b = vertices[route.edge[1]];
      var points = route.chain
        ? route.chain.map(function (p) { return [x[p], rowOf[p] * RANK_GAP]; })
        : null;
      return {from: a, to: b, points: points};
    });
  }

  function edgePath(route) {
    var a = route.from, b = route.to;
    var start = [a.x, a.y + a.h / 2], end = [b.x, b.y - b.h / 2];
    if (!route.points) {
      return "M" + start + "C" + [a.x, a.y + a.h / 2 + 70] + " " + [b.x, b.y - b.h / 2 - 70] + " " + end;
    }
    var points = route.points.slice(1, -1);
    points.unshift(start); points.push(end);
    var d = "M" + points[0];
    for (var i = 1; i < points.length; i++) {
      var p = points[i - 1], q = points[i], mid = (p[1] + q[1]) / 2;
      d += "C" + [p[0], mid] + " " + [q[0], mid] + " " + q;
    }
    return d;
  }

  // ---- drawing -----------------------------------------------------------------
  // Zoomed in, each vertex and edge in and around the window is its own SVG
  // element (culled, so the DOM stays small); zoomed out past FAR, the whole
  // graph is a handful of paths, one per colour: an overview costs a few elements.
  var FAR = 0.45;
  var svg = element("graph"), viewport = element("viewport");
  var drawn = null;  // what the DOM shows: {far, region}

  function draw() {
    var graph = visibleGraph();
    var routes = layout(graph.vertices, graph.edges);
    routes.forEach(function (route) {
      var a = route.from, b = route.to;
      route.x0 = Math.min(a.x, b.x); route.x1 = Math.max(a.x, b.x);
      route.y0 = Math.min(a.y, b.y); route.y1 = Math.max(a.y, b.y);
      (route.points || []).forEach(function (p) {
        route.x0 = Math.min(route.x0, p[0]); route.x1 = Math.max(route.x1, p[0]);
      });
    });
    current = {
      vertices: graph.vertices,
      routes: routes,
      byId: new Map(graph.vertices.map(function (v) { return [v.id, v]; })),
      bounds: bounds(graph.vertices),
    };
    drawn = null;
    drawNamespaceList();
    if (state.transform) render();
  }
  function vertexHtml(v) {
    var cls = "v " + v.kind + (v.status ? " " + v.status.replace(" ", "-") : "")
      + (state.selected === v.id ? " selected" : "");
    var labelY = v.sub ? -4 : 4;
    return '<g class="' + cls + '" data-id="' + esc(v.id) + '" data-status="' + esc(v.status)
      + '" transform="translate(' + v.x.toFixed(1) + "," + v.y.toFixed(1) + ')">'
      + '<rect x="' + (-v.w / 2) + '" y="' + (-v.h / 2) + '" width="' + v.w + '" height="' + v.h
      + '" rx="' + (v.kind === "node" || v.kind === "namespace" ? 4 : 13) + '"></rect>'
      + '<text class="label" y="' + labelY + '">' + esc(v.label) + "</text>"
      + (v.sub ? '<text class="sub" y="14">' + esc(v.sub) + "</text>" : "") + "</g>";
  }
  function edgeHtml(route) {
    var lit = state.selected && (route.from.id === state.selected || route.to.id === state.selected);
    return '<path class="edge' + (route.points ? "" : " back") + (lit ? " lit" : "") + '" data-from="'
      + esc(route.from.id) + '" data-to="' + esc(route.to.id) + '" marker-end="url(#arrow)" d="'
      + edgePath(route) + '"></path>';
  }
  function overlaps(box, region) {
    return box.x1 >= region.x0 && box.x0 <= region.x1 && box.y1 >= region.y0 && box.y0 <= region.y1;
  }
  function render() {
    var t = state.transform, size = svgSize();
    var view = {x0: -t.x / t.k, y0: -t.y / t.k, x1: (size.width - t.x) / t.k, y1: (size.height - t.y) / t.k};
    var far = t.k < FAR;
    if (drawn && drawn.far === far && (far || (view.x0 >= drawn.region.x0 && view.x1 <= drawn.region.x1
        && view.y0 >= drawn.region.y0 && view.y1 <= drawn.region.y1))) return;
    if (far) {
      var shapes = {}, lines = [];
      current.vertices.forEach(function (v) {
        var cls = v.kind + (v.status ? " " + v.status.replace(" ", "-") : "");
        shapes[cls] = (shapes[cls] || "") + "M" + (v.x - v.w / 2).toFixed(0) + "," + (v.y - v.h / 2).toFixed(0)
          + "h" + v.w.toFixed(0) + "v" + v.h + "h" + (-v.w).toFixed(0) + "z";
      });
      current.routes.forEach(function (route) {  // straight lines: an overview needs no more
        lines.push("M" + route.from.x.toFixed(0) + "," + route.from.y.toFixed(0)
          + "L" + route.to.x.toFixed(0) + "," + route.to.y.toFixed(0));
      });
      element("groups").innerHTML = groupsHtml(current.vertices);
      element("edges").innerHTML = '<path class="edge overview" d="' + lines.join("") + '"></path>';
      element("vertices").innerHTML = Object.keys(shapes).map(function (cls) {
        return '<path class="overview ' + cls + '" d="' + shapes[cls] + '"></path>';
      }).join("");
      drawn = {far: true};
      return;
    }
    var w = view.x1 - view.x0, h = view.y1 - view.y0;
    var region = {x0: view.x0 - w / 2, x1: view.x1 + w / 2, y0: view.y0 - h / 2, y1: view.y1 + h / 2};
    element("groups").innerHTML = groupsHtml(current.vertices);
    element("edges").innerHTML = current.routes.filter(function (route) { return overlaps(route, region); })
      .map(edgeHtml).join("");
    element("vertices").innerHTML = current.vertices.filter(function (v) {
      return overlaps({x0: v.x - v.w / 2, x1: v.x + v.w / 2, y0: v.y - v.h / 2, y1: v.y + v.h / 2}, region);
    }).map(vertexHtml).join("");
    drawn = {far: false, region: region};
  }
  function groupsHtml(vertices) {
    var html = "";
    (model.namespaces || []).forEach(function (namespace) {
      if (state.collapsed.has(namespace)) return;
      if (prefixes(namespace).some(function (p) { return state.collapsed.has(p); })) return;
      var inside = vertices.filter(function (v) { return v.ancestors.indexOf(namespace) >= 0; });
      if (!inside.length) return;
      var b = bounds(inside);
      var depth = namespace.split(".").length, margin = 22 - 4 * Math.min(depth, 3);
      html += '<g class="group" data-namespace="' + esc(namespace) + '"><rect x="' + (b.x0 - margin)
        + '" y="' + (b.y0 - margin - 10) + '" width="' + (b.x1 - b.x0 + 2 * margin) + '" height="'
        + (b.y1 - b.y0 + 2 * margin + 10) + '" rx="8"></rect><text x="' + (b.x0 - margin + 6) + '" y="'
        + (b.y0 - margin + 4) + '">\u25be ' + esc(namespace) + "</text></g>";
    });
    return html;
  }

  // ---- view: pan, zoom, fit ------------------------------------------------------
  var size = null;
  function svgSize() {
    if (!size) {
      var box = svg.getBoundingClientRect();
      size = {width: box.width, height: box.height, left: box.left, top: box.top};
    }
    return size;
  }
  window.addEventListener("resize", function () { size = null; drawn = null; render(); });
  var pending = false;
  function applyTransform() {
    var t = state.transform;
    viewport.setAttribute("transform", "translate(" + t.x + "," + t.y + ") scale(" + t.k + ")");
    render();
  }
  function bounds(vertices) {
    var b = {x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity};
    vertices.forEach(function (v) {
      b.x0 = Math.min(b.x0, v.x - v.w / 2); b.x1 = Math.max(b.x1, v.x + v.w / 2);
      b.y0 = Math.min(b.y0, v.y - v.h / 2); b.y1 = Math.max(b.y1, v.y + v.h / 2);
    });
    return b;
  }
  function fit() {
    var box = svgSize();
    if (!current.vertices.length) { state.transform = {x: 0, y: 0, k: 1}; applyTransform(); return; }
    var b = current.bounds, margin = 40;
    var k = Math.min((box.width - 2 * margin) / (b.x1 - b.x0), (box.height - 2 * margin) / (b.y1 - b.y0), 1.4);
    k = Math.max(k, 0.01);
    state.transform = {
      k: k,
      x: box.width / 2 - k * (b.x0 + b.x1) / 2,
      y: k * (b.y1 - b.y0) + 2 * margin > box.height ? margin - k * b.y0 : box.height / 2 - k * (b.y0 + b.y1) / 2,
    };
    applyTransform();
  }
  function centreOn(vertices) {
    var box = svgSize(), b = bounds(vertices), t = state.transform;
    t.k = Math.max(t.k, FAR);
    t.x = box.width / 2 - t.k * (b.x0 + b.x1) / 2;
    t.y = box.height / 2 - t.k * (b.y0 + b.y1) / 2;
    applyTransform();
  }
  function zoomAt(px, py, k) {
    var t = state.transform;
    k = Math.min(4, Math.max(0.01, k));
    t.x = px - (px - t.x) * k / t.k; t.y = py - (py - t.y) * k / t.k; t.k = k;
    schedule();
  }
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; applyTransform(); });
  }
  var drag = null;
  svg.addEventListener("pointerdown", function (event) {
    drag = {x: event.clientX, y: event.clientY, moved: false};
  });
  window.addEventListener("pointermove", function (event) {
    if (!drag) return;
    var dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true;
    svg.classList.add("dragging");
    drag.x = event.clientX; drag.y = event.clientY;
    state.transform.x += dx; state.transform.y += dy;
    schedule();
  });
  window.addEventListener("pointerup", function () {
    svg.classList.remove("dragging");
    setTimeout(function () { drag = null; }, 0);
  });
  svg.addEventListener("wheel", function (event) {
    event.preventDefault();
    var box = svgSize();
    zoomAt(event.clientX - box.left, event.clientY - box.top, state.transform.k * Math.exp(-event.deltaY * 0.0015));
  }, {passive: false});
  svg.addEventListener("click", function (event) {
    if (drag && drag.moved) return;
    if (drawn && drawn.far) {  // the overview has no vertices to click: zoom in there
      var box = svgSize();
      zoomAt(event.clientX - box.left, event.clientY - box.top, FAR * 2);
      return;
    }
    var group = event.target.closest(".group");
    if (group) { state.collapsed.add(group.getAttribute("data-namespace")); draw(); return; }
    var target = event.target.closest(".v");
    if (!target) return;
    var v = current.byId.get(target.getAttribute("data-id"));
    if (v.kind === "namespace") { expand(v.namespace); return; }
    select(v.id);
  });
  function expand(namespace) {
    state.collapsed.delete(namespace);
    draw();
    var inside = current.vertices.filter(function (v) { return v.ancestors.indexOf(namespace) >= 0; });
    if (inside.length) centreOn(inside);
  }

  // ---- sidebar -------------------------------------------------------------------
  function select(id) {
    state.selected = id;
    drawn = null;
    render();
    showDetails(current.byId.get(id));
  }
  function row(name, value) {
    if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) return "";
    if (Array.isArray(value)) value = value.join(", ");
    return "<dt>" + esc(name) + "</dt><dd>" + esc(value) + "</dd>";
  }
  function block(name, value) {
    if (!value || (typeof value === "object" && !Object.keys(value).length)) return "";
    return "<dt>" + esc(name) + "</dt><dd><pre>" + esc(JSON.stringify(value, null, 2)) + "</pre></dd>";
  }
  function showDetails(v) {
    if (!v) { element("details").innerHTML = ""; return; }
    var html = "<h2>" + esc(v.kind) + "</h2>";
    var item = v.item || {};
    html += "<dl>" + row("name", item.name) + row("namespace", item.namespace);
    if (v.kind === "node") {
      html += row("function", item.func) + row("inputs", item.inputs) + row("outputs", item.outputs)
        + row("confirms", item.confirms) + row("tags", item.tags) + row("outcome", item.status) + row("duration", seconds(item.duration));
    } else {
      html += row("type", item.type) + block("details", item.details) + block("metadata", item.metadata);
    }
    element("details").innerHTML = html + "</dl>";
  }
  function drawNamespaceList() {
    var list = element("namespaces");
    if (!(model.namespaces || []).length) { list.innerHTML = '<li class="empty">none</li>'; return; }
    list.innerHTML = model.namespaces.map(function (namespace) {
      var depth = namespace.split(".").length - 1;
      return '<li style="padding-left:' + depth * 14 + 'px"><label><input type="checkbox" data-namespace="'
        + esc(namespace) + '"' + (state.collapsed.has(namespace) ? "" : " checked") + "> "
        + esc(namespace.split(".").pop()) + "</label></li>";
    }).join("");
  }
  element("namespaces").addEventListener("change", function (event) {
    var namespace = event.target.getAttribute("data-namespace");
    if (event.target.checked) expand(namespace);
    else { state.collapsed.add(namespace); draw(); }
  });
  function drawTags() {
    var tags = model.tags || [];
    element("tags").innerHTML = tags.length ? tags.map(function (tag) {
      return '<li><label><input type="checkbox" data-tag="' + esc(tag) + '"> ' + esc(tag) + "</label></li>";
    }).join("") : '<li class="empty">none</li>';
  }
  element("tags").addEventListener("change", function (event) {
    var tag = event.target.getAttribute("data-tag");
    if (event.target.checked) state.tags.add(tag); else state.tags.delete(tag);
    draw(); fit();
  });
  element("show-params").addEventListener("change", function (event) {
    state.params = event.target.checked; draw();
  });
  element("expand-all").addEventListener("click", function () { state.collapsed.clear(); draw(); fit(); });
  element("collapse-all").addEventListener("click", function () {
    state.collapsed = new Set(model.namespaces || []); draw(); fit();
  });
  element("fit").addEventListener("click", fit);

  function drawHeader() {
    var project = model.project || {};
    element("title").textContent = project.package || "Kilnflow";
    element("subtitle").textContent = "pipeline " + model.pipeline + " \u00b7 " + nodes.length
      + (nodes.length === 1 ? " node" : " nodes") + " \u00b7 " + (project.mode || "") + " mode";
    var html = "<h2>Run</h2>";
    if (run) {
      var known = ["success", "failed", "running", "interrupted"];
      html += '<p><span class="outcome ' + (known.indexOf(run.outcome) >= 0 ? run.outcome : "other") + '">'
        + esc(run.outcome) + "</span> " + esc(seconds(run.seconds)) + "</p><dl>"
        + row("session", run.session_id) + row("started", run.started_at) + row("env", run.env)
        + row("runner", run.runner) + row("failed node", run.failed_node) + "</dl>";
      if (run.error) html += '<p class="error">' + esc(run.error) + "</p>";
    } else {
      html += '<p class="hint">No recorded run of this pipeline yet: nodes are not coloured.</p>';
    }
    element("run").innerHTML = html;
    var problems = [model.error, model.catalog_error && "Catalog: " + model.catalog_error]
      .concat(model.warnings || []).filter(Boolean);
    element("problems").innerHTML = problems.map(function (p) { return '<p class="error">' + esc(p) + "</p>"; }).join("");
  }

  // ---- served pages: switch runs, reload on change -----------------------------
  function setupServer(serve) {
    element("switcher").hidden = false;
    var pipelineSelect = element("pipeline-select"), sessionSelect = element("session-select");
    pipelineSelect.innerHTML = serve.pipelines.map(function (name) {
      return "<option" + (name === model.pipeline ? " selected" : "") + ">" + esc(name) + "</option>";
    }).join("");
    var chosen = run ? run.session_id : "";
    sessionSelect.innerHTML = '<option value="">latest run of the pipeline</option>'
      + serve.sessions.map(function (s) {
        return '<option value="' + esc(s.session_id) + '"' + (s.session_id === chosen ? " selected" : "") + ">"
          + esc(s.session_id + " \u00b7 " + s.outcome + " \u00b7 " + s.pipeline) + "</option>";
      }).join("");
    function go(query) { location.search = new URLSearchParams(query).toString(); }
    pipelineSelect.addEventListener("change", function () { go({pipeline: pipelineSelect.value}); });
    sessionSelect.addEventListener("change", function () {
      go(sessionSelect.value ? {session: sessionSelect.value} : {pipeline: model.pipeline});
    });
    setInterval(function () {
      fetch("/_version", {cache: "no-store"}).then(function (response) { return response.text(); })
        .then(function (version) { if (version && version !== serve.version) location.reload(); })
        .catch(function () { return null; });
    }, serve.poll_ms || 1000);
  }

  drawHeader();
  drawTags();
  if (model.serve) setupServer(model.serve);
  draw();
  fit();
  svg.getBoundingClientRect();  // lay out what was drawn, so the time below includes it
  document.body.setAttribute("data-rendered-ms", performance.now().toFixed(0));
})();
