// PyKV dashboard: the cluster panel. Plain script, nothing inline (the
// page runs under a strict Content-Security-Policy), and apart from the
// rest of the dashboard on purpose: it only reads GET /v1/cluster.
//
// On a single node /v1/cluster is not there (404) and the panel stays
// hidden. On a cluster member the panel shows every member, which one
// leads, each one's applied revision and whether it answered, refreshed
// every REFRESH_MS; a failed refresh says so and keeps the last table.
'use strict';

(function () {
  const REFRESH_MS = 2000;

  function cell(row, text, testid) {
    const td = document.createElement('td');
    td.textContent = text;
    if (testid) td.dataset.testid = testid;
    row.appendChild(td);
    return td;
  }

  function render(panel, view) {
    panel.querySelector('#cluster-leader').textContent = view.leader || 'none (election in progress)';
    const body = panel.querySelector('#cluster-members');
    body.replaceChildren();
    for (const m of view.members) {
      const row = document.createElement('tr');
      row.dataset.testid = 'cluster-member';
      row.dataset.member = m.id;
      cell(row, m.id, 'member-id');
      cell(row, m.role, 'member-role');
      cell(row, m.applied_rev === null ? '?' : String(m.applied_rev), 'member-rev');
      const health = m.applied_rev === null ? 'unreachable' : (m.healthy ? 'ok' : 'no leader');
      cell(row, health, 'member-health').className = m.healthy ? 'ok' : 'bad';
      const api = cell(row, '', 'member-api');
      if (m.api_addr) {
        const a = document.createElement('a');
        a.href = m.api_addr + '/';
        a.textContent = m.api_addr;
        api.appendChild(a);
      }
      body.appendChild(row);
    }
  }

  async function refresh(panel, status) {
    let resp;
    try {
      resp = await fetch('/v1/cluster', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch (e) {
      if (!panel.hidden) status.textContent = 'Cannot reach this member.';
      return true;
    }
    if (resp.status === 404 && panel.hidden) return false; // a single node: no cluster
    if (!resp.ok) {
      status.textContent = 'Refresh failed: ' + resp.status + ' ' + resp.statusText;
      return true;
    }
    render(panel, await resp.json());
    status.textContent = 'Updated ' + new Date().toLocaleTimeString();
    panel.hidden = false;
    return true;
  }

  async function start() {
    const panel = document.getElementById('cluster-panel');
    if (!panel) return;
    const status = panel.querySelector('#cluster-status');
    if (!(await refresh(panel, status))) return;
    setInterval(() => { refresh(panel, status); }, REFRESH_MS);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
