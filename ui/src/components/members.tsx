// Who works on one exocorp: members with their roles, open invitations (the owner's view), and
// the owner's invite / change role / remove; a member may leave. The API decides what is allowed.
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, del, get, post } from "../api/client";
import type { Invitation, Me, Member, Members, Role } from "../api/types";
import { Alert, Field, when } from "./ui";

const GRANTABLE: Role[] = ["member", "viewer"];

export function MembersCard({ base, me, isOwner, onLeft }: { base: string; me: Me; isOwner: boolean; onLeft: () => void }) {
  const [data, setData] = useState<Members | null>(null);
  const [error, setError] = useState<unknown>();
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("member");
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [notice, setNotice] = useState("");

  const load = () => get<Members>(`${base}/members`).then((d) => { setData(d); setError(undefined); }, setError);
  useEffect(() => { void load(); }, [base]);

  const act = async (work: () => Promise<unknown>, done: string) => {
    setNotice("");
    try {
      await work();
      setError(undefined);
      setNotice(done);
      await load();
    } catch (err) {
      setError(err);
    }
  };

  const invite = async (e: Event) => {
    e.preventDefault();
    setFieldErrors({});
    try {
      const sent = await post<Invitation>(`${base}/invitations`, { email, role });
      setNotice(`Invited ${sent.email} as ${sent.role}.`);
      setEmail("");
      setError(undefined);
      await load();
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) setFieldErrors(err.fieldErrors());
      setError(err);
    }
  };

  const member = (m: Member) => {
    const self = m.userId === me.user.id;
    return (
      <tr>
        <td>{m.email}{self && <span class="muted"> (you)</span>}</td>
        <td>
          {isOwner && m.role !== "owner" ? (
            <select aria-label={`Role of ${m.email}`} value={m.role}
              onChange={(e) => void act(() => api("PATCH", `${base}/members/${encodeURIComponent(m.userId)}`,
                { body: { role: (e.target as HTMLSelectElement).value } }), `${m.email} is now ${(e.target as HTMLSelectElement).value}.`)}>
              {GRANTABLE.map((r) => <option value={r}>{r}</option>)}
            </select>
          ) : m.role}
        </td>
        <td>{when(m.since)}</td>
        <td>
          {m.role !== "owner" && (isOwner || self) && (
            <button type="button" class="small" onClick={() => void act(async () => {
              await del(`${base}/members/${encodeURIComponent(m.userId)}`);
              if (self) onLeft();
            }, `${m.email} no longer works on this exocorp.`)}>{self ? "Leave" : `Remove ${m.email}`}</button>
          )}
        </td>
      </tr>
    );
  };

  return (
    <section class="card" aria-labelledby="h-members">
      <h2 id="h-members">People</h2>
      {data ? (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Members (scrolls sideways)">
          <table>
            <thead><tr><th scope="col">Person</th><th scope="col">Role</th><th scope="col">Since</th><th scope="col"><span class="sr-only">Remove</span></th></tr></thead>
            <tbody>
              {data.members.map(member)}
              {data.invitations.map((i) => (
                <tr>
                  <td>{i.email} <span class="muted">(invited by {i.invitedBy})</span></td>
                  <td>{i.role} <span class="badge">invited</span></td>
                  <td>{when(i.createdAt)}</td>
                  <td><button type="button" class="small" onClick={() => void act(
                    () => del(`${base}/invitations/${encodeURIComponent(i.id)}`), `The invitation of ${i.email} is revoked.`)}>Revoke invitation of {i.email}</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : !error && <p class="muted">Loading…</p>}
      {isOwner && (
        <form class="inline" onSubmit={invite} noValidate>
          <Field label="Invite by e-mail" type="email" autocomplete="off" required value={email} error={fieldErrors.email}
            hint="They see the invitation when they sign in (or sign up with this address)."
            onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
          <div class="field">
            <label for="invite-role">Role</label>
            <select id="invite-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
              <option value="member">member: may run actions</option>
              <option value="viewer">viewer: may look</option>
            </select>
          </div>
          <button class="primary" type="submit">Invite</button>
        </form>
      )}
      {notice && <Alert kind="ok">{notice}</Alert>}
      <Alert error={error} />
    </section>
  );
}

/** Invitations waiting for the signed-in person (from `me`): accept or decline. */
export function InvitationsBanner({ me, onAnswered }: { me: Me; onAnswered: () => void }) {
  const [error, setError] = useState<unknown>();
  if (!me.invitations.length) return null;
  const answer = async (i: Invitation, verb: "accept" | "decline") => {
    try {
      await post(`/api/registry/invitations/${encodeURIComponent(i.id)}/${verb}`);
      setError(undefined);
      onAnswered();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section class="card" aria-labelledby="h-invitations">
      <h2 id="h-invitations">Invitations</h2>
      <ul class="plain">
        {me.invitations.map((i) => (
          <li>
            {i.invitedBy} invites you to <strong>{i.displayName}</strong> as {i.role}.{" "}
            <button type="button" class="small primary" onClick={() => void answer(i, "accept")}>Accept {i.displayName}</button>{" "}
            <button type="button" class="small" onClick={() => void answer(i, "decline")}>Decline {i.displayName}</button>
          </li>
        ))}
      </ul>
      <Alert error={error} />
    </section>
  );
}
