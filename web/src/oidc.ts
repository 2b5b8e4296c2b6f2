/** Sign-in with the agency's own identity provider: OpenID Connect's authorization code flow with PKCE
 * (oidc-client-ts), the issuer and the portal's client id per agency from the runtime configuration.
 *
 * Tokens are held in memory only (never in localStorage or sessionStorage); only the flow's one-time state (the PKCE
 * verifier, until the callback) and which agency this tab is signed in to sit in this tab's sessionStorage. A
 * reload (or a link opened in the same tab) therefore asks the agency's provider again, without showing anything
 * (`prompt=none`): its own session answers at once, or says that a sign-in is needed and the sign-in page shows. The access token is renewed silently with
 * the refresh token before it expires; signing out revokes the refresh token and ends the session at the provider too. */

import type { User, UserManager } from "oidc-client-ts";
import { config, type AgencyProvider } from "./config";
import { sessionFromToken, setAgencySession, type Staff } from "./staff";

const PENDING = "canvass.agency.pending";
/** The agency this tab is signed in to (its slug only: no token), for the silent sign-in after a reload. */
const RESUME = "canvass.agency.resume";

export class SignInError extends Error {
  constructor(
    readonly reason: "no_provider" | "no_claims" | "failed" | "sign_in_needed" | "provider_session_open",
    readonly next: string = "/agency/sign-in",
  ) {
    super(reason);
  }
}

let manager: { agency: string; users: UserManager } | null = null;

/** The agencies whose staff can sign in here, with their providers. */
export function agencyProviders(): Record<string, AgencyProvider> {
  return config().agency_sign_in ?? {};
}

async function managerFor(agency: string): Promise<UserManager> {
  if (manager?.agency === agency) return manager.users;
  const provider = agencyProviders()[agency];
  if (!provider) throw new SignInError("no_provider");
  // Loaded only when staff sign in: residents' pages do not carry the OpenID client.
  const { InMemoryWebStorage, UserManager, WebStorageStateStore } = await import("oidc-client-ts");
  const users = new UserManager({
    authority: provider.issuer,
    client_id: provider.client_id,
    scope: provider.scope,
    redirect_uri: `${location.origin}/agency/callback`,
    post_logout_redirect_uri: `${location.origin}/agency/signed-out`,
    response_type: "code",
    userStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
    stateStore: new WebStorageStateStore({ store: sessionStorage, prefix: "canvass.oidc." }),
    // Renewed by this module (one renewal in flight, shared by the timer and every caller): two at once would
    // present the same refresh token twice, and a provider detecting the reuse revokes the whole grant.
    automaticSilentRenew: false,
    // A provider that does not answer does not hold the page (discovery, token, revocation).
    requestTimeoutInSeconds: 10,
    revokeTokensOnSignout: false, // revoked below, where a refusal does not keep the session open
    loadUserInfo: false,
    monitorSession: false,
  });
  users.events.addUserLoaded((user) => {
    try {
      publish(user);
    } catch {
      setAgencySession(null);
    }
  });
  users.events.addSilentRenewError(() => undefined); // the next call is refused (401) and the page says so
  users.events.addAccessTokenExpiring(() => void renewOnce(users));
  manager = { agency, users };
  return users;
}

let renewing: Promise<Staff | null> | null = null;

/** A silent renewal (the refresh token), or the one already under way. */
function renewOnce(users: UserManager): Promise<Staff | null> {
  renewing ??= users
    .signinSilent()
    .then((renewed) => (renewed ? sessionFromToken(renewed.access_token, "oidc") : null))
    .catch(() => null)
    .finally(() => {
      renewing = null;
    });
  return renewing;
}

function publish(user: User): Staff {
  const session = sessionFromToken(user.access_token, "oidc");
  if (!session) throw new SignInError("no_claims");
  const users = manager!.users;
  setAgencySession(session, {
    renew: () => renewOnce(users),
    signOut: async () => {
      manager = null;
      sessionStorage.removeItem(RESUME);
      // The refresh token is revoked (a JWT access token cannot be, and lives minutes); then the provider's own
      // session ends, for every application signed in through it.
      await users.revokeTokens(["refresh_token"]).catch(() => undefined);
      const latest = (await users.getUser()) ?? user; // the ID token of the latest renewal
      await users.removeUser();
      try {
        await users.signoutRedirect({ id_token_hint: latest.id_token });
      } catch {
        // A provider without an end-session endpoint (or out of reach): signed out here; its own session stays.
        throw new SignInError("provider_session_open");
      }
    },
  });
  return session;
}

/** Leaves for the agency's provider; back at /agency/callback, then at `next`. */
export async function signInWith(agency: string, next: string): Promise<void> {
  const users = await managerFor(agency);
  sessionStorage.setItem(PENDING, JSON.stringify({ agency, next }));
  await users.signinRedirect();
}

/** After a reload, on an agency page with no session in memory: when this tab was signed in to an agency, leaves
 * for its provider asking for no interaction (`prompt=none`) and returns true; back at /agency/callback, then at
 * `next`. False when there is nothing to resume. */
export async function resumeSignIn(next: string): Promise<boolean> {
  const agency = sessionStorage.getItem(RESUME);
  if (!agency) return false;
  if (!agencyProviders()[agency]) {
    sessionStorage.removeItem(RESUME);
    return false;
  }
  // Tried once: a provider that never comes back, or answers with its own error page, leaves this tab signed
  // out rather than sent to it at every load (the callback sets the key again on success).
  sessionStorage.removeItem(RESUME);
  const users = await managerFor(agency);
  sessionStorage.setItem(PENDING, JSON.stringify({ agency, next, silent: true }));
  // In place of this page in the history: Back leads to the page before, not into the silent sign-in again.
  await users.signinRedirect({ prompt: "none", redirectMethod: "replace" });
  return true;
}

/** Where a sign-in may return: a path of this portal (no scheme, host, backslash, space or control character),
 * never the callback itself. */
export function safeNext(next: unknown): string {
  const ok =
    typeof next === "string" &&
    /^\/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/.test(next) &&
    !/^\/agency\/callback(?:[/?#]|$)/.test(next);
  return ok ? next : "/agency/sign-in";
}

/** Back from the provider: the code exchanged for the tokens (kept in memory), the session opened; where to go.
 * A silent sign-in the provider could not answer without the person (its session is over) is not a failure:
 * SignInError("sign_in_needed") carries where they were going. */
export async function completeSignIn(): Promise<string> {
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  let pending: { agency?: unknown; next?: unknown; silent?: unknown } = {};
  try {
    pending = raw ? (JSON.parse(raw) as typeof pending) : {};
  } catch {
    pending = {};
  }
  // Whatever happens below, a failed sign-in is not resumed again (no loop through the provider).
  sessionStorage.removeItem(RESUME);
  if (typeof pending.agency !== "string") throw new SignInError("failed");
  const next = safeNext(pending.next);
  const users = await managerFor(pending.agency);
  let user: User | undefined;
  try {
    user = await users.signinRedirectCallback();
  } catch {
    throw new SignInError(pending.silent === true ? "sign_in_needed" : "failed", next);
  }
  if (!user) throw new SignInError("failed");
  try {
    publish(user);
  } catch (e) {
    await users.removeUser();
    throw e;
  }
  sessionStorage.setItem(RESUME, pending.agency);
  return next;
}
