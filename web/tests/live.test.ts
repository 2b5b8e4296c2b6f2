import { describe, expect, it } from "vitest";
import { formatDuration, setLanguage } from "../src/i18n";
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
});
