// The one place the dashboard talks to the gateway: same-origin fetch with the session cookie,
// JSON in and out, problem+json errors turned into ApiError. A 401 sends the person to the login
// page and back to where they were afterwards.
import type { Problem } from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  /** Seconds to wait, from Retry-After (429 and 503). */
  readonly retryAfter: number | null;

  constructor(status: number, problem: Problem, retryAfter: number | null) {
    super(problem.detail || problem.title);
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }

  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.problem.errors ?? []) out[e.field] = e.message;
    return out;
  }
}

/** Human wording for an error, including the wait of a 429 and the API being down. */
export function describe(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 429) {
      const wait = error.retryAfter ?? 60;
      return `Too many attempts: try again in ${wait} second${wait === 1 ? "" : "s"}.`;
    }
    if (error.status === 503) {
      return `The platform is unavailable right now (${error.problem.detail}). It retries by itself; try again shortly.`;
    }
    if (error.status === 409) return `Not possible now: ${error.problem.detail}`;
    return error.problem.detail || error.problem.title;
  }
  if (error instanceof TypeError) return "Cannot reach the platform: check your connection.";
  return String(error);
}

type Listener = (down: boolean) => void;
const downListeners = new Set<Listener>();
/** Subscribe to "the API is unreachable" changes (drives the banner). */
export function onApiDown(listener: Listener): () => void {
  downListeners.add(listener);
  return () => downListeners.delete(listener);
}
function setDown(down: boolean): void {
  for (const l of downListeners) l(down);
}

let unauthorized: (() => void) | null = null;
/** What to do on a 401 for a request made while logged in (set by the session). */
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

export interface RequestOptions {
  body?: unknown;
  /** A 401 is expected (login, me): do not redirect. */
  anonymous?: boolean;
  query?: Record<string, string | number | null | undefined>;
  /** Answer the body as text (a YAML rendering, say), not parsed JSON. */
  text?: boolean;
}

export async function api<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  if (method !== "GET" && method !== "DELETE" && path !== "/api/auth/login" && path !== "/api/auth/logout") {
    // A retry after a dropped connection must not run the write twice (docs/api.md).
    headers["Idempotency-Key"] = crypto.randomUUID();
  }
  let url = path;
  if (options.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query)) {
      if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  let response: Response;
  try {
    response = await fetch(url, { method, headers, body, credentials: "same-origin" });
  } catch (error) {
    setDown(true);
    throw error;
  }
  setDown(response.status === 503 || response.status === 502);
  const text = await response.text();
  if (!response.ok) {
    let problem: Problem;
    try {
      problem = JSON.parse(text) as Problem;
    } catch {
      problem = { title: response.statusText, status: response.status, detail: text.slice(0, 200), code: "http_error" } as Problem;
    }
    const retry = response.headers.get("Retry-After");
    const error = new ApiError(response.status, problem, retry ? Number(retry) : null);
    if (response.status === 401 && !options.anonymous && unauthorized) unauthorized();
    throw error;
  }
  if (options.text) return text as T;
  return (text ? JSON.parse(text) : {}) as T;
}

export const get = <T>(path: string, query?: RequestOptions["query"]) => api<T>("GET", path, { query });
export const getText = (path: string, query?: RequestOptions["query"]) => api<string>("GET", path, { query, text: true });
export const post = <T>(path: string, body?: unknown) => api<T>("POST", path, { body: body ?? {} });
export const del = <T>(path: string, body?: unknown) => api<T>("DELETE", path, { body });
