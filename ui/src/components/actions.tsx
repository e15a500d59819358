// Every lifecycle action as a button. Whether it is enabled, and why not, comes from the
// company answer's `actions` map (the server's lifecycle planners): no rule is repeated here.
// Pause asks for a reason; stop, reprovision and destroy need the slug typed.
import { useState } from "preact/hooks";
import { describe } from "../api/client";
import type { ActionMap, ActionName, Revision } from "../api/types";
import { ACTIONS } from "../api/types";
import { Alert, Field, Modal } from "./ui";

const LABEL: Record<ActionName, string> = {
  provision: "Provision", update: "Update", restart: "Restart", pause: "Pause", resume: "Resume",
  stop: "Stop", reprovision: "Reprovision", rollback: "Roll back", destroy: "Destroy",
};
const HELP: Record<ActionName, string> = {
  provision: "Create the runtime from the saved configuration.",
  update: "Install a newer release.",
  restart: "Restart every component.",
  pause: "Scale to zero, keep everything.",
  resume: "Scale back up after a pause.",
  stop: "Remove the runtime, keep the data.",
  reprovision: "Rebuild the runtime from scratch.",
  rollback: "Return to an earlier successful revision.",
  destroy: "Delete the exocorp and all its data, for good.",
};
const TYPED = new Set<ActionName>(["stop", "reprovision", "destroy"]);

export interface ActionRequest {
  action: ActionName;
  reason?: string;
  confirm?: string;
  version?: string;
  revision?: string;
}

interface Props {
  slug: string;
  actions: ActionMap | undefined;
  history: Revision[];
  versions: string[];
  run: (request: ActionRequest) => Promise<void>;
  /** Actions to show (the admin table shows a compact set). */
  only?: readonly ActionName[];
  compact?: boolean;
}

export function ActionBar({ slug, actions, history, versions, run, only = ACTIONS, compact = false }: Props) {
  const [open, setOpen] = useState<ActionName | null>(null);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState<ActionName | null>(null);

  const start = async (request: ActionRequest) => {
    setBusy(request.action);
    setError(undefined);
    try {
      await run(request);
      setOpen(null);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };
  const click = (a: ActionName) => {
    setError(undefined);
    if (a === "pause" || a === "update" || a === "rollback" || TYPED.has(a)) setOpen(a);
    else void start({ action: a });
  };

  return (
    <div class={compact ? "actions compact" : "actions"}>
      <div class="action-buttons" role="group" aria-label="Actions">
        {only.map((a) => {
          const state = actions?.[a];
          const allowed = state ? state.allowed : true;
          const why = state && !state.allowed ? state.reason ?? state.code ?? "" : "";
          return (
            <button type="button" class={a === "destroy" ? "danger" : a === "provision" ? "primary" : ""} disabled={!allowed || busy !== null}
              title={why || HELP[a]} aria-describedby={why && !compact ? `why-${a}` : undefined} data-action={a} onClick={() => click(a)}>
              {busy === a ? `${LABEL[a]}…` : LABEL[a]}
            </button>
          );
        })}
      </div>
      {!compact && (
        <ul class="why">
          {only.map((a) => {
            const state = actions?.[a];
            return state && !state.allowed && state.reason && a !== "destroy" && a !== "reprovision"
              ? <li id={`why-${a}`}><strong>{LABEL[a]}:</strong> {state.reason}</li> : null;
          })}
        </ul>
      )}
      {!open && error !== undefined && <Alert error={error} />}
      {open && (
        <ActionDialog action={open} slug={slug} history={history} versions={versions} error={error}
          busy={busy !== null} onRun={start} onClose={() => { setOpen(null); setError(undefined); }} />
      )}
    </div>
  );
}

function ActionDialog({ action, slug, history, versions, error, busy, onRun, onClose }: {
  action: ActionName; slug: string; history: Revision[]; versions: string[]; error: unknown; busy: boolean;
  onRun: (r: ActionRequest) => void; onClose: () => void;
}) {
  const [reason, setReason] = useState("");
  const [confirm, setConfirm] = useState("");
  const [version, setVersion] = useState(versions[0] ?? "");
  const good = history.filter((r) => r.outcome === "Succeeded");
  const [revision, setRevision] = useState("");
  const typed = TYPED.has(action);
  const submit = (e: Event) => {
    e.preventDefault();
    onRun({
      action,
      ...(reason ? { reason } : {}),
      // The API takes a confirmation only for destroy; stop and reprovision confirm here.
      ...(action === "destroy" ? { confirm } : {}),
      ...(action === "update" && version ? { version } : {}),
      ...(action === "rollback" && revision ? { revision } : {}),
    });
  };
  return (
    <Modal title={`${LABEL[action]} ${slug}`} onClose={onClose}>
      <form onSubmit={submit}>
        <p>{HELP[action]}</p>
        {action === "update" && (
          <div class="field">
            <label for="update-version">Version</label>
            <select id="update-version" value={version} onChange={(e) => setVersion(e.currentTarget.value)}>
              {versions.length === 0 && <option value="">newest on the channel</option>}
              {versions.map((v) => <option value={v}>{v}</option>)}
            </select>
          </div>
        )}
        {action === "rollback" && (
          <div class="field">
            <label for="rollback-revision">Revision</label>
            <select id="rollback-revision" value={revision} onChange={(e) => setRevision(e.currentTarget.value)}>
              <option value="">the previous successful one</option>
              {good.map((r) => <option value={r.name}>#{r.number} · {r.version}</option>)}
            </select>
          </div>
        )}
        <Field label={action === "pause" ? "Reason (required)" : "Reason (optional)"} required={action === "pause"} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        {typed && (
          <Field label={`Type the slug “${slug}” to confirm`} autocomplete="off" required value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} />
        )}
        {error !== undefined && <div class="alert alert-error" role="alert">{describe(error)}</div>}
        <div class="row">
          <button type="submit" class={action === "destroy" ? "danger" : "primary"} disabled={busy || (typed && confirm !== slug) || (action === "pause" && !reason.trim())}>
            {LABEL[action]}
          </button>
          <button type="button" onClick={onClose}>Cancel</button>
        </div>
      </form>
    </Modal>
  );
}
