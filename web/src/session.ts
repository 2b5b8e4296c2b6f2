/** The owner's management credential: kept in this tab's sessionStorage only (gone when the tab closes),
 * never in a URL, a cookie or localStorage. The registration id is read from the credential itself. */

const PREFIX = "canvass.credential.";

export function remember(registrationId: string, credential: string): void {
  sessionStorage.setItem(PREFIX + registrationId, credential);
}

export function credentialFor(registrationId: string): string | null {
  return sessionStorage.getItem(PREFIX + registrationId);
}

/** The registrations this tab holds a credential for (the one just registered, those signed in to): a reload of
 * the page that showed a new credential, or a tab a phone put aside, does not leave the resident locked out. */
export function rememberedRegistrations(): string[] {
  const ids: string[] = [];
  for (let i = 0; i < sessionStorage.length; i++) {
    const key = sessionStorage.key(i);
    if (key?.startsWith(PREFIX)) ids.push(key.slice(PREFIX.length));
  }
  return ids.sort();
}

export function forget(registrationId: string): void {
  sessionStorage.removeItem(PREFIX + registrationId);
}

/** A credential reads `cvo_<registration id as 32 hex digits>_<secret>`; the id, as a UUID, or null. */
export function registrationIdOf(credential: string): string | null {
  const match = /^cvo_([0-9a-f]{32})_\S+$/.exec(credential.trim());
  if (!match?.[1]) return null;
  const x = match[1];
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** What a page hands the next one without putting it in the URL: the credential shown once, and whether the
 * registration had been made by an earlier "Register" whose answer was lost (the later edits were not sent). */
export const handover: {
  created: { id: string; credential: string; kind: "registered" | "replaced" | "advocate" } | null;
  registeredBefore: boolean;
} = { created: null, registeredBefore: false };
