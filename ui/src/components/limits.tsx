// Limits: what an account uses of each bound ("3 of 10 exocorps"), and the form that sets every
// bound of one scope at once (platform owners). The API omits an unlimited bound, so a missing
// and a null value both read "no limit".
import { useState } from "preact/hooks";
import { api } from "../api/client";
import type { LimitSetting, LimitUsage } from "../api/types";
import { useSubmit } from "./submit";
import { Alert, Field } from "./ui";

interface UsageLine {
  what: string;
  used: string;
  max: string | null;
}

function lines(u: LimitUsage): UsageLine[] {
  return [
    { what: "exocorps", used: String(u.exocorps), max: u.maxExocorps == null ? null : String(u.maxExocorps) },
    { what: "CPU", used: u.cpu ?? "0", max: u.maxCpu ?? null },
    { what: "memory", used: u.memory ?? "0", max: u.maxMemory ?? null },
    { what: "storage", used: u.storage ?? "0", max: u.maxStorage ?? null },
  ];
}

function say(l: UsageLine): string {
  return l.max === null ? `${l.used} ${l.what} (no limit)` : `${l.used} of ${l.max} ${l.what}`;
}

/** One line per bound, for the account page's card. */
export function LimitList({ usage }: { usage: LimitUsage }) {
  return <ul class="plain limits">{lines(usage).map((l) => <li>{say(l)}</li>)}</ul>;
}

/** The bounds that are set, on one line (an admin table cell). */
export function limitsInBrief(usage: LimitUsage): string {
  const set = lines(usage).filter((l) => l.max !== null);
  return set.length ? set.map(say).join(" · ") : `${usage.exocorps} exocorps, no limit`;
}

/** A setting's bounds in words ("at most 10 exocorps, 16 CPU"), for the admin limits page. */
export function settingInBrief(s: LimitSetting): string {
  const parts = [
    s.maxExocorps == null ? null : `${s.maxExocorps} exocorps`,
    s.maxCpu == null ? null : `${s.maxCpu} CPU`,
    s.maxMemory == null ? null : `${s.maxMemory} memory`,
    s.maxStorage == null ? null : `${s.maxStorage} storage`,
  ].filter((p) => p !== null);
  return parts.length ? `At most ${parts.join(", ")}.` : "No limit.";
}

// The API's own words for a malformed quantity quote its regular expression: say it plainly.
function plain(message: string | undefined): string | undefined {
  return message && message.includes("should match pattern")
    ? "Not a quantity: write e.g. 16 or 2500m (CPU), 64Gi or 512Mi (memory, storage)."
    : message;
}

/** Every bound of `scope` ("default", "platform" or a user id) at once; empty is unlimited. */
export function LimitForm({ scope, setting, onSaved }: { scope: string; setting: LimitSetting; onSaved: (s: LimitSetting) => void }) {
  const [exocorps, setExocorps] = useState(setting.maxExocorps == null ? "" : String(setting.maxExocorps));
  const [cpu, setCpu] = useState(setting.maxCpu ?? "");
  const [memory, setMemory] = useState(setting.maxMemory ?? "");
  const [storage, setStorage] = useState(setting.maxStorage ?? "");
  const [saved, setSaved] = useState(false);
  const { busy, error, errors, submit } = useSubmit(async () => {
    setSaved(false);
    const text = (v: string) => (v.trim() === "" ? null : v.trim());
    const count = text(exocorps);
    const answer = await api<LimitSetting>("PUT", `/api/admin/limits/${encodeURIComponent(scope)}`, {
      body: {
        // Not a whole number: sent as typed, so the API names the field and nothing changes.
        maxExocorps: count !== null && /^\d+$/.test(count) ? Number(count) : count,
        maxCpu: text(cpu), maxMemory: text(memory), maxStorage: text(storage),
      },
    });
    setSaved(true);
    onSaved(answer);
  });
  return (
    <form onSubmit={submit}>
      <div class="filters">
        <Field label="Most exocorps" inputMode="numeric" value={exocorps} error={plain(errors.maxExocorps)} hint="Empty: no limit." onInput={(e) => setExocorps(e.currentTarget.value)} />
        <Field label="Most CPU" value={cpu} error={plain(errors.maxCpu)} hint="e.g. 16 or 2500m; empty: no limit." onInput={(e) => setCpu(e.currentTarget.value)} />
        <Field label="Most memory" value={memory} error={plain(errors.maxMemory)} hint="e.g. 64Gi; empty: no limit." onInput={(e) => setMemory(e.currentTarget.value)} />
        <Field label="Most storage" value={storage} error={plain(errors.maxStorage)} hint="e.g. 100Gi; empty: no limit." onInput={(e) => setStorage(e.currentTarget.value)} />
      </div>
      <Alert error={Object.keys(errors).length ? undefined : error} />
      {saved && <Alert kind="ok">Saved. Nothing running is removed; the limits refuse growth beyond them.</Alert>}
      <button class="primary" type="submit" disabled={busy}>{busy ? "Saving…" : "Save limits"}</button>
    </form>
  );
}
