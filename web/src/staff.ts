/** Agency staff in the public half: an advocate registers owners on their behalf during a phone call. Their
 * token (from the development sign-in for now; the agency's identity provider later) is kept in this tab's
 * sessionStorage only, like an owner's credential. */

const KEY = "canvass.staff";

export interface Staff {
  token: string;
  role: string;
  agency: string;
}

export function staff(): Staff | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Staff;
  } catch {
    return null;
  }
}

export function signInStaff(s: Staff): void {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function signOutStaff(): void {
  sessionStorage.removeItem(KEY);
}

export function advocate(): Staff | null {
  const s = staff();
  return s && s.role === "advocate" ? s : null;
}
