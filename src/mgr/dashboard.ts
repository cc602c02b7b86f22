/** The mgr's live dashboard: one static page polling /api/cluster (served by the admin HTTP server). */

/** How often the page polls: a person watching a failover sees it within a second. */
const REFRESH_MS = 1000;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xserver cluster</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:2rem;color:#222}
 h1{font-size:1.3rem} table{border-collapse:collapse;width:100%}
 th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;font-family:ui-monospace,monospace;font-size:13px}
 th{background:#f4f4f4} .muted{color:#888} .bad{color:#b00}
</style></head>
<body>
<h1>xserver cluster <span id="name" class="muted"></span></h1>
<p id="mgr" class="muted">loading…</p>
<table><thead><tr><th>type</th><th>name</th><th>id</th><th>address</th><th>ports</th><th>version</th><th>overload</th><th>state</th><th>up</th></tr></thead>
<tbody id="rows"></tbody></table>
<script>
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
async function refresh() {
  try {
    const r = await fetch('/api/cluster');
    const s = await r.json();
    document.getElementById('mgr').textContent =
      'mgr ' + s.mgr.addr + ':' + s.mgr.port + ' · epoch ' + s.mgr.epoch + ' · ' + s.mgr.state + (s.mgr.settling ? ' (settling)' : '') + ' · ' + s.members.length + ' members';
    document.getElementById('mgr').className = s.mgr.state === 'active' ? 'muted' : 'bad';
    const now = Date.now();
    document.getElementById('rows').innerHTML = s.members
      .sort((a, b) => a.type - b.type || a.id.localeCompare(b.id))
      .map((m) => '<tr><td>' + m.type + '</td><td>' + esc(m.name) + '</td><td>' + esc(m.id.slice(0, 8)) + '</td><td>' + esc(m.addrs.inner) +
        '</td><td>' + m.ports.join(', ') + '</td><td>' + esc(m.version) + '</td><td>' + (m.overload.join(', ') || '-') +
        '</td><td>' + (m.draining ? '<b>draining</b>' : 'up') + '</td><td>' + Math.round((now - m.startedAt) / 1000) + ' s</td></tr>').join('');
  } catch (e) {
    document.getElementById('mgr').textContent = 'mgr unreachable: ' + e.message;
    document.getElementById('mgr').className = 'bad';
  }
}
refresh();
setInterval(refresh, ${REFRESH_MS});
</script>
</body></html>
`;
