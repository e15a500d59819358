// The shell: header with navigation (admin links only for platform owners), the API-down
// banner, and the routes.
import { useEffect, useState } from "preact/hooks";
import { onApiDown } from "./api/client";
import { AdminAudit, AdminBilling, AdminCompanies, AdminHome, AdminLimits } from "./pages/admin";
import { Account } from "./pages/account";
import { Login, Signup, safeNext } from "./pages/auth";
import { CompanyPage } from "./pages/company";
import { Fleet } from "./pages/fleet";
import { SetPassword } from "./pages/password";
import { match, navigate, useLocation } from "./router";
import { loginPath, logout, useSession } from "./session";

function ApiDownBanner() {
  const [down, setDown] = useState(false);
  useEffect(() => onApiDown(setDown), []);
  if (!down) return null;
  return <div class="banner" role="alert">The platform is not answering right now. This page retries by itself.</div>;
}

function NotFound() {
  return (
    <main id="main">
      <h1>Page not found</h1>
      <p><a href="/">Back to your exocorps</a></p>
    </main>
  );
}

const PUBLIC = new Set(["/login", "/signup"]);

export function App() {
  const { path, query } = useLocation();
  const me = useSession();
  const next = path === "/login" ? safeNext(query.get("next")) : "/";

  // A recovery-kit session may do nothing but set a new password (the API refuses the rest).
  const mustChange = Boolean(me?.passwordChangeRequired);

  useEffect(() => {
    if (mustChange) {
      if (path !== "/password") navigate("/password", true);
      return;
    }
    if (me === null && !PUBLIC.has(path)) navigate(loginPath(), true);
    // Logged in on a public page: on to where the person was going (the one place that decides).
    if (me && PUBLIC.has(path)) navigate(next, true);
  }, [me, path, next, mustChange]);

  let page;
  let params: Record<string, string> | null;
  if (path === "/login") page = <Login />;
  else if (path === "/signup") page = <Signup />;
  else if (!me) page = <main id="main"><p class="muted">Loading…</p></main>;
  else if (path === "/password") page = <SetPassword me={me} />;
  else if (mustChange) page = <main id="main"><p class="muted">Loading…</p></main>;
  else if (path === "/") page = <Fleet me={me} />;
  else if ((params = match("/company/:id", path))) page = <CompanyPage id={params.id ?? ""} me={me} />;
  else if (path === "/account") page = <Account />;
  else if (path.startsWith("/admin")) {
    if (!me.platformOwner) page = <NotFound />;
    else if (path === "/admin") page = <AdminHome />;
    else if (path === "/admin/companies") page = <AdminCompanies />;
    else if (path === "/admin/billing") page = <AdminBilling me={me} />;
    else if (path === "/admin/limits") page = <AdminLimits />;
    else if (path === "/admin/audit") page = <AdminAudit />;
    else page = <NotFound />;
  } else page = <NotFound />;

  const link = (href: string, label: string) => (
    <a href={href} aria-current={(href === "/" ? path === "/" || path.startsWith("/company/") : path === href) ? "page" : undefined}>{label}</a>
  );
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <a class="brand" href="/">Exocorp</a>
        {me && !mustChange && (
          <nav aria-label="Main">
            {link("/", "Exocorps")}
            {link("/account", "Account")}
            {me.platformOwner && link("/admin", "Admin")}
          </nav>
        )}
        {me && (
          <div class="who">
            <span class="muted email">{me.user.email}</span>
            <button type="button" class="small" onClick={() => void logout()}>Log out</button>
          </div>
        )}
      </header>
      {me?.platformOwner && path.startsWith("/admin") && (
        <nav class="subnav" aria-label="Admin">
          {link("/admin", "Overview")}
          {link("/admin/companies", "Companies")}
          {link("/admin/billing", "Billing")}
          {link("/admin/limits", "Limits")}
          {link("/admin/audit", "Audit")}
        </nav>
      )}
      <ApiDownBanner />
      {page}
    </>
  );
}
