"""The page an agent's handoff link opens (``GET /connect/{id}``): self-contained HTML with one
small script (allowed by a per-response CSP nonce) that calls the JSON API from this origin:
``/api/auth/me``, ``/api/auth/login`` or ``/api/auth/signup``, then
``/api/agents/handoffs/{id}`` and its ``approve`` / ``deny``. Same-origin ``fetch`` sends
``Sec-Fetch-Site: same-origin``, so the gateway's CSRF check lets these cookie writes through;
no other site can make them. Every value the API returns is written with ``textContent``.
"""

from __future__ import annotations

__all__ = ["render"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Approve an agent · Exocorp</title>
<style>
/* The dashboard's look (ui/src/styles.css), kept in this one self-contained page. */
:root{--bg:#f5f6f8;--fg:#18202e;--muted:#5b6474;--card:#fff;--line:#dde1e8;--accent:#2748d6;
--accent-fg:#fff;--danger:#b42318;--ok:#137a3a;
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
@media (prefers-color-scheme: dark){:root{--bg:#0f131a;--fg:#e6e9ef;--muted:#a0a8b8;
--card:#171c25;--line:#2a3140;--accent:#7c95ff;--accent-fg:#0b0f16;--danger:#ff8a80;
--ok:#6ee7a0}}
*{box-sizing:border-box}body{margin:0}a{color:var(--accent)}
header{display:flex;align-items:center;padding:.6rem 1.2rem;background:var(--card);
border-bottom:1px solid var(--line)}
header a{font-weight:700;font-size:1.15rem;text-decoration:none;color:var(--fg)}
main{max-width:40rem;margin:0 auto;padding:1.2rem}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{font-size:1.15rem;margin:0 0 .6rem}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:1rem 1.2rem;margin:1rem 0}
label{display:block;font-weight:600;font-size:.92rem;margin-bottom:.8rem}
input{display:block;font:inherit;font-weight:400;padding:.45rem .6rem;margin-top:.2rem;
width:100%;border:1px solid var(--line);border-radius:8px;background:var(--card);
color:var(--fg)}
button{font:inherit;padding:.45rem .95rem;margin-right:.5rem;border-radius:8px;
border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}
button:hover{border-color:var(--accent)}
button.primary{background:var(--accent);color:var(--accent-fg);border-color:var(--accent)}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
pre{background:var(--bg);padding:.6rem;overflow:auto;border-radius:8px;font-size:13px}
code{font-family:ui-monospace,Menlo,monospace}
.badge{display:inline-block;padding:.05rem .55rem;border-radius:999px;font-size:.85rem;
border:1px solid var(--line)}
.error{color:var(--danger)}.ok{color:var(--ok)}.muted{color:var(--muted)}[hidden]{display:none}
input[type=checkbox]{display:inline;width:auto;margin-right:.4rem}label.grant{font-weight:400}
</style></head>
<body>
<header><a href="/">Exocorp</a></header>
<main>
<h1>Approve an agent</h1>
<p class="muted">An AI agent asks to act for you on this Exocorp platform. Approve it only if you
started it yourself.</p>
<section id="login" hidden aria-labelledby="login-title">
<h2 id="login-title">Log in or sign up first</h2>
<label for="email">E-mail <input id="email" type="email" autocomplete="username"></label>
<label for="password">Password (at least 10 characters)
<input id="password" type="password" autocomplete="current-password"></label>
<button class="primary" id="do-login">Log in</button><button id="do-signup">Sign up</button>
<p id="kit" hidden>Your recovery kit (store it offline; it is shown only once):
<code id="kit-value"></code></p>
</section>
<section id="request" hidden aria-labelledby="request-title">
<h2 id="request-title">Agent <span id="agent"></span></h2>
<p>Status: <b id="status" class="badge"></b></p>
<p>It proposes the exocorp <b id="company"></b> (<code id="slug"></code>) with this
configuration:</p>
<pre id="draft"></pre>
<div id="choices">
<label>Pairing code your agent shows you (only your own agent knows it)
<input id="code" autocomplete="off" spellcheck="false"></label>
<p>Approving creates that exocorp, owned by you. The agent's token reaches that exocorp and
the ones it creates later, nothing else of yours, and expires after {{TTL_DAYS}} days (renew or
revoke it in your <a href="/account#agents">account's connected agents</a>). It may also:</p>
<label class="grant"><input type="checkbox" id="allow-destroy">destroy those exocorps</label>
<label class="grant"><input type="checkbox" id="allow-secrets">add, rotate and delete your
provider credentials</label>
<p><button class="primary" id="approve">Approve</button><button id="deny">Deny</button></p>
</div>
</section>
<p id="message" role="status"></p>
</main>
<script nonce="{{NONCE}}">
"use strict";
const id = "{{HANDOFF_ID}}";
const $ = (name) => document.getElementById(name);
async function call(method, path, body) {
  const init = {method, headers: {}, credentials: "same-origin"};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  return {status: response.status, data};
}
function say(text, error) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}
async function show() {
  const me = await call("GET", "/api/auth/me");
  if (me.status === 401) { $("login").hidden = false; $("request").hidden = true; return; }
  $("login").hidden = true;
  const got = await call("GET", "/api/agents/handoffs/" + id);
  if (got.status !== 200) { say((got.data && got.data.detail) || "Not found.", true); return; }
  const h = got.data;
  $("request").hidden = false;
  $("agent").textContent = h.agentName;
  $("status").textContent = h.status;
  $("company").textContent = h.company.displayName;
  $("slug").textContent = h.company.slug;
  $("draft").textContent = JSON.stringify(h.draft, null, 2);
  $("choices").hidden = h.status !== "pending";
}
async function auth(path) {
  const result = await call("POST", path, {email: $("email").value,
                                           password: $("password").value});
  if (result.status >= 300) { say((result.data && result.data.detail) || "Failed.", true); return; }
  if (result.data && result.data.recoveryKit) {
    $("kit-value").textContent = result.data.recoveryKit;
    $("kit").hidden = false;
  }
  say("");
  await show();
}
$("do-login").addEventListener("click", () => auth("/api/auth/login"));
$("do-signup").addEventListener("click", () => auth("/api/auth/signup"));
$("approve").addEventListener("click", async () => {
  const result = await call("POST", "/api/agents/handoffs/" + id + "/approve", {
    pairingCode: $("code").value, allowDestroy: $("allow-destroy").checked,
    allowProviderSecrets: $("allow-secrets").checked});
  if (result.status >= 300) { say((result.data && result.data.detail) || "Failed.", true); return; }
  say("Approved. The agent can continue now; you may close this page.");
  await show();
});
$("deny").addEventListener("click", async () => {
  const result = await call("POST", "/api/agents/handoffs/" + id + "/deny");
  if (result.status >= 300) { say((result.data && result.data.detail) || "Failed.", true); return; }
  say("Denied. The agent's token no longer works.");
  await show();
});
show();
</script>
</body></html>
"""


def render(handoff_id: str, nonce: str, token_ttl_days: int) -> str:
    """The page for one handoff. ``handoff_id`` must already match ``HANDOFF_ID`` (hex and an
    underscore only) and ``nonce`` be URL-safe base64: neither can break out of the script."""
    return (_PAGE.replace("{{NONCE}}", nonce).replace("{{HANDOFF_ID}}", handoff_id)
            .replace("{{TTL_DAYS}}", str(int(token_ttl_days))))
