// Home: status strip (phases, credential coverage), the fleet table with search, phase filter
// and pages of 50 (fast with 1,000 exocorps), live over the my-companies stream, and "create".
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, get, post } from "../api/client";
import type { Channel, CompanySummary, Draft, Me, Phase, Summary } from "../api/types";
import { PHASES } from "../api/types";
import type { components } from "../api/schema";
import { InvitationsBanner } from "../components/members";
import { useSubmit } from "../components/submit";
import { Alert, Empty, Field, Loading, Modal, PhaseBadge, when } from "../components/ui";
import { useLive } from "../live";
import { navigate } from "../router";
import { refreshSession } from "../session";

const PAGE = 50;

export function Fleet({ me }: { me: Me }) {
  const [companies, setCompanies] = useState<Map<string, CompanySummary> | null>(null);
  const [summary, setSummary] = useState<Summary | null>(null);
  const [error, setError] = useState<unknown>();
  const [search, setSearch] = useState("");
  const [phase, setPhase] = useState<Phase | "">("");
  const [page, setPage] = useState(0);
  const [creating, setCreating] = useState(false);

  const load = async () => {
    try {
      const [list, sum] = await Promise.all([
        get<{ companies: CompanySummary[] }>("/api/registry/my-companies"),
        get<Summary>("/api/dashboard/summary"),
      ]);
      setCompanies(new Map(list.companies.map((c) => [c.id, c])));
      setSummary(sum);
      setError(undefined);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => { void load(); }, []);

  // The summary's counts are the server's; a change re-reads them (cheap) a moment later.
  const [stale, setStale] = useState(0);
  useEffect(() => {
    if (!stale) return undefined;
    const t = window.setTimeout(() => {
      get<Summary>("/api/dashboard/summary").then(setSummary, () => undefined);
    }, 300);
    return () => window.clearTimeout(t);
  }, [stale]);

  const live = useLive("/api/registry/my-companies/events", ["company", "deleted"], (type, data) => {
    setCompanies((prev) => {
      const next = new Map(prev ?? []);
      const item = data as CompanySummary;
      if (type === "deleted") next.delete(item.id);
      else next.set(item.id, item);
      return next;
    });
    setStale((s) => s + 1);
  });

  const missing = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const p of summary?.providerCoverage.missing ?? []) m.set(p.exocorpId, [...(m.get(p.exocorpId) ?? []), p.provider]);
    return m;
  }, [summary]);

  const rows = useMemo(() => {
    const q = search.trim().toLowerCase();
    return [...(companies?.values() ?? [])]
      .filter((c) => (!phase || c.phase === phase) && (!q || c.slug.includes(q) || c.displayName.toLowerCase().includes(q)))
      .sort((a, b) => a.displayName.localeCompare(b.displayName));
  }, [companies, search, phase]);
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  const shown = rows.slice(page * PAGE, page * PAGE + PAGE);
  useEffect(() => setPage(0), [search, phase]);

  const coverage = summary?.providerCoverage;
  return (
    <main id="main">
      <div class="page-head">
        <h1>Your exocorps</h1>
        <span class={`live live-${live}`} title="Live updates">{live === "live" ? "Live" : "Reconnecting…"}</span>
        <button class="primary" type="button" onClick={() => setCreating(true)}>Create exocorp</button>
      </div>
      <Alert error={error} />
      <InvitationsBanner me={me} onAnswered={() => { void refreshSession().then(load); }} />
      {summary && (
        <section class="strip" aria-label="Status">
          <div class="stat"><span class="num">{summary.total}</span><span>total</span></div>
          {PHASES.filter((p) => (summary.byPhase[p] ?? 0) > 0 || ["Running", "Draft", "Stopped", "Failed"].includes(p)).map((p) => (
            <button type="button" class={`stat stat-btn phase-${p.toLowerCase()}${phase === p ? " active" : ""}`} aria-pressed={phase === p} onClick={() => setPhase(phase === p ? "" : p)}>
              <span class="num">{summary.byPhase[p] ?? 0}</span><span>{p.toLowerCase()}</span>
            </button>
          ))}
          <a class={`stat coverage${coverage && coverage.configured < coverage.required ? " warn" : ""}`} href="/account#credentials">
            <span class="num">{coverage?.configured ?? 0}/{coverage?.required ?? 0}</span><span>providers configured</span>
          </a>
        </section>
      )}
      {companies && companies.size === 0 && (
        <Empty>
          <h2>Start your first exocorp</h2>
          <ol class="steps">
            <li><a href="/account#credentials">Add a provider credential</a> (an API key your agents use, e.g. for anthropic).</li>
            <li><button type="button" class="link" onClick={() => setCreating(true)}>Create an exocorp</button>: pick a name; it starts as a Draft.</li>
            <li>Open it and press <strong>Provision</strong>: it goes live in a minute.</li>
          </ol>
        </Empty>
      )}
      {companies && companies.size > 0 && (
        <section aria-label="Fleet">
          <div class="filters">
            <Field label="Search" type="search" placeholder="name or slug" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
            <div class="field">
              <label for="phase-filter">Phase</label>
              <select id="phase-filter" value={phase} onChange={(e) => setPhase(e.currentTarget.value as Phase | "")}>
                <option value="">All phases</option>
                {PHASES.map((p) => <option value={p}>{p}</option>)}
              </select>
            </div>
          </div>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Table (scrolls sideways)">
            <table class="fleet">
              <thead><tr><th scope="col">Exocorp</th><th scope="col">Phase</th><th scope="col">Release</th><th scope="col">Providers</th><th scope="col">Last action</th></tr></thead>
              <tbody>
                {shown.map((c) => {
                  const miss = missing.get(c.id);
                  return (
                    <tr key={c.id} data-company={c.id}>
                      <td><a href={`/company/${encodeURIComponent(c.id)}`}><strong>{c.displayName}</strong></a><div class="muted mono">{c.slug}</div></td>
                      <td><PhaseBadge phase={c.phase} />{c.rolloutInProgress && <span class="muted"> rolling out</span>}{c.pauseReason && <div class="muted">{c.pauseReason}</div>}</td>
                      <td>{c.release ? `${c.release.version}` : "—"}<div class="muted">{c.release?.channel ?? ""}</div></td>
                      <td>{miss ? <a class="warn" href="/account#credentials">missing {miss.join(", ")}</a> : <span class="ok">ready</span>}</td>
                      <td>{c.lastAction ? <>{c.lastAction.action}<div class="muted">{when(c.lastAction.at)}</div></> : "—"}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {rows.length === 0 && <p class="muted">No exocorp matches.</p>}
          <nav class="pager" aria-label="Pages">
            <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>Previous</button>
            <span>Page {page + 1} of {pages} · {rows.length} exocorps</span>
            <button type="button" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)}>Next</button>
          </nav>
        </section>
      )}
      {!companies && !error && <Loading what="your exocorps" />}
      {creating && <CreateCompany me={me} onClose={() => setCreating(false)} />}
    </main>
  );
}

type CurrentRelease = components["schemas"]["CurrentRelease"];

function CreateCompany({ onClose }: { me: Me; onClose: () => void }) {
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [slugTouched, setSlugTouched] = useState(false);
  const [channel, setChannel] = useState<Channel>("stable");
  const autoSlug = (n: string) => n.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
  const { busy, error, errors, submit } = useSubmit(async () => {
    let draft: Draft | undefined;
    try {
      const current = await get<CurrentRelease>("/api/registry/company-releases/current", { channel });
      const provider = current.release.spec.requiredProviders?.[0] ?? "anthropic";
      draft = {
        channel, version: current.release.spec.version,
        config: { agents: [{ name: "ceo", role: "Chief executive", provider, model: "default" }], teams: [], componentSizes: {}, requiredProviders: [] },
        providerBindings: [],
      };
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    await post("/api/registry/companies", { slug, displayName: name, ...(draft ? { draft } : {}) });
    navigate(`/company/${encodeURIComponent(slug)}`);
  });
  return (
    <Modal title="Create an exocorp" onClose={onClose}>
      <form onSubmit={submit}>
        <Field label="Name" required maxLength={100} value={name} error={errors.displayName} onInput={(e) => { setName(e.currentTarget.value); if (!slugTouched) setSlug(autoSlug(e.currentTarget.value)); }} />
        <Field label="Slug" required value={slug} pattern="[a-z0-9][a-z0-9-]{1,38}[a-z0-9]" error={errors.slug} hint="3–40 lowercase letters, digits and dashes; its address, reserved for good." onInput={(e) => { setSlug(e.currentTarget.value); setSlugTouched(true); }} />
        <div class="field">
          <label for="create-channel">Release channel</label>
          <select id="create-channel" value={channel} onChange={(e) => setChannel(e.currentTarget.value as Channel)}>
            <option value="stable">stable (recommended)</option><option value="beta">beta</option><option value="canary">canary</option>
          </select>
        </div>
        <Alert error={Object.keys(errors).length ? undefined : error} />
        <div class="row">
          <button class="primary" type="submit" disabled={busy}>{busy ? "Creating…" : "Create"}</button>
          <button type="button" onClick={onClose}>Cancel</button>
        </div>
      </form>
    </Modal>
  );
}
