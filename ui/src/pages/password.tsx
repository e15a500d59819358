// Set a new password. After a recovery-kit login (me.passwordChangeRequired) this is the only
// page the dashboard shows, and the current password is not asked for: the kit proved who this
// is, and the old password may be what was lost.
import { useState } from "preact/hooks";
import { ApiError, post } from "../api/client";
import type { Me } from "../api/types";
import { useSubmit } from "../components/submit";
import { Alert, Field } from "../components/ui";
import { navigate } from "../router";
import { refreshSession } from "../session";

export function SetPassword({ me }: { me: Me }) {
  const forced = Boolean(me.passwordChangeRequired);
  const [current, setCurrent] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, errors, submit } = useSubmit(async () => {
    await post("/api/auth/password", forced ? { newPassword: password } : { currentPassword: current, newPassword: password });
    await refreshSession();
    navigate("/", true);
  }, (err) => (err instanceof ApiError && err.status === 401
    ? new ApiError(401, { ...err.problem, detail: "The current password is wrong." }, null)
    : err));

  return (
    <main id="main" class="auth">
      <h1>{forced ? "Set a new password" : "Change your password"}</h1>
      {forced && (
        <Alert kind="info">
          You logged in with your recovery kit. Choose a new password before anything else: until
          you do, this session can do nothing more.
        </Alert>
      )}
      <form onSubmit={submit} class="card">
        <input type="email" autocomplete="username" value={me.user.email} hidden readOnly />
        {!forced && <Field label="Current password" type="password" autocomplete="current-password" required value={current} error={errors.currentPassword} onInput={(e) => setCurrent(e.currentTarget.value)} />}
        <Field label="New password" type="password" autocomplete="new-password" required minLength={10} value={password} error={errors.newPassword} hint="At least 10 characters. Every other session and connected agent of yours is signed out." onInput={(e) => setPassword(e.currentTarget.value)} />
        <Alert error={Object.keys(errors).length ? undefined : error} />
        <button class="primary" type="submit" disabled={busy}>{busy ? "Saving…" : "Save the new password"}</button>
      </form>
    </main>
  );
}
