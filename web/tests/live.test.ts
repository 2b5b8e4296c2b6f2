import { describe, expect, it } from "vitest";
import { formatDuration, setLanguage } from "../src/i18n";
import { continuesWith, streamEndedBy } from "../src/live-player";
import { problemKind } from "../src/relay";

describe("live video", () => {
  it("says a length of time as a person reads it, seconds rounded", () => {
    setLanguage("en");
    expect(formatDuration(2.4)).toBe("2 s");
    expect(formatDuration(245)).toBe("4 min 05 s");
    expect(formatDuration(3725)).toBe("1 h 02 min");
    expect(formatDuration(-3)).toBe("0 s");
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
