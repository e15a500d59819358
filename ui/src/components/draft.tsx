// The draft editor: a structured form (channel, version, agents). The API validates; its 400
// field errors (dotted paths like draft.config.agents.0.model) are shown next to the field.
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, post } from "../api/client";
import type { AgentConfig, Channel, Draft, DraftView, ReleaseCatalog } from "../api/types";
import { Alert, Field, when } from "./ui";

const EMPTY_CONFIG = { agents: [], teams: [], componentSizes: {}, requiredProviders: [] };
const EMPTY_AGENT: AgentConfig = { name: "", role: "", provider: "anthropic", model: "default" };

export function DraftEditor({ base, catalog, onSaved }: { base: string; catalog: ReleaseCatalog | null; onSaved: () => void }) {
  const [view, setView] = useState<DraftView | null>(null);
  const [draft, setDraft] = useState<Draft>({ channel: "stable", version: null, config: { ...EMPTY_CONFIG }, providerBindings: [] });
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    get<DraftView>(`${base}/draft`).then((v) => { setView(v); setDraft(v.draft); }, (err) => {
      if (!(err instanceof ApiError && err.status === 404)) setError(err);
    });
  }, [base]);

  const agents = draft.config?.agents ?? [];
  const setAgents = (next: AgentConfig[]) => setDraft({ ...draft, config: { ...EMPTY_CONFIG, ...draft.config, agents: next } });
  const setAgent = (i: number, patch: Partial<AgentConfig>) => setAgents(agents.map((a, j) => (j === i ? { ...a, ...patch } : a)));
  const channel = draft.channel ?? "stable";
  const versions = (catalog?.releases ?? []).filter((r) => r.status === "published" && (r.spec.channels ?? []).includes(channel)).map((r) => r.spec.version);

  const errors: Record<string, string> = {};
  if (error instanceof ApiError) for (const [k, v] of Object.entries(error.fieldErrors())) errors[k.replace(/^draft\./, "")] = v;
  const shown = new Set<string>();
  const err = (path: string) => { if (errors[path]) shown.add(path); return errors[path]; };

  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setSaved(false);
    try {
      const v = await post<DraftView>(`${base}/draft`, { draft, ...(view ? { baseVersion: view.version } : {}) });
      setView(v);
      setDraft(v.draft);
      setSaved(true);
      onSaved();
    } catch (ex) {
      setError(ex);
    } finally {
      setBusy(false);
    }
  };

  const form = (
    <form onSubmit={save} class="draft" novalidate>
      <div class="row wrap">
        <div class={`field${errors.channel ? " has-error" : ""}`}>
          <label for="draft-channel">Channel</label>
          <select id="draft-channel" value={channel} onChange={(e) => setDraft({ ...draft, channel: e.currentTarget.value as Channel })}>
            <option value="stable">stable</option><option value="beta">beta</option><option value="canary">canary</option>
          </select>
          {err("channel") && <small class="field-error">{errors.channel}</small>}
        </div>
        <div class={`field${errors.version ? " has-error" : ""}`}>
          <label for="draft-version">Version</label>
          <select id="draft-version" value={draft.version ?? ""} onChange={(e) => setDraft({ ...draft, version: e.currentTarget.value || null })}>
            <option value="">newest on {channel}</option>
            {versions.map((v) => <option value={v}>{v}</option>)}
          </select>
          {err("version") && <small class="field-error">{errors.version}</small>}
        </div>
      </div>
      <fieldset>
        <legend>Agents</legend>
        {agents.map((a, i) => (
          <div class="agent-row">
            <Field label={`Agent ${i + 1} name`} value={a.name} error={err(`config.agents.${i}.name`)} onInput={(e) => setAgent(i, { name: e.currentTarget.value })} />
            <Field label="Role" value={a.role} error={err(`config.agents.${i}.role`)} onInput={(e) => setAgent(i, { role: e.currentTarget.value })} />
            <Field label="Provider" value={a.provider} error={err(`config.agents.${i}.provider`)} onInput={(e) => setAgent(i, { provider: e.currentTarget.value })} />
            <Field label="Model" value={a.model} error={err(`config.agents.${i}.model`)} onInput={(e) => setAgent(i, { model: e.currentTarget.value })} />
            <button type="button" class="small" aria-label={`Remove agent ${i + 1}`} onClick={() => setAgents(agents.filter((_, j) => j !== i))}>Remove</button>
          </div>
        ))}
        <button type="button" class="small" onClick={() => setAgents([...agents, { ...EMPTY_AGENT }])}>Add agent</button>
        {err("config.agents") && <small class="field-error">{errors["config.agents"]}</small>}
      </fieldset>
      {Object.keys(errors).filter((k) => !shown.has(k)).map((k) => <div class="alert alert-error" role="alert">{k}: {errors[k]}</div>)}
      <Alert error={error instanceof ApiError && error.status === 400 ? undefined : error} />
      {error instanceof ApiError && error.status === 400 && <div class="alert alert-error" role="alert">The configuration was not saved: fix the marked fields.</div>}
      {saved && <Alert kind="ok">Saved (version {view?.version}). Provision or update to apply it.</Alert>}
      <div class="row">
        <button class="primary" type="submit" disabled={busy}>{busy ? "Saving…" : "Save configuration"}</button>
        {view && <span class="muted">Draft version {view.version}, saved {when(view.updatedAt)}</span>}
      </div>
    </form>
  );
  return form;
}
