// Small shared pieces: phase badge, alerts, labelled fields, the confirm dialog, dates.
import type { ComponentChildren, JSX } from "preact";
import { useLayoutEffect, useRef } from "preact/hooks";
import { describe } from "../api/client";
import type { Phase } from "../api/types";
import { useSubmit } from "./submit";

const PHASE_TEXT: Record<Phase, string> = {
  Draft: "Not provisioned yet: edit the configuration, then provision.",
  Provisioning: "The platform is creating the runtime.",
  Starting: "The runtime exists; its components are starting.",
  Running: "Running and serving its domains.",
  Paused: "Paused: components scaled to zero, state kept. Resume to continue.",
  Stopped: "Stopped: the runtime is removed, data kept. Provision again to restart it.",
  Failed: "The last change failed. Read the conditions, then roll back, retry or reprovision.",
  Destroying: "Being destroyed: everything is being removed.",
};

export function phaseExplanation(phase: Phase): string {
  return PHASE_TEXT[phase];
}

export function PhaseBadge({ phase }: { phase: Phase }) {
  return <span class={`badge phase-${phase.toLowerCase()}`}>{phase}</span>;
}

export function Alert({ error, kind = "error", children }: { error?: unknown; kind?: "error" | "info" | "ok"; children?: ComponentChildren }) {
  if (error === undefined && !children) return null;
  return (
    <div class={`alert alert-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {error !== undefined ? describe(error) : children}
    </div>
  );
}

type InputProps = JSX.InputHTMLAttributes<HTMLInputElement> & { label: string; error?: string | undefined; hint?: string };

let fieldSeq = 0;
export function Field({ label, error, hint, id, ...rest }: InputProps) {
  const ref = useRef(id ? String(id) : `f${++fieldSeq}`);
  const fid = ref.current;
  return (
    <div class={`field${error ? " has-error" : ""}`}>
      <label for={fid}>{label}</label>
      <input id={fid} aria-invalid={error ? "true" : undefined} aria-describedby={error ? `${fid}-err` : hint ? `${fid}-hint` : undefined} {...rest} />
      {hint && !error && <small id={`${fid}-hint`} class="hint">{hint}</small>}
      {error && <small id={`${fid}-err`} class="field-error">{error}</small>}
    </div>
  );
}

/** A modal built on <dialog>: the browser traps focus and closes it on Escape. */
export function Modal({ title, onClose, wide = false, children }: { title: string; onClose: () => void; wide?: boolean; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const gone = useRef(false);
  useLayoutEffect(() => {
    // The dialog is unmounted rather than closed, so the browser's own focus return does not
    // happen: give the focus back to what opened it (keyboard users continue from there).
    const opener = document.activeElement as HTMLElement | null;
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => {
      gone.current = true;
      // Still modal when unmounted from a cancel handler: close first, or the page is inert.
      if (d?.open) d.close();
      if (opener?.isConnected) opener.focus();
    };
  }, []);
  // The close event of a dialog taken down comes later, as a task of its own: by then the same
  // button may have opened a new dialog (Escape, then Enter at once), which it must not close.
  const closed = () => { if (!gone.current) onClose(); };
  return (
    <dialog ref={ref} class={wide ? "modal modal-wide" : "modal"} aria-label={title} onClose={closed} onCancel={closed}>
      <h2>{title}</h2>
      {children}
    </dialog>
  );
}

/** Ask before a step that cannot be taken back; the API's refusal is shown in the dialog. */
export function Confirm({ title, action, onConfirm, onClose, children }: {
  title: string; action: string; onConfirm: () => Promise<void>; onClose: () => void; children: ComponentChildren;
}) {
  const { busy, error, submit } = useSubmit(onConfirm);
  return (
    <Modal title={title} onClose={onClose}>
      <form onSubmit={submit}>
        {children}
        <Alert error={error} />
        <div class="row">
          <button type="submit" class="danger" disabled={busy}>{busy ? `${action}…` : action}</button>
          <button type="button" onClick={onClose}>Cancel</button>
        </div>
      </form>
    </Modal>
  );
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  const seconds = Math.round((Date.now() - d.getTime()) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return d.toISOString().slice(0, 16).replace("T", " ");
}

export function money(amount: number, currency = "credits"): string {
  return `${(amount / 100).toFixed(2)} ${currency}`;
}

export function Loading({ what }: { what: string }) {
  return <p class="muted" aria-live="polite">Loading {what}…</p>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}
