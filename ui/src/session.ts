// Who is logged in. Loaded once from /api/auth/me; a 401 anywhere sends the person to /login
// with ?next= so they come back to the page they were on.
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, onUnauthorized } from "./api/client";
import type { Me } from "./api/types";
import { navigate } from "./router";

let current: Me | null | undefined;
const listeners = new Set<() => void>();

function set(me: Me | null): void {
  current = me;
  for (const l of listeners) l();
}

export async function refreshSession(): Promise<Me | null> {
  try {
    set(await api<Me>("GET", "/api/auth/me", { anonymous: true }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) set(null);
    else throw error;
  }
  return current ?? null;
}

export function loginPath(): string {
  const here = location.pathname + location.search;
  return here === "/" || here.startsWith("/login") || here.startsWith("/signup")
    ? "/login"
    : `/login?next=${encodeURIComponent(here)}&expired=1`;
}

onUnauthorized(() => {
  if (current) set(null);
  navigate(loginPath(), true);
});

export function useSession(): Me | null | undefined {
  const [, tick] = useState(0);
  useEffect(() => {
    const l = () => tick((t) => t + 1);
    listeners.add(l);
    // API down: keep "unknown" (the banner says so) and try again, rather than log them out.
    let timer: number | undefined;
    const attempt = () => {
      refreshSession().catch(() => { timer = window.setTimeout(attempt, 3000); });
    };
    if (current === undefined) attempt();
    return () => {
      listeners.delete(l);
      window.clearTimeout(timer);
    };
  }, []);
  return current;
}

export async function logout(): Promise<void> {
  try {
    await api("POST", "/api/auth/logout", { anonymous: true });
  } finally {
    set(null);
    navigate("/login");
  }
}

/** End every session of this person, this one included, and cut off their agents. */
export async function signOutEverywhere(): Promise<void> {
  await api("POST", "/api/auth/logout-everywhere");
  set(null);
  navigate("/login");
}
