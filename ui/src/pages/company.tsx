// One exocorp: status hero (live), actions, release and handshake, runtime readiness,
// configuration editor, domains, revision history, usage, people and recent audit.
import { useEffect, useState } from "preact/hooks";
import { ApiError, del, get, post } from "../api/client";
import type { AuditPage, Bindings, Company, Handshake, Me, ReleaseCatalog, UsagePage } from "../api/types";
import { ActionBar, type ActionRequest } from "../components/actions";
import { DraftEditor } from "../components/draft";
import { ManifestPreview } from "../components/manifest";
import { MembersCard } from "../components/members";
import { Alert, Loading, PhaseBadge, money, phaseExplanation, when } from "../components/ui";
import { useLive } from "../live";
import { navigate } from "../router";

export function CompanyPage({ id, me }: { id: string; me: Me }) {
  const base = `/api/registry/companies/${encodeURIComponent(id)}`;
  const [company, setCompany] = useState<Company | null>(null);
  const [gone, setGone] = useState(false);
  const [error, setError] = useState<unknown>();
  const [handshake, setHandshake] = useState<Handshake | null>(null);
  const [bindings, setBindings] = useState<Bindings | null>(null);
  const [catalog, setCatalog] = useState<ReleaseCatalog | null>(null);
  const [usage, setUsage] = useState<UsagePage | null>(null);
  const [audit, setAudit] = useState<AuditPage | null>(null);

  const side = () => {
    get<Handshake>(`${base}/update-handshake`).then(setHandshake, () => setHandshake(null));
    get<Bindings>(`${base}/bindings`).then(setBindings, () => setBindings(null));
    get<AuditPage>(`${base}/audit`, { limit: 8 }).then(setAudit, () => setAudit(null));
    get<UsagePage>("/api/runtime/billing/usage", { company: id, limit: 500 }).then(setUsage, () => setUsage(null));
  };
  useEffect(() => {
    get<Company>(base).then(setCompany, (err) => {
      if (err instanceof ApiError && err.status === 404) setGone(true);
      else setError(err);
    });
    get<ReleaseCatalog>("/api/registry/company-releases/catalog").then(setCatalog, () => undefined);
    side();
  }, [id]);

  const live = useLive(`${base}/events`, ["company", "deleted"], (type, data) => {
    if (type === "deleted") setGone(true);
    else setCompany(data as Company);
  });
  // The side panels follow the phase (a new revision, a bound credential) without a reload.
  useEffect(() => { if (company) side(); }, [company?.phase, company?.currentRevision?.name]);

  const run = async (r: ActionRequest) => {
    const { action, ...body } = r;
    if (action === "destroy") await del(base, body);
    else {
      const answer = await post<{ company: Company }>(`${base}/${action}`, body);
      setCompany(answer.company);
    }
  };

  if (gone) {
    return (
      <main id="main">
        <h1>{id}</h1>
        <Alert kind="info">This exocorp does not exist (any more), or it is not yours.</Alert>
        <p><a href="/">Back to your exocorps</a></p>
      </main>
    );
  }
  if (!company) return <main id="main"><Alert error={error} />{!error && <Loading what="the exocorp" />}</main>;

  const channel = company.release?.channel ?? "stable";
  const versions = (catalog?.releases ?? [])
    .filter((r) => r.status === "published" && (r.spec.channels ?? []).includes(channel))
    .map((r) => r.spec.version);
  const falseConditions = company.conditions.filter((c) => c.status !== "True");
  const spent = (usage?.items ?? []).reduce((sum, u) => sum + u.amount, 0);
  const isOwner = company.role === "owner";

  return (
    <main id="main" class="company">
      <nav class="crumbs" aria-label="Breadcrumb"><a href="/">Exocorps</a> / <span>{company.slug}</span></nav>
      <section class={`hero phase-bg-${company.phase.toLowerCase()}`} aria-labelledby="company-name">
        <div class="hero-title">
          <h1 id="company-name">{company.displayName}</h1>
          <span class={`live live-${live}`}>{live === "live" ? "Live" : "Reconnecting…"}</span>
        </div>
        <p class="hero-phase" aria-live="polite">
          <PhaseBadge phase={company.phase} />
          <span data-testid="phase-explanation">{phaseExplanation(company.phase)}</span>
        </p>
        {company.pauseReason && <p>Paused because: <em>{company.pauseReason}</em></p>}
        {company.rolloutInProgress && <p class="muted">A change is rolling out…</p>}
        {company.lastAction && <p class="muted">Last action: {company.lastAction.action} by {company.lastAction.requestedBy}, {when(company.lastAction.at)}{company.lastAction.reason ? ` (“${company.lastAction.reason}”)` : ""}</p>}
        <details>
          <summary>Conditions ({falseConditions.length ? `${falseConditions.length} not true` : "all true"})</summary>
          <table>
            <thead><tr><th scope="col">Condition</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Message</th></tr></thead>
            <tbody>{company.conditions.map((c) => <tr><td>{c.type}</td><td>{c.status}</td><td>{c.reason}</td><td>{c.message}</td></tr>)}</tbody>
          </table>
        </details>
      </section>

      <section class="card" aria-labelledby="h-actions">
        <h2 id="h-actions">Actions</h2>
        <ActionBar slug={company.slug} actions={company.actions} history={company.history} versions={versions} run={run}
          only={isOwner ? undefined : ["provision", "update", "restart", "pause", "resume", "stop", "reprovision", "rollback"]} />
      </section>

      <div class="grid">
        <section class="card" aria-labelledby="h-release">
          <h2 id="h-release">Release</h2>
          <dl>
            <dt>Installed</dt><dd>{company.releaseStatus ? `${company.releaseStatus.version} (${company.releaseStatus.status})` : company.release?.version ?? "not installed"}</dd>
            <dt>Channel</dt><dd>{channel}</dd>
            <dt>Available</dt><dd>{handshake?.availableVersion ?? "—"}</dd>
            <dt>Handshake</dt><dd><span class={`badge hs-${handshake?.status ?? "unknown"}`}>{handshake?.status.replace(/_/g, " ") ?? "…"}</span></dd>
          </dl>
          {handshake && handshake.reasons.length > 0 && <ul class="muted">{handshake.reasons.map((r) => <li>{r.message}</li>)}</ul>}
        </section>

        <section class="card" aria-labelledby="h-runtime">
          <h2 id="h-runtime">Runtime readiness</h2>
          {bindings ? (
            <ul class="plain">
              {bindings.bindings.map((b) => (
                <li class={b.status === "bound" ? "ok" : "warn"}>
                  <strong>{b.provider}</strong> {b.required ? "(required)" : "(optional)"}: {b.status === "bound" ? `bound to ${b.secretName ?? b.secretId}` : <>missing — <a href="/account#credentials">add a {b.provider} credential</a></>}
                </li>
              ))}
              {bindings.bindings.length === 0 && <li class="muted">No provider needed.</li>}
            </ul>
          ) : <p class="muted">—</p>}
          <h3>Components</h3>
          {company.components.length ? (
            <table class="small">
              <thead><tr><th scope="col">Component</th><th scope="col">Ready</th><th scope="col">Restarts</th></tr></thead>
              <tbody>{company.components.map((c) => <tr><td>{c.name}</td><td>{c.ready ?? 0}/{c.desired ?? 0}</td><td>{c.restarts ?? 0}</td></tr>)}</tbody>
            </table>
          ) : <p class="muted">No runtime yet.</p>}
        </section>

        <section class="card" aria-labelledby="h-domains">
          <h2 id="h-domains">Domains</h2>
          <ul class="plain">
            {company.domains.map((d) => (
              <li><span class="mono">{d.host}</span> <span class="muted">{d.kind} · routing {d.routing ?? "pending"} · TLS {d.tls ?? "pending"}</span></li>
            ))}
          </ul>
        </section>

        <section class="card" aria-labelledby="h-usage">
          <h2 id="h-usage">Usage and cost</h2>
          <p><span class="num">{money(spent, me.account?.currency)}</span> so far</p>
          <p class="muted">{usage ? `${usage.items.length} metered windows${usage.nextCursor ? " (first 500)" : ""}` : "—"}</p>
        </section>
      </div>

      <section class="card" aria-labelledby="h-config">
        <h2 id="h-config">Configuration</h2>
        <DraftEditor base={base} catalog={catalog} onSaved={side} />
        {isOwner && <div class="row"><ManifestPreview base={base} /></div>}
      </section>

      <section class="card" aria-labelledby="h-history">
        <h2 id="h-history">Revision history</h2>
        {company.history.length ? (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Table (scrolls sideways)">
            <table>
              <thead><tr><th scope="col">#</th><th scope="col">Version</th><th scope="col">Action</th><th scope="col">Outcome</th><th scope="col">By</th><th scope="col">When</th><th scope="col"><span class="sr-only">Rollback</span></th></tr></thead>
              <tbody>
                {[...company.history].reverse().map((r) => (
                  <tr>
                    <td>{r.number}{company.currentRevision?.name === r.name && <span class="muted"> (current)</span>}</td>
                    <td>{r.version}</td><td>{r.action ?? "—"}</td><td>{r.outcome ?? "—"}</td><td>{r.requestedBy ?? "—"}</td><td>{when(r.createdAt)}</td>
                    <td>{r.outcome === "Succeeded" && company.currentRevision?.name !== r.name && (
                      <button type="button" class="small" disabled={company.actions?.rollback ? !company.actions.rollback.allowed : false}
                        title={company.actions?.rollback?.reason ?? undefined}
                        onClick={() => { void run({ action: "rollback", revision: r.name }).catch((e) => setError(e)); }}>Roll back to #{r.number}</button>
                    )}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : <p class="muted">No revision yet: provision to create the first.</p>}
        <Alert error={error} />
      </section>

      <MembersCard base={base} me={me} isOwner={isOwner} onLeft={() => navigate("/", true)} />

      <section class="card" aria-labelledby="h-audit">
        <h2 id="h-audit">Recent activity</h2>
        <ul class="plain">
          {(audit?.events ?? []).map((e) => (
            <li><span class="muted">{when(e.at)}</span> {e.actor.name ?? e.actor.kind} — {e.action} <span class={`outcome-${e.outcome}`}>{e.outcome}</span>{e.reason ? ` (“${e.reason}”)` : ""}{e.error ? `: ${e.error}` : ""}</li>
          ))}
        </ul>
      </section>
    </main>
  );
}
