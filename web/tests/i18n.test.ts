import { describe, expect, it } from "vitest";
import { catalogs, detectLanguage, formatMonth, formatPeriod, LANGUAGES, setLanguage } from "../src/i18n";
import { en } from "../src/i18n/en";

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("the message catalog", () => {
  it("has every English key translated in every language, with the same placeholders", () => {
    for (const lang of LANGUAGES) {
      const catalog = catalogs[lang]!;
      const missing = Object.keys(en).filter((k) => !(k in catalog) || !catalog[k as keyof typeof en]?.trim());
      expect(missing, `${lang} lacks translations`).toEqual([]);
      const extra = Object.keys(catalog).filter((k) => !(k in en));
      expect(extra, `${lang} has keys English lacks`).toEqual([]);
      for (const [key, text] of Object.entries(en)) {
        expect(placeholders(catalog[key as keyof typeof en]), `${lang} ${key}`).toEqual(placeholders(text));
      }
    }
  });

  it("translates Spanish rather than copying English (beyond names and units)", () => {
    const same = Object.keys(en).filter((k) => catalogs.es![k as keyof typeof en] === en[k as keyof typeof en]);
    expect(same).toEqual(["requests.bytes", "role.supervisor", "role.auditor", "agency.header_signed_in", "agency.no", "program.webhook_title"]);
  });

  it("picks the browser's first language it speaks, unless the visitor chose one", () => {
    expect(detectLanguage(["es-MX", "en-US"], null)).toBe("es");
    expect(detectLanguage(["fr-FR", "es"], null)).toBe("es");
    expect(detectLanguage(["fr-FR"], null)).toBe("en");
    expect(detectLanguage(["es-MX"], "en")).toBe("en");
    expect(detectLanguage([], "xx")).toBe("en");
  });

  it("names a report's month as a person reads it, in each language", () => {
    setLanguage("en");
    expect(formatMonth("2026-11")).toBe("November 2026");
    expect(formatMonth("2026-01", true)).toBe("Jan 2026");
    setLanguage("es");
    expect(formatMonth("2026-11")).toBe("noviembre de 2026");
    setLanguage("en");
    expect(formatMonth("not a month")).toBe("not a month");
  });

  it("says a period's day once when both ends fall on it, in each language", () => {
    // Half an hour either side of noon UTC: the same day in every time zone.
    for (const lang of LANGUAGES) {
      setLanguage(lang);
      const period = formatPeriod("2026-12-06T12:00:00Z", "2026-12-06T12:30:00Z");
      expect(period.match(/2026/g), period).toHaveLength(1);
      expect(formatPeriod("2026-12-06T12:00:00Z", "2026-12-09T12:00:00Z").match(/2026/g)).toHaveLength(2);
    }
    setLanguage("en");
  });
});
