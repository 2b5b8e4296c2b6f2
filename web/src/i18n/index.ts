/** The message catalog: every string the portal shows comes from here, in English and Spanish. The language
 * is the browser's first one the portal speaks, until the visitor picks the other one. */

import { en } from "./en";
import { es } from "./es";

export type MessageKey = keyof typeof en;
export const catalogs: Record<string, Record<MessageKey, string>> = { en, es };
export const LANGUAGES = ["en", "es"] as const;
export type Lang = (typeof LANGUAGES)[number];

const STORAGE_KEY = "canvass.lang";
let current: Lang = "en";

export function detectLanguage(preferred: readonly string[], stored: string | null): Lang {
  if (stored && (LANGUAGES as readonly string[]).includes(stored)) return stored as Lang;
  for (const tag of preferred) {
    const base = tag.toLowerCase().split("-")[0];
    if ((LANGUAGES as readonly string[]).includes(base ?? "")) return base as Lang;
  }
  return "en";
}

export function language(): Lang {
  return current;
}

export function setLanguage(lang: Lang, remember = false): void {
  current = lang;
  if (typeof document !== "undefined") document.documentElement.lang = lang;
  if (remember && typeof localStorage !== "undefined") localStorage.setItem(STORAGE_KEY, lang);
}

export function initLanguage(): void {
  const stored = typeof localStorage !== "undefined" ? localStorage.getItem(STORAGE_KEY) : null;
  setLanguage(detectLanguage(typeof navigator !== "undefined" ? navigator.languages : [], stored));
}

/** The message in the current language, with {name} placeholders filled. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  const text = catalogs[current]?.[key] ?? en[key];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

export function formatDate(iso: string | null | undefined, withTime = false): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return new Intl.DateTimeFormat(current === "es" ? "es-US" : "en-US", {
    dateStyle: "long",
    ...(withTime ? { timeStyle: "short" } : {}),
  }).format(d);
}

/** From one time to another, their day said once when it is the same: "December 6, 2026, 7:48 – 9:48 AM". */
export function formatPeriod(startIso: string, endIso: string): string {
  return new Intl.DateTimeFormat(current === "es" ? "es-US" : "en-US", { dateStyle: "long", timeStyle: "short" }).formatRange(
    new Date(startIso),
    new Date(endIso),
  );
}

/** A month of the reports ("2026-11") as a person reads it: "November 2026", "noviembre de 2026" (or, `short`,
 * "Nov 2026"); anything else is shown as it came. */
export function formatMonth(month: string, short = false): string {
  const match = /^(\d{4})-(\d{2})$/.exec(month);
  if (!match) return month;
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1));
  return new Intl.DateTimeFormat(current === "es" ? "es-US" : "en-US", {
    month: short ? "short" : "long",
    year: "numeric",
    timeZone: "UTC",
  }).format(date);
}

/** A time of day with its seconds (a footage window is minutes wide: its seconds matter). */
export function formatTime(iso: string): string {
  return new Intl.DateTimeFormat(current === "es" ? "es-US" : "en-US", { timeStyle: "medium" }).format(new Date(iso));
}

export function formatNumber(n: number, digits = 0): string {
  return new Intl.NumberFormat(current === "es" ? "es-US" : "en-US", {
    maximumFractionDigits: digits,
  }).format(n);
}

/** A length of time a person reads at a glance: "4 min 05 s", "1 h 02 min", "12 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (hours) return t("live.duration_hm", { h: hours, m: String(minutes).padStart(2, "0") });
  if (minutes) return t("live.duration_ms", { m: minutes, s: String(rest).padStart(2, "0") });
  return t("live.duration_s", { s: rest });
}
