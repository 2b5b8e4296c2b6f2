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

/** A time of day as people say it, to the minute ("9:48 AM", "9:48 a.m."): a live window's times, a check's. */
export function formatClock(iso: string): string {
  return new Intl.DateTimeFormat(current === "es" ? "es-US" : "en-US", { timeStyle: "short" }).format(new Date(iso));
}

function unit(n: number, name: "hour" | "minute" | "second"): string {
  return new Intl.NumberFormat(current === "es" ? "es-US" : "en-US", { style: "unit", unit: name, unitDisplay: "long" }).format(n);
}

/** Whole minutes as hours and minutes in words: "1 hour, 5 minutes", "1 hora y 5 minutos", "2 hours". */
function hoursAndMinutes(totalMinutes: number): string {
  const hours = Math.floor(totalMinutes / 60);
  const minutes = totalMinutes % 60;
  const parts = [hours ? unit(hours, "hour") : "", minutes || !hours ? unit(minutes, "minute") : ""].filter(Boolean);
  return new Intl.ListFormat(current === "es" ? "es-US" : "en-US", { style: "long", type: "unit" }).format(parts);
}

/** A length of time as people say it: hours and minutes, to the nearest minute ("4 minutes", "1 hour, 2
 * minutes"); under a minute, its seconds ("12 seconds"). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? unit(s, "second") : hoursAndMinutes(Math.round(s / 60));
}

/** The time left before something ends, as people say it, without a count of seconds: whole minutes left ("14
 * minutes" until 14 have passed: never more time than there is), and in the last minute "less than a minute".
 * Shown by a clock that ticks each second, it changes once a minute. */
export function formatRemaining(seconds: number): string {
  return seconds < 60 ? t("live.less_than_a_minute") : hoursAndMinutes(Math.floor(seconds / 60));
}
