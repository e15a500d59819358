// Account: limits with what is used of each, provider credentials (list with coverage, add,
// rotate, delete; a value is never shown back), the tokens of connected coding agents (revoke),
// and sign-in: change the password, sign out everywhere.
import { useEffect, useState } from "preact/hooks";
import { del, get, post } from "../api/client";
import type { LimitUsage, Me, Secret, Summary, Token } from "../api/types";
import { LimitList } from "../components/limits";
import { useSubmit } from "../components/submit";
import { Alert, Confirm, Field, Modal, when } from "../components/ui";
import { signOutEverywhere } from "../session";

export function Account() {
  const [secrets, setSecrets] = useState<Secret[] | null>(null);
  const [tokens, setTokens] = useState<Token[] | null>(null);
  const [summary, setSummary] = useState<Summary | null>(null);
  const [error, setError] = useState<unknown>();
  const [rotate, setRotate] = useState<Secret | null>(null);
  const [adding, setAdding] = useState(false);
  const [limits, setLimits] = useState<LimitUsage | null>(null);
  const [leaving, setLeaving] = useState(false);

  const load = () => {
    get<{ secrets: Secret[] }>("/api/registry/provider-secrets").then((s) => setSecrets(s.secrets), setError);
    get<{ tokens: Token[] }>("/api/auth/tokens").then((t) => setTokens(t.tokens), setError);
    get<Summary>("/api/dashboard/summary").then(setSummary, () => undefined);
    // Fresh, not the session's copy from login: what is used changes as exocorps come and go.
    get<Me>("/api/auth/me").then((me) => setLimits(me.limits ?? null), setError);
  };
  useEffect(load, []);

  const remove = async (s: Secret) => {
    setError(undefined);
    try {
      await del(`/api/registry/provider-secrets/${encodeURIComponent(s.id)}`);
      load();
    } catch (err) {
      setError(err);
    }
  };
  const renew = async (t: Token) => {
    setError(undefined);
    try {
      await post(`/api/auth/tokens/${encodeURIComponent(t.id)}/renew`);
      load();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (t: Token) => {
    setError(undefined);
    try {
      await del(`/api/auth/tokens/${encodeURIComponent(t.id)}`);
      load();
    } catch (err) {
      setError(err);
    }
  };

  const coverage = summary?.providerCoverage;
  return (
    <main id="main">
      <h1>Account</h1>
      {summary?.balance && <p>Balance: <strong>{(summary.balance.balance / 100).toFixed(2)} {summary.balance.currency}</strong> · account {summary.balance.state}</p>}
      <Alert error={error} />
      {limits && (
        <section class="card" id="limits" aria-labelledby="h-limits">
          <h2 id="h-limits">Limits</h2>
          <p class="muted">What your account may have, as the platform's owners set it, and what it uses now. CPU, memory and storage are what your running exocorps request.</p>
          <LimitList usage={limits} />
        </section>
      )}
      <section class="card" id="credentials" aria-labelledby="h-cred">
        <div class="page-head">
          <h2 id="h-cred">Provider credentials</h2>
          <button type="button" class="primary" onClick={() => setAdding(true)}>Add credential</button>
        </div>
        <p class="muted">API keys your agents use. A value is stored in the platform's secret store and never shown again; the fingerprint tells two values apart.</p>
        {coverage && (
          <p class={coverage.configured < coverage.required ? "warn" : "ok"}>
            {coverage.configured} of {coverage.required} required providers configured
            {(coverage.missing ?? []).length > 0 && `: missing ${[...new Set((coverage.missing ?? []).map((m) => m.provider))].join(", ")}`}
          </p>
        )}
        {secrets && secrets.length === 0 && <p>No credential yet.</p>}
        {secrets && secrets.length > 0 && (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Table (scrolls sideways)">
            <table>
              <thead><tr><th scope="col">Name</th><th scope="col">Provider</th><th scope="col">Fingerprint</th><th scope="col">Rotated</th><th scope="col">Used by</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {secrets.map((s) => (
                  <tr>
                    <td>{s.name}</td><td>{s.provider}</td><td class="mono">{s.fingerprint ?? "—"}</td>
                    <td>{when(s.rotatedAt ?? s.createdAt)}</td><td>{(s.boundExocorps ?? []).join(", ") || "—"}</td>
                    <td class="row">
                      <button type="button" class="small" onClick={() => setRotate(s)} aria-label={`Rotate ${s.name}`}>Rotate</button>
                      <button type="button" class="small danger" onClick={() => void remove(s)} aria-label={`Delete ${s.name}`}>Delete</button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section class="card" id="agents" aria-labelledby="h-agents">
        <h2 id="h-agents">Connected agents</h2>
        <p class="muted">Coding agents you approved act for you with these tokens. Revoke one to cut it off at once.</p>
        {tokens && tokens.length === 0 && <p>No agent connected.</p>}
        {tokens && tokens.length > 0 && (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Table (scrolls sideways)">
            <table>
              <thead><tr><th scope="col">Agent</th><th scope="col">Status</th><th scope="col">May act on</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {tokens.map((t) => (
                  <tr>
                    <td>{t.agentName}</td><td>{t.status}</td>
                    <td>{t.scope.companies.join(", ") || "—"}{t.scope.destroy ? " · may destroy" : ""}{t.scope.providerSecrets ? " · credentials" : ""}</td>
                    <td>{when(t.lastUsedAt)}</td><td>{t.expiresAt ? t.expiresAt.slice(0, 10) : "never"}</td>
                    <td class="row">{t.status !== "revoked" && <>
                      <button type="button" class="small" onClick={() => void renew(t)} aria-label={`Renew ${t.agentName}`}>Renew</button>
                      {t.status === "active" && <button type="button" class="small danger" onClick={() => void revoke(t)} aria-label={`Revoke ${t.agentName}`}>Revoke</button>}
                    </>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section class="card" id="sign-in" aria-labelledby="h-sign-in">
        <h2 id="h-sign-in">Sign-in</h2>
        <p><a href="/password">Change your password</a></p>
        <p class="muted">Lost a device, or someone else may be logged in as you? Signing out everywhere ends every session of yours, this one included, and cuts off every connected agent.</p>
        <button type="button" class="danger" onClick={() => setLeaving(true)}>Sign out everywhere</button>
      </section>
      {leaving && (
        <Confirm title="Sign out everywhere?" action="Sign out everywhere" onConfirm={signOutEverywhere} onClose={() => setLeaving(false)}>
          <p>Every browser and device logged in as you is signed out, this one included, and every connected agent loses its access. You log in again with your password.</p>
        </Confirm>
      )}
      {(adding || rotate) && <SecretForm existing={rotate} onClose={() => { setAdding(false); setRotate(null); }} onSaved={() => { setAdding(false); setRotate(null); load(); }} />}
    </main>
  );
}

function SecretForm({ existing, onClose, onSaved }: { existing: Secret | null; onClose: () => void; onSaved: () => void }) {
  const [provider, setProvider] = useState(existing?.provider ?? "anthropic");
  const [name, setName] = useState(existing?.name ?? "main");
  const [value, setValue] = useState("");
  const { busy, error, errors, submit } = useSubmit(async () => {
    await post("/api/registry/provider-secrets", { provider, name, value });
    setValue("");
    onSaved();
  });
  return (
    <Modal title={existing ? `Rotate ${existing.name}` : "Add a provider credential"} onClose={onClose}>
      <form onSubmit={submit}>
        <Field label="Provider" required value={provider} disabled={!!existing} error={errors.provider} hint="e.g. anthropic, openai" onInput={(e) => setProvider(e.currentTarget.value)} />
        <Field label="Name" required value={name} disabled={!!existing} error={errors.name} hint="Saving an existing name again rotates it." onInput={(e) => setName(e.currentTarget.value)} />
        <Field label={existing ? "New value" : "Value"} type="password" autocomplete="off" required value={value} error={errors.value} onInput={(e) => setValue(e.currentTarget.value)} />
        <Alert error={Object.keys(errors).length ? undefined : error} />
        <div class="row">
          <button class="primary" type="submit" disabled={busy}>{existing ? "Rotate" : "Save"}</button>
          <button type="button" onClick={onClose}>Cancel</button>
        </div>
      </form>
    </Modal>
  );
}
