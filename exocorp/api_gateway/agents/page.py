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
body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;
color:#1d2433}
section{border:1px solid #dde;border-radius:8px;padding:1rem 1.2rem;margin:1rem 0}
button{font:inherit;padding:.4rem 1rem;margin-right:.5rem;border-radius:6px;
border:1px solid #889;background:#f6f7f9;cursor:pointer}
button.primary{background:#1d4ed8;color:#fff;border-color:#1d4ed8}
input{font:inherit;padding:.3rem;margin:.2rem 0 .6rem;width:100%;box-sizing:border-box}
input[type=checkbox]{width:auto;margin-right:.4rem}label.grant{display:block}
pre{background:#f6f7f9;padding:.6rem;overflow:auto;border-radius:4px;font-size:13px}
.error{color:#b91c1c}.muted{color:#555}[hidden]{display:none}
</style></head>
<body>
<h1>Approve an agent</h1>
<p class="muted">An AI agent asks to act for you on this Exocorp platform. Approve it only if you
started it yourself.</p>
<section id="login" hidden>
<h2>Log in or sign up first</h2>
<label>E-mail <input id="email" type="email" autocomplete="username"></label>
<label>Password (at least 10 characters)
<input id="password" type="password" autocomplete="current-password"></label>
<button class="primary" id="do-login">Log in</button><button id="do-signup">Sign up</button>
<p id="kit" hidden>Your recovery kit (store it offline; it is shown only once):
<code id="kit-value"></code></p>
</section>
<section id="request" hidden>
<h2>Agent <span id="agent"></span></h2>
<p>Status: <b id="status"></b></p>
<p>It proposes the exocorp <b id="company"></b> (<code id="slug"></code>) with this
configuration:</p>
<pre id="draft"></pre>
<div id="choices">
<label>Pairing code your agent shows you (only your own agent knows it)
<input id="code" autocomplete="off" spellcheck="false"></label>
<p>Approving creates that exocorp, owned by you. The agent's token reaches that exocorp and
the ones it creates later, nothing else of yours, and expires after {{TTL_DAYS}} days (renew or
revoke it in your account's agent tokens). It may also:</p>
<label class="grant"><input type="checkbox" id="allow-destroy">destroy those exocorps</label>
<label class="grant"><input type="checkbox" id="allow-secrets">add, rotate and delete your
provider credentials</label>
<p><button class="primary" id="approve">Approve</button><button id="deny">Deny</button></p>
</div>
</section>
<p id="message"></p>
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
