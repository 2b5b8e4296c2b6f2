import { describe, expect, it } from "vitest";
import { formatClock, formatDuration, formatRemaining, setLanguage } from "../src/i18n";
import { continuesWith, streamEndedBy } from "../src/live-player";
import { problemKind } from "../src/relay";

describe("live video", () => {
  it("says a length of time as people say it: minutes, and seconds only under a minute, in each language", () => {
    setLanguage("en");
    expect(formatDuration(2.4)).toBe("2 seconds");
    expect(formatDuration(245)).toBe("4 minutes");
    expect(formatDuration(3725)).toBe("1 hour, 2 minutes");
    expect(formatDuration(7200)).toBe("2 hours");
    expect(formatDuration(-3)).toBe("0 seconds");
    setLanguage("es");
    expect(formatDuration(45)).toBe("45 segundos");
    expect(formatDuration(61)).toBe("1 minuto");
    expect(formatDuration(3725)).toBe("1 hora y 2 minutos");
    setLanguage("en");
  });

  it("says the time left in whole minutes, never more than there is, and its last minute without seconds", () => {
    setLanguage("en");
    expect(formatRemaining(14 * 60 + 59)).toBe("14 minutes");
    expect(formatRemaining(15 * 60)).toBe("15 minutes");
    expect(formatRemaining(4 * 3600 - 1)).toBe("3 hours, 59 minutes");
    expect(formatRemaining(24 * 3600)).toBe("24 hours");
    expect(formatRemaining(60)).toBe("1 minute");
    expect(formatRemaining(59.9)).toBe("less than a minute");
    expect(formatRemaining(1)).toBe("less than a minute");
    setLanguage("es");
    expect(formatRemaining(14 * 60 + 59)).toBe("14 minutos");
    expect(formatRemaining(3600 + 5 * 60)).toBe("1 hora y 5 minutos");
    expect(formatRemaining(30)).toBe("menos de un minuto");
    setLanguage("en");
  });

  it("changes the time left once a minute, not each second", () => {
    setLanguage("en");
    const shown = new Set<string>();
    for (let s = 5 * 60; s > 0; s--) shown.add(formatRemaining(s));
    expect([...shown]).toEqual(["5 minutes", "4 minutes", "3 minutes", "2 minutes", "1 minute", "less than a minute"]);
  });

  it("says a window's times to the minute, without seconds", () => {
    setLanguage("en");
    const at = new Date(2026, 11, 6, 9, 48, 37).toISOString();
    expect(formatClock(at)).toMatch(/^9:48\sAM$/);
    setLanguage("es");
    expect(formatClock(at)).not.toMatch(/37/);
    expect(formatClock(at)).toMatch(/9:48/);
    setLanguage("en");
  });

  it("reads the relay's problem kind from its type, and nothing from a body that is not a problem", () => {
    expect(problemKind({ type: "https://canvass.example/problems/window-ended" })).toBe("window-ended");
    expect(problemKind({ title: "no type" })).toBeNull();
    expect(problemKind(null)).toBeNull();
    expect(problemKind("window-ended")).toBeNull();
  });

  it("says a stream the relay ended at its token's expiry ended for that, and otherwise that the camera went offline", () => {
    const exp = 1_800_000_000;
    expect(streamEndedBy(exp, exp + 0.4)).toBe("expired");
    // The relay's clock may be a little ahead of the browser's.
    expect(streamEndedBy(exp, exp - 2)).toBe("expired");
    expect(streamEndedBy(exp, exp - 600)).toBe("offline");
    expect(streamEndedBy(null, exp)).toBe("offline");
  });

  it("goes on by itself after its token's expiry only with a token renewed since and good for a while", () => {
    const exp = 1_800_000_000;
    expect(continuesWith(exp, exp + 900, exp + 1)).toBe(true);
    expect(continuesWith(null, exp + 900, exp)).toBe(true);
    expect(continuesWith(exp, exp, exp + 1)).toBe(false); // the same token: not renewed (signed out)
    expect(continuesWith(exp, null, exp + 1)).toBe(false); // no token at all
    expect(continuesWith(exp, exp + 5, exp + 1)).toBe(false); // renewed, but about to expire too
  });
});
