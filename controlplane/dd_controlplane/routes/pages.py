"""HTML for the browser routes: one layout, the PAT form, a message page, the dashboard.

Jinja templates kept as strings (no package data to ship) and rendered with autoescape
by ``render_template_string``. No external assets: the CSS is inline and the one script
carries the per-response CSP nonce (``g.csp_nonce``, set in ``app.py``). The dashboard
script writes data with ``textContent`` only, so agent names cannot inject markup.
"""

# ruff: noqa: E501  (HTML and JavaScript templates read better unwrapped)

from __future__ import annotations

__all__ = ["DASHBOARD", "MESSAGE", "PAT_FORM"]

_LAYOUT_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{% block title %}dd-preview{% endblock %}</title>
<style nonce="{{ g.csp_nonce }}">
:root { color-scheme: light dark; --bg:#0f1420; --fg:#e6e9ef; --muted:#9aa3b5; --card:#182033;
        --accent:#7aa2f7; --ok:#9ece6a; --warn:#e0af68; --bad:#f7768e; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
       background: var(--bg); color: var(--fg); }
main { max-width: 960px; margin: 0 auto; padding: 1.25rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; } h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: .75rem;
         margin: 1rem 0; }
.card { background: var(--card); border-radius: 10px; padding: .9rem 1rem; overflow-wrap: anywhere; }
.card .v { font-size: 1.1rem; font-weight: 600; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .45rem .5rem; border-bottom: 1px solid #2a3350; }
@media (max-width: 600px) { thead { display: none; } tr { display: block; padding: .4rem 0; }
  td { display: block; border: 0; padding: .1rem .5rem; } }
.pill { display: inline-block; padding: 0 .5rem; border-radius: 999px; background: #24304d; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
form { display: grid; gap: .75rem; max-width: 420px; }
input[type=password] { padding: .6rem; border-radius: 8px; border: 1px solid #3b4668;
                       background: #0b1020; color: var(--fg); font-size: 1rem; }
button, .button { padding: .6rem 1rem; border: 0; border-radius: 8px; background: var(--accent);
         color: #0b1020; font-weight: 600; cursor: pointer; text-decoration: none; }
header { display: flex; justify-content: space-between; align-items: center; gap: 1rem;
         flex-wrap: wrap; }
</style></head><body><main>
"""

_LAYOUT_FOOT = "</main></body></html>\n"

PAT_FORM = (
    _LAYOUT_HEAD
    + """
<h1>Log in to {{ env }}</h1>
<p class="muted">Paste a GitHub token (the output of <code>gh auth token</code>). It must belong
to <strong>{{ owner }}</strong> or a member of the <strong>{{ owner }}</strong> organisation.
The token is checked once and not stored.</p>
{% if error %}<p class="bad" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="/auth/pat">
  <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
  <input type="hidden" name="next" value="{{ next }}">
  <label for="pat">GitHub token</label>
  <input type="password" id="pat" name="pat" autocomplete="off" required>
  <button type="submit">Log in</button>
</form>
{% if oauth %}<p><a class="button" href="/auth/github/start?next={{ next|urlencode }}">Log in with
GitHub</a></p>{% endif %}
"""
    + _LAYOUT_FOOT
)

MESSAGE = (
    _LAYOUT_HEAD
    + """
<h1>{{ title }}</h1>
<p>{{ message }}</p>
{% if link %}<p><a class="button" href="{{ link }}">{{ link_text }}</a></p>{% endif %}
"""
    + _LAYOUT_FOOT
)

DASHBOARD = (
    _LAYOUT_HEAD
    + """
<header>
  <div><h1>dd-preview <span id="env">{{ status.env }}</span></h1>
  <div class="muted"><span id="hostname">{{ status.hostname }}</span> &middot; signed in as
  <span id="login">{{ status.viewer }}</span></div></div>
  <a class="button" id="logout" href="/auth/logout">Log out</a>
</header>
<section class="cards">
  <div class="card"><div class="muted">Build</div><div class="v mono" id="build">{{ status.build }}</div></div>
  <div class="card"><div class="muted">Uptime</div><div class="v" id="uptime">{{ status.uptime_human }}</div></div>
  <div class="card"><div class="muted">Attestation</div>
    <div class="v" id="tee">{{ status.attestation.tee }}</div>
    <div class="mono muted" id="mrtd">{{ status.attestation.mrtd or status.attestation.reason }}</div></div>
  <div class="card"><div class="muted">Agents</div><div class="v" id="agent-count">{{ status.agents|length }}</div></div>
</section>
<h2>Registered agents</h2>
<table><thead><tr><th>VM</th><th>Agent id</th><th>Status</th><th>MRTD</th><th>Last registered</th></tr></thead>
<tbody id="agents">{% for a in status.agents %}<tr><td>{{ a.vm_name }}</td><td class="mono">{{ a.agent_id }}</td>
<td><span class="pill ok">{{ a.status }}</span></td><td class="mono">{{ a.mrtd or "-" }}</td>
<td>{{ a.seconds_since_registration }} s ago</td></tr>{% endfor %}</tbody></table>
<p class="muted">Refreshed <span id="refreshed">now</span>.</p>
<script nonce="{{ g.csp_nonce }}">
"use strict";
function human(s) { s = Math.floor(s); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
  m = Math.floor(s % 3600 / 60); return (d ? d + "d " : "") + (h ? h + "h " : "") + m + "m " + (s % 60) + "s"; }
function cell(text, cls) { const td = document.createElement("td"); if (cls) td.className = cls;
  td.textContent = text; return td; }
async function refresh() {
  try {
    const r = await fetch("/api/status", {headers: {"Accept": "application/json"}, credentials: "same-origin"});
    if (r.status === 401) { location.reload(); return; }  // the server picks the login page
    if (!r.ok) { document.getElementById("refreshed").textContent = "failed (" + r.status + ")"; return; }
    const s = await r.json();
    document.getElementById("build").textContent = s.build;
    document.getElementById("uptime").textContent = human(s.uptime_seconds);
    document.getElementById("tee").textContent = s.attestation.tee;
    document.getElementById("mrtd").textContent = s.attestation.mrtd || s.attestation.reason || "";
    document.getElementById("agent-count").textContent = s.agents.length;
    const body = document.getElementById("agents"); body.replaceChildren();
    for (const a of s.agents) { const tr = document.createElement("tr");
      tr.append(cell(a.vm_name), cell(a.agent_id, "mono"), cell(a.status, "ok"), cell(a.mrtd || "-", "mono"),
                cell(a.seconds_since_registration + " s ago")); body.append(tr); }
    document.getElementById("refreshed").textContent = new Date().toLocaleTimeString();
  } catch (e) { document.getElementById("refreshed").textContent = "failed (" + e + ")"; }
}
setInterval(refresh, {{ refresh_ms }});
</script>
"""
    + _LAYOUT_FOOT
)
