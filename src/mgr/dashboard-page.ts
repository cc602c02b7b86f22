/**
 * The mgr's dashboard page: one static HTML file with plain DOM and <canvas> line charts (no
 * framework, no charting dependency), polling the JSON of src/mgr/dashboard.ts. `#/` is the
 * cluster overview, `#/member/<id>` one member's page.
 *
 * Each chart's canvas carries the values it drew last in `data-last` (JSON), so a person (or the
 * browser test) can read what the chart shows.
 */

/** How often the page polls: a person watching a failover sees it within a second. */
const REFRESH_MS = 1000;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xserver dashboard</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:1.5rem 2rem;color:#222;background:#fafafa}
 h1{font-size:1.3rem;margin:0 0 .3rem} h2{font-size:1rem;margin:1.2rem 0 .4rem}
 a{color:#0b5cad} .muted{color:#777} .bad{color:#b00} .warn{background:#fff4d6;border:1px solid #e0c060;padding:.5rem .8rem;margin:.6rem 0}
 .charts{margin-top:.8rem;display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:.8rem}
 .chart{background:#fff;border:1px solid #ddd;padding:.4rem .6rem}
 .chart h3{font-size:.85rem;margin:0 0 .2rem;font-weight:600} .chart canvas{width:100%;height:140px;display:block}
 .legend span{margin-right:.8rem;font-size:12px} .legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
 table{border-collapse:collapse;width:100%;background:#fff}
 th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e4e4e4;font-family:ui-monospace,monospace;font-size:12.5px;vertical-align:top}
 th{background:#f0f0f0;font-weight:600}
 #timeline td.kind{font-weight:600} .left-lost,.left-timeout,.accounts-lost{color:#b00} .joined{color:#070} .takeover{color:#a60}
</style></head>
<body>
<h1>xserver dashboard <span id="title" class="muted"></span></h1>
<p id="mgr" class="muted">loading…</p>
<div id="notice"></div>
<div id="view"></div>
<script>
var REFRESH_MS = ${REFRESH_MS};
var COLORS = ['#1f6fd1', '#d1461f', '#2a9d4a', '#8a4fd1'];
function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]; }); }
function fmt(v) { return v === null || v === undefined ? '-' : (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100); }
function ago(ms) { var s = Math.round((Date.now() - ms) / 1000); return s < 120 ? s + ' s ago' : Math.round(s / 60) + ' min ago'; }
function clock(ms) { return new Date(ms).toLocaleTimeString(); }

/* A line chart on a canvas: series [{label, values}] over times (unix ms). null values are gaps. */
function chart(id, title, series, times) {
  var box = document.getElementById('c-' + id);
  if (!box) {
    box = document.createElement('div'); box.className = 'chart'; box.id = 'c-' + id;
    box.innerHTML = '<h3></h3><canvas></canvas><div class="legend"></div>';
    document.getElementById('charts').appendChild(box);
  }
  var last = series.map(function (s) { return s.values.length ? s.values[s.values.length - 1] : null; });
  box.querySelector('h3').textContent = title;
  box.querySelector('.legend').innerHTML = series.map(function (s, i) {
    return '<span><i style="background:' + COLORS[i] + '"></i>' + esc(s.label) + ' ' + fmt(last[i]) + '</span>';
  }).join('');
  var cv = box.querySelector('canvas');
  cv.dataset.last = JSON.stringify(last);
  var dpr = window.devicePixelRatio || 1, w = cv.clientWidth || 320, h = cv.clientHeight || 140;
  cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
  var g = cv.getContext('2d'); g.setTransform(dpr, 0, 0, dpr, 0, 0); g.clearRect(0, 0, w, h);
  var max = 0;
  series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null && v > max) max = v; }); });
  max = max > 0 ? max * 1.1 : 1;
  var L = 40, R = 6, T = 6, B = 16, pw = w - L - R, ph = h - T - B;
  g.strokeStyle = '#ddd'; g.fillStyle = '#888'; g.font = '10px sans-serif'; g.lineWidth = 1;
  for (var k = 0; k <= 2; k++) {
    var y = T + ph * (1 - k / 2);
    g.beginPath(); g.moveTo(L, y); g.lineTo(L + pw, y); g.stroke();
    g.fillText(String(fmt(max * k / 2)), 2, y + 3);
  }
  if (times.length > 1) {
    var t0 = times[0], span = Math.max(1, times[times.length - 1] - t0);
    g.fillText(clock(t0), L, h - 3); g.fillText(clock(times[times.length - 1]), L + pw - 48, h - 3);
    series.forEach(function (s, i) {
      g.strokeStyle = COLORS[i]; g.lineWidth = 1.6; g.beginPath();
      var pen = false;
      s.values.forEach(function (v, j) {
        if (v === null) { pen = false; return; }
        var x = L + pw * (times[j] - t0) / span, yy = T + ph * (1 - v / max);
        if (pen) g.lineTo(x, yy); else g.moveTo(x, yy);
        pen = true;
      });
      g.stroke();
    });
  }
}
function col(rows, key) { return rows.map(function (r) { return r[key]; }); }

function timeline(events) {
  if (!events.length) return '<p class="muted">no events yet</p>';
  return '<table id="timeline"><thead><tr><th>time</th><th>event</th><th>member</th><th>reason / detail</th></tr></thead><tbody>' +
    events.slice().reverse().map(function (e) {
      var cls = e.kind + (e.reason ? ' ' + e.kind + '-' + e.reason : '');
      var who = e.id ? '<a href="#/member/' + encodeURIComponent(e.id) + '">' + esc(e.name || '') + ' ' + esc(e.id.slice(0, 8)) + '</a>' : '';
      return '<tr class="ev" data-kind="' + esc(e.kind) + '" data-reason="' + esc(e.reason || '') + '" data-id="' + esc(e.id || '') + '">' +
        '<td>' + clock(e.at) + '</td><td class="kind ' + esc(cls) + '">' + esc(e.kind) + '</td><td>' + who + '</td><td>' +
        esc([e.reason, e.detail].filter(Boolean).join(' · ')) + '</td></tr>';
    }).join('') + '</tbody></table>';
}

function header(d) {
  var m = d.mgr, sb = d.servedBy;
  document.getElementById('mgr').textContent = 'active mgr ' + m.addr + ':' + m.port + ' · epoch ' + m.epoch + (m.settling ? ' (settling)' : '') +
    ' · instance ' + m.instanceId.slice(0, 8);
  document.getElementById('notice').innerHTML = sb.relayed
    ? '<div class="warn" id="relayed">This is the standby mgr ' + esc(sb.instanceId.slice(0, 8)) + ': it shows the active mgr\\'s view, fetched over the intranet.</div>'
    : '';
}

function overview(d) {
  var v = document.getElementById('view');
  if (!document.getElementById('charts')) {
    v.innerHTML = '<div class="charts" id="charts"></div><h2>Members</h2><p id="members-note" class="muted"></p><div id="members"></div>' +
      '<h2>Events</h2><div id="events"></div>' +
      '<h2>Canary policy</h2><div id="policy" class="muted"></div>';
  }
  var s = d.samples, t = col(s, 'at');
  document.getElementById('title').textContent = '· ' + d.membersTotal + ' members';
  document.getElementById('members-note').textContent = d.members.length < d.membersTotal
    ? 'the first ' + d.members.length + ' of ' + d.membersTotal + ' (dashboard.overviewMembersMax); every member has its own page' : '';
  chart('members', 'members', [{ label: 'members', values: col(s, 'members') }], t);
  chart('connections', 'client connections', [{ label: 'connections', values: col(s, 'connections') }], t);
  chart('messages', 'client messages/s', [{ label: 'in', values: col(s, 'msgsInPerSec') }, { label: 'out', values: col(s, 'msgsOutPerSec') }], t);
  chart('latency', 'client request latency (ms)', [{ label: 'p50', values: col(s, 'p50Ms') }, { label: 'p99', values: col(s, 'p99Ms') }], t);
  document.getElementById('members').innerHTML = '<table><thead><tr><th>type</th><th>name</th><th>id</th><th>address</th><th>version</th>' +
    '<th>load</th><th>conns</th><th>msgs/s in/out</th><th>p99 ms</th><th>links</th><th>state</th><th>up</th></tr></thead><tbody>' +
    d.members.map(function (m) {
      var f = m.figures, l = m.last;
      return '<tr class="member" data-id="' + esc(m.id) + '"><td>' + m.type + '</td><td>' + esc(m.name) + '</td><td><a href="#/member/' + encodeURIComponent(m.id) + '">' +
        esc(m.id.slice(0, 8)) + '</a></td><td>' + esc(m.addrs.inner) + ':' + m.ports.join(',') + '</td><td>' + esc(m.version) + '</td><td>' +
        (m.overload.join(', ') || '-') + '</td><td>' + (f ? f.connections : '-') + '</td><td>' + (l ? fmt(l.msgsInPerSec) + ' / ' + fmt(l.msgsOutPerSec) : '-') +
        '</td><td>' + fmt(l && l.p99Ms) + '</td><td>' + (f ? f.links : '-') + '</td><td>' + (m.draining ? '<b>draining</b>' : 'up') + '</td><td>' +
        Math.round((Date.now() - m.startedAt) / 1000) + ' s</td></tr>';
    }).join('') + '</tbody></table>';
  document.getElementById('events').innerHTML = timeline(d.events);
  document.getElementById('policy').innerHTML = policy(d.policy);
}

/* The canary policy panel: whatever extra fields the mgr's status carries, a list per field. */
function policy(p) {
  if (!p) return 'no canary policy: the mgr reports none';
  return Object.keys(p).map(function (k) {
    var v = p[k], items = Array.isArray(v) ? v : [v];
    return '<div><b>' + esc(k) + '</b><ul>' + items.map(function (x) { return '<li><code>' + esc(JSON.stringify(x)) + '</code></li>'; }).join('') + '</ul></div>';
  }).join('');
}

function member(d) {
  var v = document.getElementById('view'), m = d.member;
  if (!document.getElementById('charts') || v.dataset.member !== m.id) {
    v.dataset.member = m.id;
    v.innerHTML = '<p><a href="#/">← overview</a></p><div id="info"></div><div class="charts" id="charts"></div>' +
      '<h2>Links</h2><div id="links"></div><h2>Events</h2><div id="events"></div>';
  }
  document.getElementById('title').textContent = '· ' + m.name + ' ' + m.id.slice(0, 8);
  var c = d.check, f = d.figures;
  var rows = [['id', m.id], ['type', m.type + ' (' + m.name + ')'], ['version', m.version], ['state', m.draining ? 'draining' : 'up'],
    ['load (overload)', m.overload.join(', ') || '-'], ['address', m.addrs.inner + ':' + m.ports.join(',')], ['outer address', m.addrs.outer || '-'],
    ['host / pid', m.host + ' / ' + m.pid], ['started', clock(m.startedAt) + ' (' + ago(m.startedAt) + ')'], ['contract', m.contractHash || '-'],
    ['address check', c ? (c.skipped ? 'skipped' : c.reached ? 'reached ' + c.advertised + ' in ' + c.rttMs + ' ms (registered from ' + c.seenFrom + ')' : 'NOT reached ' + c.advertised + ': ' + c.error) : '-'],
    ['peers in its view', f ? f.peers : '-'], ['client connections', f ? f.connections : '-'], ['messages in / out (total)', f ? f.messagesIn + ' / ' + f.messagesOut : '-']];
  (m.listeners || []).forEach(function (l) { rows.push(['listener ' + l.name, l.bind + (l.advertised ? ' → ' + l.advertised : '')]); });
  document.getElementById('info').innerHTML = '<table id="member-info">' + rows.map(function (r) { return '<tr><th>' + esc(r[0]) + '</th><td>' + esc(r[1]) + '</td></tr>'; }).join('') + '</table>';
  var s = d.samples, t = col(s, 'at');
  chart('messages', 'messages/s', [{ label: 'in', values: col(s, 'msgsInPerSec') }, { label: 'out', values: col(s, 'msgsOutPerSec') }], t);
  chart('latency', 'request latency (ms)', [{ label: 'p50', values: col(s, 'p50Ms') }, { label: 'p99', values: col(s, 'p99Ms') }], t);
  chart('load', 'load (overload[0])', [{ label: 'load', values: col(s, 'load') }], t);
  chart('connections', 'client connections', [{ label: 'connections', values: col(s, 'connections') }], t);
  document.getElementById('links').innerHTML = !f ? '<p class="muted">no report yet</p>' :
    '<p>' + f.links + ' open direct link(s)' + (f.links > d.linked.length ? ' (' + d.linked.length + ' listed)' : '') + '</p><ul>' +
    d.linked.map(function (l) { return '<li><a href="#/member/' + encodeURIComponent(l.id) + '">' + esc(l.name) + ' ' + esc(l.id.slice(0, 8)) + '</a></li>'; }).join('') + '</ul>';
  document.getElementById('events').innerHTML = timeline(d.events);
}

async function refresh() {
  var hash = location.hash.replace(/^#/, '');
  var id = hash.indexOf('/member/') === 0 ? decodeURIComponent(hash.slice(8)) : '';
  try {
    var r = await fetch(id ? '/dashboard/api/member?id=' + encodeURIComponent(id) : '/dashboard/api/overview');
    var d = await r.json();
    if (d.error) throw new Error(d.error.message);
    if (d.unavailable) {
      document.getElementById('mgr').textContent = 'standby mgr ' + d.servedBy.instanceId.slice(0, 8);
      document.getElementById('notice').innerHTML = '<div class="warn bad" id="unavailable">' + esc(d.unavailable) +
        (d.activeDashboard ? ' — the active mgr\\'s dashboard: <a id="active-link" href="' + esc(d.activeDashboard) + '">' + esc(d.activeDashboard) + '</a>' : '') + '</div>';
      return;
    }
    header(d);
    if (id) member(d); else overview(d);
  } catch (e) {
    document.getElementById('notice').innerHTML = '<div class="warn bad">dashboard data unavailable: ' + esc(e.message) + '</div>';
  }
}
window.addEventListener('hashchange', function () { document.getElementById('view').innerHTML = ''; refresh(); });
refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body></html>
`;
