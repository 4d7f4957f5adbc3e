"""The health page's style sheet and script, inline: the page fetches nothing.

The script builds every element it adds with the DOM (``textContent``, never HTML from the
data), so a title or slug is shown as text whatever it holds. It reads the explorer's data
(``page_map.explorer_data``) once, and draws on demand: a community's members when its disc
or name is chosen, a pattern's neighbourhood (its links out and in, the neighbours' own links
among them) when a pattern is chosen from a list, the search box or the drawing itself.
"""

from __future__ import annotations

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;
background:#fafafa}
header{padding:16px 24px;background:#23313f;color:#fff}header h1{margin:0;font-size:20px}
main{padding:8px 24px 40px;max-width:1300px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:12px 16px;margin:14px 0}
h2{font-size:16px;margin:4px 0 10px}h3{font-size:14px;margin:10px 0 4px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{border:1px solid #e3e3e3;border-radius:6px;padding:8px 12px;min-width:120px;
background:#fdfdfd}
.tile b{display:block;font-size:20px}
.flag{border-left:4px solid #e15759;padding:4px 10px;margin:6px 0;background:#fff5f5}
.ok{border-left:4px solid #59a14f;padding:4px 10px;background:#f4fbf3}
#graph,#community-map,#neighbourhood{width:100%;height:auto;border:1px solid #eee;
background:#fff}
#graph .edge{stroke-opacity:.25;stroke-width:.7}#graph .edge.human{stroke:#4e79a7}
#graph .edge.inferred{stroke:#e15759}
#graph .node{stroke:#fff;stroke-width:.8}#graph .labels text{font-size:11px;fill:#333}
#graph.focus .node{opacity:.12}#graph.focus .node.on{opacity:1}
#community-map .clink{stroke:#7a8793;stroke-opacity:.35;stroke-linecap:round}
#community-map .cnode{cursor:pointer}
#community-map .cnode circle{fill-opacity:.28;stroke-width:1.5}
#community-map .cnode text{font-size:11px;fill:#222;pointer-events:none}
#community-map .cnode text.size{fill:#555;font-size:10px}
#community-map.focus .cnode{opacity:.25}#community-map.focus .cnode.on{opacity:1}
#community-map.focus .clink{stroke-opacity:.06}
#community-map.focus .clink.on{stroke-opacity:.7;stroke:#23313f}
#community-map .cnode.on circle{stroke-width:3;fill-opacity:.45}
.explorer{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,2fr);gap:14px}
.explorer input{width:100%;box-sizing:border-box;font:inherit;padding:4px 8px;
border:1px solid #ccc;border-radius:4px}
.pick{list-style:none;margin:6px 0;padding:0;max-height:380px;overflow:auto;
border-top:1px solid #eee}
.pick li{margin:0}.pick button{all:unset;cursor:pointer;display:block;padding:2px 4px;
border-bottom:1px solid #f3f3f3;width:100%;box-sizing:border-box;font-size:13px}
.pick button:hover,.pick button:focus{background:#eef4fb}
.pick small{color:#666}.muted{color:#666;font-size:13px}
.lists{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:12px}
#neighbourhood:empty{display:none}#neighbourhood .nlink{stroke-width:1.2;stroke-opacity:.7}
#neighbourhood .nlink.human{stroke:#4e79a7}#neighbourhood .nlink.inferred{stroke:#e15759}
#neighbourhood .nlink.in{stroke-dasharray:5 3}
#neighbourhood .among{stroke:#bbb;stroke-opacity:.6;stroke-width:.7}
#neighbourhood .nnode{cursor:pointer;stroke:#fff;stroke-width:1}
#neighbourhood text{font-size:11px;fill:#333}#neighbourhood text.centre{font-size:13px;
font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:4px}
.chart{width:100%;max-width:900px;height:auto}.chart .title{font-weight:600;font-size:13px}
.chart .axis{font-size:11px;fill:#555}.chart .grid{stroke:#eee}
.chart .frame{fill:none;stroke:#ccc}.chart .uniform{stroke:#999;stroke-dasharray:4 3}
.charts{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,1fr);gap:12px}
.legend{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.legend button{border:1px solid #ddd;background:#fff;border-radius:12px;padding:2px 8px;
cursor:pointer;font:inherit;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 10px 2px 0;text-align:left}
ul.examples{font-size:13px;margin:4px 0;padding-left:18px}
"""

SCRIPT = r"""
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var RING = 48, SHOWN = 300, FOUND = 40, LABEL = 26;
  var data = JSON.parse(document.getElementById('graph-data').textContent);
  var P = data.patterns, C = data.communities, N = data.nodes, T = data.types, L = data.links;
  var out = P.map(function () { return []; }), inn = P.map(function () { return []; });
  for (var k = 0; k < L.length; k += 3) {
    out[L[k]].push([L[k + 1], L[k + 2]]);
    inn[L[k + 1]].push([L[k], L[k + 2]]);
  }
  var degree = P.map(function (p, i) { return out[i].length + inn[i].length; });
  var members = C.map(function () { return []; });
  P.forEach(function (p, i) { members[p[2]].push(i); });
  members.forEach(function (m) {
    m.sort(function (a, b) { return degree[b] - degree[a] || (P[a][0] < P[b][0] ? -1 : 1); });
  });
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (a) { e.setAttribute(a, attrs[a]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function colour(i) { return N[C[P[i][2]][1]][2]; }
  function kind(code) { return (code & 1 ? 'inferred' : 'human'); }
  function typeOf(code) { return T[code >> 1]; }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function patternButton(i, note) {
    var li = el('li'), b = el('button', P[i][0]);
    b.title = P[i][1];
    if (note) b.appendChild(el('small', ' ' + note));
    b.addEventListener('click', function () { showPattern(i); });
    li.appendChild(b);
    return li;
  }
  function fill(list, items, make, more) {
    clear(list);
    items.slice(0, more).forEach(function (x) { list.appendChild(make(x)); });
    if (items.length > more) {
      var li = el('li'), b = el('button', '… ' + (items.length - more) + ' more');
      b.addEventListener('click', function () { fill(list, items, make, items.length); });
      li.appendChild(b);
      list.appendChild(li);
    }
  }

  // --- the community map ---------------------------------------------------------------
  var map = $('community-map');
  var links = map ? Array.prototype.slice.call(map.querySelectorAll('line.clink')) : [];
  var discs = map ? Array.prototype.slice.call(map.querySelectorAll('g.cnode')) : [];
  if (map) {
    $('map-status').textContent = N.length + ' disc' + (N.length === 1 ? '' : 's') + ' for ' +
      C.length + ' communit' + (C.length === 1 ? 'y' : 'ies') + ', ' + links.length + ' line' +
      (links.length === 1 ? '' : 's') + ' between them; choose a disc to list its patterns';
  }
  function focusNode(n) {
    if (!map) return;
    map.classList.toggle('focus', n !== null);
    discs.forEach(function (d) { d.classList.toggle('on', +d.getAttribute('data-node') === n); });
    links.forEach(function (l) {
      l.classList.toggle('on', +l.getAttribute('data-a') === n || +l.getAttribute('data-b') === n);
    });
  }
  function showNode(n) {
    var ids = [];
    C.forEach(function (c, i) { if (c[1] === n) ids.push(i); });
    focusNode(n);
    if (ids.length === 1) { showCommunity(ids[0]); return; }
    var box = clear($('community'));
    box.appendChild(el('h3', N[n][0] + ' (' + N[n][1] + ' patterns, ' + ids.length + ' ids)'));
    var list = el('ul', undefined, 'pick');
    fill(list, ids, function (c) {
      var li = el('li'), b = el('button', C[c][0]);
      b.appendChild(el('small', ' ' + members[c].length));
      b.addEventListener('click', function () { showCommunity(c); });
      li.appendChild(b);
      return li;
    }, SHOWN);
    box.appendChild(list);
  }
  function showCommunity(c) {
    focusNode(C[c][1]);
    var box = clear($('community'));
    box.setAttribute('data-community', C[c][0]);
    box.appendChild(el('h3', C[c][0] + ' (' + members[c].length + ' patterns)'));
    box.appendChild(el('p', 'most linked first; choose one to draw its neighbourhood', 'muted'));
    var list = el('ul', undefined, 'pick');
    fill(list, members[c], function (i) { return patternButton(i, degree[i] + ' links'); },
         SHOWN);
    box.appendChild(list);
  }
  discs.forEach(function (d) {
    var n = +d.getAttribute('data-node');
    d.addEventListener('click', function () { showNode(n); });
    d.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); showNode(n); }
    });
  });

  // --- search ----------------------------------------------------------------------------
  var search = $('pattern-search');
  search.addEventListener('input', function () {
    var q = search.value.trim().toLowerCase(), found = [];
    if (q) {
      for (var i = 0; i < P.length && found.length < 500; i++) {
        if (P[i][0].indexOf(q) >= 0 || P[i][1].toLowerCase().indexOf(q) >= 0) found.push(i);
      }
    }
    $('search-status').textContent = q ? found.length + (found.length >= 500 ? '+' : '') +
      ' found' : '';
    fill($('search-results'), found, function (i) { return patternButton(i, P[i][1]); },
         FOUND);
  });

  // --- a pattern's neighbourhood ---------------------------------------------------------
  function showPattern(i) {
    var seen = {}, around = [];
    out[i].concat(inn[i]).forEach(function (x) {
      if (x[0] !== i && !seen[x[0]]) { seen[x[0]] = 1; around.push(x[0]); }
    });
    around.sort(function (a, b) {
      return P[a][2] - P[b][2] || degree[b] - degree[a] || (P[a][0] < P[b][0] ? -1 : 1);
    });
    var ring = around.slice(0, RING), W = 900, H = 720, cx = W / 2, cy = H / 2, R = 175;
    var at = {}, angle = {};
    at[i] = [cx, cy];
    ring.forEach(function (j, n) {
      var a = -Math.PI / 2 + 2 * Math.PI * n / Math.max(ring.length, 1);
      angle[j] = a;
      at[j] = [cx + R * Math.cos(a), cy + R * Math.sin(a)];
    });
    var draw = clear($('neighbourhood'));
    draw.setAttribute('data-pattern', P[i][0]);
    var g1 = svg('g', {}), g2 = svg('g', {}), g3 = svg('g', {});
    draw.appendChild(g1); draw.appendChild(g2); draw.appendChild(g3);
    ring.forEach(function (j) {
      out[j].forEach(function (x) {
        if (x[0] !== i && at[x[0]] && x[0] !== j) {
          g1.appendChild(svg('line', {'class': 'among', x1: at[j][0], y1: at[j][1],
                                     x2: at[x[0]][0], y2: at[x[0]][1]}));
        }
      });
    });
    [[out[i], 'out'], [inn[i], 'in']].forEach(function (pair) {
      pair[0].forEach(function (x) {
        if (!at[x[0]] || x[0] === i) return;
        var line = svg('line', {'class': 'nlink ' + kind(x[1]) + ' ' + pair[1], x1: cx, y1: cy,
                               x2: at[x[0]][0], y2: at[x[0]][1]});
        line.appendChild(svg('title', {}, (pair[1] === 'out' ? P[i][0] + ' ' + typeOf(x[1]) +
          ' ' + P[x[0]][0] : P[x[0]][0] + ' ' + typeOf(x[1]) + ' ' + P[i][0]) + ' (' +
          kind(x[1]) + ')'));
        g2.appendChild(line);
      });
    });
    ring.forEach(function (j) {
      var c = svg('circle', {'class': 'nnode', cx: at[j][0], cy: at[j][1], r: 6,
                             fill: colour(j)});
      c.appendChild(svg('title', {}, P[j][0] + ': ' + P[j][1] + ' (' + C[P[j][2]][0] + ')'));
      c.addEventListener('click', function () { showPattern(j); });
      g3.appendChild(c);
      // each name along its own ray, so that none overlaps another
      var right = Math.cos(angle[j]) >= -1e-9, label = P[j][0];
      var deg = angle[j] * 180 / Math.PI + (right ? 0 : 180);
      if (label.length > LABEL) label = label.slice(0, LABEL - 1) + '…';
      var x = cx + (R + 10) * Math.cos(angle[j]), y = cy + (R + 10) * Math.sin(angle[j]);
      g3.appendChild(svg('text', {x: x, y: y, dy: '0.35em', 'text-anchor': right ? 'start' : 'end',
                                  transform: 'rotate(' + deg + ' ' + x + ' ' + y + ')'}, label));
    });
    var centre = svg('circle', {'class': 'nnode centre', cx: cx, cy: cy, r: 10,
                                fill: colour(i)});
    centre.appendChild(svg('title', {}, P[i][0] + ': ' + P[i][1]));
    g3.appendChild(centre);
    g3.appendChild(svg('text', {'class': 'centre', x: cx, y: cy - 16, 'text-anchor': 'middle'},
                       P[i][1]));
    $('pattern-status').textContent = P[i][0] + ' (' + C[P[i][2]][0] + '): ' +
      out[i].length + ' links out, ' + inn[i].length + ' in, ' + around.length +
      ' neighbours' + (around.length > ring.length ? ', ' + ring.length + ' drawn' : '');
    function linkItem(x, dir) {
      return patternButton(x[0], (dir === 'out' ? typeOf(x[1]) + ' →' : '← ' + typeOf(x[1])) +
                           ' (' + kind(x[1]) + ')');
    }
    fill($('links-out'), out[i], function (x) { return linkItem(x, 'out'); }, SHOWN);
    fill($('links-in'), inn[i], function (x) { return linkItem(x, 'in'); }, SHOWN);
    try { history.replaceState(null, '', '#' + encodeURIComponent(P[i][0])); } catch (e) { }
  }
  var wanted = decodeURIComponent(location.hash.slice(1));
  for (var w = 0; wanted && w < P.length; w++) { if (P[w][0] === wanted) showPattern(w); }

  // --- every pattern (small libraries) ----------------------------------------------------
  var graph = $('graph');
  if (graph) {
    var nodes = graph.querySelectorAll('circle.node');
    $('graph-status').textContent = nodes.length + ' patterns, ' +
      graph.querySelectorAll('line.edge').length + ' links drawn';
    var current = null;
    document.querySelectorAll('.legend button').forEach(function (b) {
      b.addEventListener('click', function () {
        var name = b.getAttribute('data-community');
        current = current === name ? null : name;
        graph.classList.toggle('focus', current !== null);
        nodes.forEach(function (n) {
          n.classList.toggle('on', n.getAttribute('data-community') === current);
        });
      });
    });
    Array.prototype.forEach.call(nodes, function (n) {
      n.addEventListener('click', function () {
        var slug = n.getAttribute('data-slug');
        for (var j = 0; j < P.length; j++) { if (P[j][0] === slug) showPattern(j); }
      });
    });
  }
})();
"""
