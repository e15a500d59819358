// Platform owners only (the shell hides these routes from others; the API refuses them anyway).
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, get, post } from "../api/client";
import type { ActionName, AdminAccount, Me, AdminCompany, AdminCompanyList, AuditEvent, AuditPage, LimitSetting, LimitsOverview, Phase, PriceBook, RuntimeStats } from "../api/types";
import { PHASES } from "../api/types";
import { ActionBar, type ActionRequest } from "../components/actions";
import { LimitForm, limitsInBrief, settingInBrief } from "../components/limits";
import { Alert, Confirm, Field, Loading, Modal, PhaseBadge, money, when } from "../components/ui";

function AuditTable({ events }: { events: AuditEvent[] }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label="Table (scrolls sideways)">
      <table>
        <thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Exocorp</th><th scope="col">Outcome</th><th scope="col">Reason / error</th></tr></thead>
        <tbody>
          {events.map((e) => (
            <tr>
              <td>{when(e.at)}</td><td>{e.actor.name ?? e.actor.kind}</td><td>{e.action}</td><td>{e.companyId ?? "—"}</td>
              <td class={`outcome-${e.outcome}`}>{e.outcome}</td><td>{e.reason ?? ""}{e.error ? ` ${e.error}` : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function AdminHome() {
  const [stats, setStats] = useState<RuntimeStats | null>(null);
  const [audit, setAudit] = useState<AuditPage | null>(null);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    get<RuntimeStats>("/api/admin/runtime-stats").then(setStats, setError);
    get<AuditPage>("/api/admin/audit", { limit: 10 }).then(setAudit, setError);
  }, []);
  return (
    <main id="main">
      <h1>Platform overview</h1>
      <Alert error={error} />
      {stats && (
        <section class="strip" aria-label="Runtime">
          <div class="stat"><span class="num">{stats.total}</span><span>exocorps</span></div>
          {PHASES.map((p) => <div class={`stat phase-${p.toLowerCase()}`}><span class="num">{stats.byPhase[p] ?? 0}</span><span>{p.toLowerCase()}</span></div>)}
          <div class="stat"><span class="num">{stats.podsReady}/{stats.podsTotal}</span><span>pods ready</span></div>
          <div class="stat"><span class="num">{stats.restarts}</span><span>restarts</span></div>
          <div class="stat"><span class="num">{stats.failingExocorps}</span><span>failing</span></div>
          <div class="stat"><span class="num">{stats.rolloutsInProgress}</span><span>rolling out</span></div>
        </section>
      )}
      <section class="card" aria-labelledby="h-newest">
        <h2 id="h-newest">Newest audit events</h2>
        {audit ? <AuditTable events={audit.events} /> : <Loading what="audit events" />}
        <p><a href="/admin/audit">All audit events</a></p>
      </section>
    </main>
  );
}

type SortKey = "slug" | "owner" | "phase" | "channel" | "version" | "lastUpdate";
const ROW_ACTIONS: readonly ActionName[] = ["provision", "restart", "pause", "resume", "stop"];

export function AdminCompanies() {
  const [list, setList] = useState<AdminCompanyList | null>(null);
  const [error, setError] = useState<unknown>();
  const [phase, setPhase] = useState<Phase | "">("");
  const [search, setSearch] = useState("");
  const [sort, setSort] = useState<SortKey>("slug");
  const [asc, setAsc] = useState(true);
  const load = () => get<AdminCompanyList>("/api/admin/companies", { phase: phase || null }).then(setList, setError);
  useEffect(() => { void load(); }, [phase]);

  const rows = useMemo(() => {
    const q = search.trim().toLowerCase();
    const key = (c: AdminCompany): string => {
      switch (sort) {
        case "owner": return c.owner.email ?? "";
        case "phase": return c.phase;
        case "channel": return c.channel ?? "";
        case "version": return c.installedVersion ?? c.version ?? "";
        case "lastUpdate": return c.lastUpdate ?? "";
        default: return c.slug;
      }
    };
    return (list?.companies ?? [])
      .filter((c) => !q || c.slug.includes(q) || c.displayName.toLowerCase().includes(q) || (c.owner.email ?? "").toLowerCase().includes(q))
      .sort((a, b) => (asc ? 1 : -1) * key(a).localeCompare(key(b)));
  }, [list, search, sort, asc]);

  const run = (c: AdminCompany) => async (r: ActionRequest) => {
    await post(`/api/admin/companies/${encodeURIComponent(c.id)}/actions`, r);
    await load();
  };
  const th = (k: SortKey, label: string) => (
    <th scope="col" aria-sort={sort === k ? (asc ? "ascending" : "descending") : "none"}>
      <button type="button" class="th-sort" onClick={() => { if (sort === k) setAsc(!asc); else { setSort(k); setAsc(true); } }}>{label}{sort === k ? (asc ? " ▲" : " ▼") : ""}</button>
    </th>
  );
  return (
    <main id="main">
      <h1>All companies</h1>
      <Alert error={error} />
      <div class="filters">
        <Field label="Search" type="search" placeholder="slug, name or owner" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        <div class="field">
          <label for="admin-phase">Phase</label>
          <select id="admin-phase" value={phase} onChange={(e) => setPhase(e.currentTarget.value as Phase | "")}>
            <option value="">All phases</option>
            {PHASES.map((p) => <option value={p}>{p}</option>)}
          </select>
        </div>
      </div>
      {list ? (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Table (scrolls sideways)">
          <table>
            <thead><tr>{th("slug", "Exocorp")}{th("owner", "Owner")}<th scope="col">Members</th>{th("phase", "Phase")}<th scope="col">Latest job</th>{th("channel", "Channel")}{th("version", "Version")}{th("lastUpdate", "Last update")}<th scope="col">Actions</th></tr></thead>
            <tbody>
              {rows.map((c) => (
                <tr data-company={c.id}>
                  <td><strong>{c.displayName}</strong><div class="mono muted">{c.slug}</div></td>
                  <td>{c.owner.email ?? c.owner.id}</td>
                  <td>{(c.members ?? []).length}</td>
                  <td><PhaseBadge phase={c.phase} /></td>
                  <td>{c.latestJob ? `#${c.latestJob.number} ${c.latestJob.action ?? ""} ${c.latestJob.outcome ?? ""}` : "—"}</td>
                  <td>{c.channel ?? "—"}</td><td>{c.installedVersion ?? c.version ?? "—"}</td><td>{when(c.lastUpdate)}</td>
                  <td><ActionBar compact slug={c.slug} actions={undefined} history={[]} versions={[]} run={run(c)} only={ROW_ACTIONS} /></td>
                </tr>
              ))}
            </tbody>
          </table>
          <p class="muted">{rows.length} of {list.total} companies</p>
        </div>
      ) : !error && <Loading what="companies" />}
    </main>
  );
}

export function AdminBilling({ me }: { me: Me }) {
  const [accounts, setAccounts] = useState<AdminAccount[] | null>(null);
  const [books, setBooks] = useState<PriceBook[] | null>(null);
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState<string | null>(null);
  const [topUp, setTopUp] = useState<AdminAccount | null>(null);
  const [disabling, setDisabling] = useState<AdminAccount | null>(null);
  const load = () => {
    get<{ items: AdminAccount[] }>("/api/admin/billing/accounts").then((a) => setAccounts(a.items), setError);
    get<{ items: PriceBook[] }>("/api/admin/billing/price-books").then((b) => setBooks(b.items), setError);
  };
  useEffect(load, []);
  const who = (a: AdminAccount) => a.email ?? a.userId;
  const setDisabled = async (a: AdminAccount, disabled: boolean) => {
    await post(`/api/admin/users/${encodeURIComponent(a.userId)}/${disabled ? "disable" : "enable"}`);
    setNotice(disabled ? `${who(a)} is disabled and signed out everywhere.` : `${who(a)} may log in again.`);
    setDisabling(null);
    load();
  };
  const enable = (a: AdminAccount) => {
    setError(undefined);
    setDisabled(a, false).catch(setError);
  };
  return (
    <main id="main">
      <h1>Billing</h1>
      <Alert error={error} />
      {notice && <Alert kind="ok">{notice}</Alert>}
      <section class="card" aria-labelledby="h-accounts">
        <h2 id="h-accounts">Accounts</h2>
        {accounts ? (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Table (scrolls sideways)">
            <table>
              <thead><tr><th scope="col">Account</th><th scope="col">Balance</th><th scope="col">State</th><th scope="col">Price book</th><th scope="col">Limits</th><th scope="col">Updated</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {accounts.map((a) => (
                  <tr data-account={a.id} data-user={a.userId}>
                    <td>{who(a)}{a.userDisabled && <> <span class="badge">disabled</span></>}</td><td>{money(a.balance, a.currency)}</td>
                    <td class={a.billingActive ? "ok" : "warn"}>{a.state}</td><td>{a.priceBook?.name ?? "default"}</td>
                    <td>{limitsInBrief(a.limits)}</td><td>{when(a.updatedAt)}</td>
                    <td class="row">
                      <button type="button" class="small" aria-label={`Top up ${who(a)}`} onClick={() => setTopUp(a)}>Top up</button>
                      {/* Not oneself: a disabled platform owner could not enable anyone again. */}
                      {a.userId === me.user.id ? null : a.userDisabled
                        ? <button type="button" class="small" aria-label={`Enable ${who(a)}`} onClick={() => enable(a)}>Enable</button>
                        : <button type="button" class="small danger" aria-label={`Disable ${who(a)}`} onClick={() => { setError(undefined); setDisabling(a); }}>Disable</button>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : !error && <Loading what="accounts" />}
      </section>
      <section class="card" aria-labelledby="h-books">
        <h2 id="h-books">Price books</h2>
        <ul class="plain">
          {(books ?? []).map((b) => (
            <li><strong>{b.name}</strong>{b.isDefault && <span class="badge">default</span>} <span class="muted">{b.currency} · {Object.entries(b.rates).map(([k, v]) => `${k} ${String(v)}/h`).join(", ")}</span></li>
          ))}
        </ul>
      </section>
      {topUp && <TopUp account={topUp} onClose={() => setTopUp(null)} onDone={() => { setTopUp(null); load(); }} />}
      {disabling && (
        <Confirm title={`Disable ${who(disabling)}?`} action="Disable" onConfirm={() => setDisabled(disabling, true)} onClose={() => setDisabling(null)}>
          <p>They cannot log in until enabled again; every session of theirs ends now and their connected agents lose access. Their exocorps keep running.</p>
        </Confirm>
      )}
    </main>
  );
}

function TopUp({ account, onClose, onDone }: { account: AdminAccount; onClose: () => void; onDone: () => void }) {
  const [amount, setAmount] = useState("10.00");
  const [reference, setReference] = useState(`topup-${Date.now()}`);
  const [error, setError] = useState<unknown>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await post(`/api/admin/billing/accounts/${encodeURIComponent(account.id)}/credits`, { amount: Math.round(Number(amount) * 100), reference });
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  const errors = error instanceof ApiError ? error.fieldErrors() : {};
  return (
    <Modal title={`Top up ${account.email ?? account.userId}`} onClose={onClose}>
      <form onSubmit={submit}>
        <Field label={`Amount (${account.currency})`} inputMode="decimal" required value={amount} error={errors.amount} onInput={(e) => setAmount(e.currentTarget.value)} />
        <Field label="Reference" required value={reference} error={errors.reference} hint="Unique; a repeated reference is not credited twice." onInput={(e) => setReference(e.currentTarget.value)} />
        <Alert error={Object.keys(errors).length ? undefined : error} />
        <div class="row"><button class="primary" type="submit">Top up</button><button type="button" onClick={onClose}>Cancel</button></div>
      </form>
    </Modal>
  );
}

export function AdminLimits() {
  const [overview, setOverview] = useState<LimitsOverview | null>(null);
  const [error, setError] = useState<unknown>();
  const load = () => { get<LimitsOverview>("/api/admin/limits").then(setOverview, setError); };
  useEffect(load, []);
  const scope = (key: "default" | "platform", title: string, about: string) => {
    const setting = overview?.[key];
    return (
      <section class="card" aria-labelledby={`h-limits-${key}`}>
        <h2 id={`h-limits-${key}`}>{title}</h2>
        <p class="muted">{about}</p>
        {setting && <>
          <p data-testid={`limits-${key}`}><strong>Now:</strong> {settingInBrief(setting)}</p>
          <LimitForm scope={key} setting={setting} onSaved={(saved: LimitSetting) => setOverview((o) => (o ? { ...o, [key]: saved } : o))} />
        </>}
      </section>
    );
  };
  return (
    <main id="main">
      <h1>Limits</h1>
      <p class="muted">A limit refuses creating, provisioning, resuming or growing beyond it; nothing running is ever removed. CPU, memory and storage bound what the exocorps' runtimes request.</p>
      <Alert error={error} />
      {overview ? (
        <section class="strip" aria-label="The whole platform now">
          <div class="stat"><span class="num">{overview.exocorps}</span><span>exocorps</span></div>
          <div class="stat"><span class="num">{overview.cpu}</span><span>CPU requested</span></div>
          <div class="stat"><span class="num">{overview.memory}</span><span>memory requested</span></div>
          <div class="stat"><span class="num">{overview.storage}</span><span>storage claimed</span></div>
        </section>
      ) : !error && <Loading what="limits" />}
      {scope("default", "Default per account", "What every account without limits of its own may have.")}
      {scope("platform", "Whole platform", "What all accounts together may have.")}
    </main>
  );
}

export function AdminAudit() {
  const [filters, setFilters] = useState({ actor: "", company: "", action: "", outcome: "", since: "" });
  const [page, setPage] = useState<AuditPage | null>(null);
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [error, setError] = useState<unknown>();
  const load = async (cursor?: string) => {
    setError(undefined);
    try {
      const p = await get<AuditPage>("/api/admin/audit", {
        ...filters, since: filters.since ? new Date(filters.since).toISOString() : "", cursor, limit: 50,
      });
      setPage(p);
      setEvents(cursor ? [...events, ...p.events] : p.events);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => { void load(); }, []);
  const set = (k: keyof typeof filters) => (e: Event) => setFilters({ ...filters, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <main id="main">
      <h1>Audit trail</h1>
      <form class="filters" onSubmit={(e) => { e.preventDefault(); void load(); }}>
        <Field label="Actor id" placeholder="user or agent client id" value={filters.actor} onInput={set("actor")} />
        <Field label="Exocorp" value={filters.company} onInput={set("company")} />
        <Field label="Action" value={filters.action} onInput={set("action")} />
        <div class="field">
          <label for="audit-outcome">Outcome</label>
          <select id="audit-outcome" value={filters.outcome} onChange={set("outcome")}>
            <option value="">any</option><option value="succeeded">succeeded</option><option value="refused">refused</option><option value="failed">failed</option>
          </select>
        </div>
        <Field label="Since" type="datetime-local" value={filters.since} onInput={set("since")} />
        <button type="submit" class="primary">Filter</button>
      </form>
      <Alert error={error} />
      <AuditTable events={events} />
      {page?.nextCursor && <button type="button" onClick={() => void load(page.nextCursor ?? undefined)}>Load more</button>}
    </main>
  );
}
