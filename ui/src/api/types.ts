// Named shortcuts into the types generated from docs/openapi.json (src/api/schema.d.ts, made by
// `npm run gen` at every build): when the API changes shape, the pages stop compiling.
import type { components } from "./schema";

type S = components["schemas"];
export type Phase = S["Phase"];
export type Channel = S["Channel"];
export type Me = S["MeResponse"];
export type AuthResponse = S["AuthResponse"];
export type Summary = S["DashboardSummary"];
export type CompanySummary = S["CompanySummary"];
export type Draft = S["Draft"];
export type DraftView = S["DraftView"];
export type AgentConfig = S["AgentConfig"];
export type Bindings = S["BindingsResponse"];
export type Handshake = S["UpdateHandshake"];
export type Secret = S["ProviderSecretView"];
export type Token = S["TokenView"];
export type Problem = S["ProblemDetails"];
export type Revision = S["RevisionSummary"];
export type Condition = S["Condition"];
export type AuditEvent = S["AuditEventView"];
export type AuditPage = S["AuditPage"];
export type AdminCompany = S["AdminCompanySummary"];
export type AdminCompanyList = S["AdminCompanyList"];
export type RuntimeStats = S["RuntimeStats"];
export type BillingAccount = S["exocorp__billing__api__AccountView"];
export type AdminAccount = S["AdminAccountView"];
export type LimitUsage = S["LimitUsage"];
export type LimitSetting = S["LimitSetting"];
export type LimitsOverview = S["LimitsOverview"];
export type UserView = S["UserView"];
export type PriceBook = S["PriceBookView"];
export type ReleaseCatalog = S["ReleaseCatalog"];
export type UsagePage = S["UsagePage"];
export type Handoff = S["HandoffView"];
export type Members = S["MembersResponse"];
export type Member = Members["members"][number];
export type Invitation = S["InvitationView"];
export type Role = Member["role"];

export const ACTIONS = [
  "provision", "update", "restart", "pause", "resume", "stop", "reprovision", "rollback",
  "destroy",
] as const;
export type ActionName = (typeof ACTIONS)[number];

/** What the API says about one action right now (the shared contract's `actions` map). */
export interface ActionState {
  allowed: boolean;
  code: string | null;
  reason: string | null;
}
export type ActionMap = Partial<Record<ActionName, ActionState>>;

/** The company answer; `actions` is computed by the server's lifecycle planners. */
export type Company = S["CompanyDetail"] & { actions?: ActionMap };
export type AdminCompanyDetail = S["AdminCompanyDetail"] & { actions?: ActionMap };

export const PHASES: Phase[] = [
  "Running", "Draft", "Provisioning", "Starting", "Paused", "Stopped", "Failed", "Destroying",
];
