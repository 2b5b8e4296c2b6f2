/** Agency staff's session, whichever way they signed in: through their agency's own identity provider (OpenID
 * Connect, see ./oidc.ts: the token held in memory only, renewed silently) or, in development only, through the
 * development sign-in (a development token kept in this tab's sessionStorage, like an owner's credential).
 *
 * Pages use `staff()` for who is signed in (role and agency, as the token's claims say) and `staffToken()` for
 * an access token fresh enough to send. */

const KEY = "canvass.staff";

export interface Staff {
  token: string;
  role: string; // the first role the token names
  roles: string[];
  agency: string;
  sub: string;
  via: "dev" | "oidc";
  expiresAt: number | null; // seconds since the epoch, when the token says
}

/** How the OpenID session renews and ends (set by ./oidc.ts while an agency session is open). */
export interface AgencySessionControl {
  renew(): Promise<Staff | null>;
  signOut(): Promise<void>;
}

let agencySession: Staff | null = null;
let control: AgencySessionControl | null = null;
const listeners = new Set<(s: Staff | null) => void>();

/** The claims of a JWT (unverified: the services verify it; the page only shows what it says). */
export function claimsOf(token: string): Record<string, unknown> | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const claims: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
    return claims && typeof claims === "object" ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A session from a token's claims (`role` or `roles`, `agency`, `sub`, `exp`), as the services read them; null
 * when the token names no role or no agency. */
export function sessionFromToken(token: string, via: Staff["via"]): Staff | null {
  const claims = claimsOf(token);
  if (!claims) return null;
  const raw = claims.roles ?? claims.role;
  const roles = (Array.isArray(raw) ? raw : [raw]).filter((r): r is string => typeof r === "string" && r !== "");
  const agency = claims.agency;
  if (!roles.length || typeof agency !== "string" || !agency) return null;
  return {
    token,
    role: roles[0]!,
    roles,
    agency,
    sub: typeof claims.sub === "string" ? claims.sub : "",
    via,
    expiresAt: typeof claims.exp === "number" ? claims.exp : null,
  };
}

function devSession(): Staff | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    const stored = JSON.parse(raw) as { token: string; role: string; agency: string };
    return (
      sessionFromToken(stored.token, "dev") ?? {
        ...stored,
        roles: [stored.role],
        sub: "",
        via: "dev",
        expiresAt: null,
      }
    );
  } catch {
    return null;
  }
}

/** Who is signed in: the agency session first, else the development one. */
export function staff(): Staff | null {
  return agencySession ?? devSession();
}

/** An access token that will still be accepted for a while: renewed first (silently) when it is about to
 * expire. Null when no one is signed in or the renewal failed. */
export async function staffToken(minValidityS = 30): Promise<string | null> {
  const current = staff();
  if (!current) return null;
  const soon = current.expiresAt !== null && current.expiresAt - Date.now() / 1000 < minValidityS;
  if (current.via === "oidc" && soon && control) {
    const renewed = await control.renew();
    return renewed?.token ?? null;
  }
  return current.token;
}

/** Called whenever the session changes (signed in, renewed, signed out); returns the unsubscribe. */
export function onStaffChange(listener: (s: Staff | null) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function changed(): void {
  const s = staff();
  for (const l of listeners) l(s);
}

/** The agency session (./oidc.ts): set at sign-in and at each renewal, null when it ends. */
export function setAgencySession(s: Staff | null, how: AgencySessionControl | null = null): void {
  agencySession = s;
  control = s ? (how ?? control) : null;
  changed();
}

/** The development sign-in's session (development only). */
export function signInStaff(s: { token: string; role: string; agency: string }): void {
  sessionStorage.setItem(KEY, JSON.stringify({ token: s.token, role: s.role, agency: s.agency }));
  changed();
}

/** Ends the session: an agency session also at its provider (the page leaves for the provider's sign-out). */
export async function signOutStaff(): Promise<void> {
  sessionStorage.removeItem(KEY);
  const how = agencySession ? control : null;
  agencySession = null;
  control = null;
  changed();
  if (how) await how.signOut();
}

export function advocate(): Staff | null {
  const s = staff();
  return s && s.role === "advocate" ? s : null;
}
