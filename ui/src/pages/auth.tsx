// Sign up (the recovery kit shown once), log in with password or recovery kit.
import { useState } from "preact/hooks";
import { ApiError, api } from "../api/client";
import type { AuthResponse } from "../api/types";
import { Alert, Field } from "../components/ui";
import { navigate, useLocation } from "../router";
import { refreshSession } from "../session";

export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function Login() {
  const { query } = useLocation();
  const [email, setEmail] = useState("");
  const [secret, setSecret] = useState("");
  const [useKit, setUseKit] = useState(false);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [newKit, setNewKit] = useState<string | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const body = useKit ? { email, recoveryKit: secret } : { email, password: secret };
      const answer = await api<AuthResponse>("POST", "/api/auth/login", { body, anonymous: true });
      // Once the session is known, the app leaves /login for ?next= (app.tsx): a kit login
      // shows its new kit first and loads the session on Continue.
      if (answer.recoveryKit) setNewKit(answer.recoveryKit);
      else await refreshSession();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401
        ? new ApiError(401, { ...err.problem, detail: useKit ? "Wrong e-mail or recovery kit." : "Wrong e-mail or password." }, null)
        : err);
    } finally {
      setBusy(false);
    }
  };

  if (newKit) {
    return (
      <main id="main" class="auth">
        <h1>Your new recovery kit</h1>
        <RecoveryKit kit={newKit} email={email} />
        <button class="primary" onClick={() => void refreshSession()}>Continue</button>
      </main>
    );
  }
  return (
    <main id="main" class="auth">
      <h1>Log in to Exocorp</h1>
      {query.get("expired") && <Alert kind="info">Your session has ended. Log in to continue where you were.</Alert>}
      <form onSubmit={submit} class="card">
        <Field label="E-mail" type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        {useKit
          ? <Field label="Recovery kit" autocomplete="off" required placeholder="EXO-…" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} hint="It is replaced by a new one after this login." />
          : <Field label="Password" type="password" autocomplete="current-password" required value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />}
        <Alert error={error} />
        <div class="row">
          <button class="primary" type="submit" disabled={busy}>{busy ? "Logging in…" : "Log in"}</button>
          <button type="button" class="link" onClick={() => { setUseKit(!useKit); setSecret(""); }}>
            {useKit ? "Use my password instead" : "Use my recovery kit instead"}
          </button>
        </div>
      </form>
      <p>New here? <a href="/signup">Create an account</a></p>
    </main>
  );
}

export function RecoveryKit({ kit, email }: { kit: string; email: string }) {
  const [copied, setCopied] = useState(false);
  const href = `data:text/plain;charset=utf-8,${encodeURIComponent(`Exocorp recovery kit for ${email}\n${kit}\n`)}`;
  return (
    <div class="card kit">
      <Alert kind="info">
        <strong>Save this recovery kit now: it is shown only this once.</strong> It logs you in if you
        lose your password. Keep it offline, like a password.
      </Alert>
      <output class="kit-value" aria-label="Recovery kit" data-testid="recovery-kit">{kit}</output>
      <div class="row">
        <button type="button" onClick={async () => { await navigator.clipboard?.writeText(kit).catch(() => undefined); setCopied(true); }}>
          {copied ? "Copied" : "Copy"}
        </button>
        <a class="button" href={href} download="exocorp-recovery-kit.txt">Download</a>
      </div>
    </div>
  );
}

export function Signup() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [kit, setKit] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const answer = await api<AuthResponse>("POST", "/api/auth/signup", { body: { email, password }, anonymous: true });
      setKit(answer.recoveryKit ?? "");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const errors = error instanceof ApiError ? error.fieldErrors() : {};

  if (kit !== null) {
    return (
      <main id="main" class="auth">
        <h1>Welcome to Exocorp</h1>
        <RecoveryKit kit={kit} email={email} />
        <label class="check"><input type="checkbox" checked={saved} onChange={(e) => setSaved(e.currentTarget.checked)} /> I have saved my recovery kit</label>
        <button class="primary" disabled={!saved} onClick={async () => { await refreshSession(); navigate("/", true); }}>Continue to my exocorps</button>
      </main>
    );
  }
  return (
    <main id="main" class="auth">
      <h1>Create your Exocorp account</h1>
      <p class="muted">An exocorp is a company of AI agents the platform runs for you. You start with a signup credit.</p>
      <form onSubmit={submit} class="card">
        <Field label="E-mail" type="email" autocomplete="username" required value={email} error={errors.email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <Field label="Password" type="password" autocomplete="new-password" required minLength={10} value={password} error={errors.password} hint="At least 10 characters." onInput={(e) => setPassword(e.currentTarget.value)} />
        <Alert error={Object.keys(errors).length ? undefined : error} />
        <button class="primary" type="submit" disabled={busy}>{busy ? "Creating…" : "Create account"}</button>
      </form>
      <p>Already have an account? <a href="/login">Log in</a></p>
    </main>
  );
}
