/** Sign-in with the agency's own identity provider: OpenID Connect's authorization code flow with PKCE
 * (oidc-client-ts), the issuer and the portal's client id per agency from the runtime configuration.
 *
 * Tokens are held in memory only (never in localStorage or sessionStorage: a reload signs in again, which the
 * provider's own session makes quick); only the flow's one-time state (the PKCE verifier, until the callback) and
 * which agency is being signed in to sit in this tab's sessionStorage. The access token is renewed silently with
 * the refresh token before it expires; signing out revokes the refresh token and ends the session at the provider too. */

import type { User, UserManager } from "oidc-client-ts";
import { config, type AgencyProvider } from "./config";
import { sessionFromToken, setAgencySession, type Staff } from "./staff";

const PENDING = "canvass.agency.pending";

export class SignInError extends Error {
  constructor(readonly reason: "no_provider" | "no_claims" | "failed") {
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
    automaticSilentRenew: true,
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
  manager = { agency, users };
  return users;
}

function publish(user: User): Staff {
  const session = sessionFromToken(user.access_token, "oidc");
  if (!session) throw new SignInError("no_claims");
  const users = manager!.users;
  setAgencySession(session, {
    renew: async () => {
      try {
        const renewed = await users.signinSilent();
        return renewed ? sessionFromToken(renewed.access_token, "oidc") : null;
      } catch {
        return null;
      }
    },
    signOut: async () => {
      manager = null;
      // The refresh token is revoked (a JWT access token cannot be, and lives minutes); then the provider's own
      // session ends, for every application signed in through it.
      await users.revokeTokens(["refresh_token"]).catch(() => undefined);
      const latest = (await users.getUser()) ?? user; // the ID token of the latest renewal
      await users.signoutRedirect({ id_token_hint: latest.id_token });
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

/** Back from the provider: the code exchanged for the tokens (kept in memory), the session opened; where to go. */
export async function completeSignIn(): Promise<string> {
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  let pending: { agency?: unknown; next?: unknown } = {};
  try {
    pending = raw ? (JSON.parse(raw) as typeof pending) : {};
  } catch {
    pending = {};
  }
  if (typeof pending.agency !== "string") throw new SignInError("failed");
  const users = await managerFor(pending.agency);
  let user: User | undefined;
  try {
    user = await users.signinRedirectCallback();
  } catch {
    throw new SignInError("failed");
  }
  if (!user) throw new SignInError("failed");
  try {
    publish(user);
  } catch (e) {
    await users.removeUser();
    throw e;
  }
  const next = typeof pending.next === "string" && pending.next.startsWith("/") && !pending.next.startsWith("//") ? pending.next : "/agency/sign-in";
  return next;
}
