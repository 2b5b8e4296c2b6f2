/** The owner's management credential: kept in this tab's sessionStorage only (gone when the tab closes),
 * never in a URL, a cookie or localStorage. The registration id is read from the credential itself. */

const PREFIX = "canvass.credential.";

export function remember(registrationId: string, credential: string): void {
  sessionStorage.setItem(PREFIX + registrationId, credential);
}

export function credentialFor(registrationId: string): string | null {
  return sessionStorage.getItem(PREFIX + registrationId);
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

/** What a page hands the next one without putting it in the URL (the credential shown once). */
export const handover: {
  created: { id: string; credential: string; kind: "registered" | "replaced" | "advocate" } | null;
} = { created: null };
