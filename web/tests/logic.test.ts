import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { contactProblem, errorsFromFailure, errorText, fieldForPointer } from "../src/forms";
import { wedge } from "../src/wedge";
import { registrationIdOf } from "../src/session";
import { sha256Of } from "../src/sha256";
import { failureOf } from "../src/api/client";

describe("problem pointers", () => {
  const fields = { "/body/contact": "contact", "/body/contact/name": "name", "/body/location": "lat" };
  it("names the field of the longest matching pointer", () => {
    expect(fieldForPointer("/body/contact/name", fields)).toBe("name");
    expect(fieldForPointer("/body/contact/email", fields)).toBe("contact");
    expect(fieldForPointer("/body/location/coordinates/0", fields)).toBe("lat");
    expect(fieldForPointer("/body/contacts", fields)).toBeNull();
    expect(fieldForPointer("/query/lat", fields)).toBeNull();
  });
  it("says a malformed id in the page's address is not found, in plain words", () => {
    const f = failureOf(422, { errors: [{ pointer: "/path/alert_id", reason: "Input should be a valid UUID" }] });
    expect(errorsFromFailure(f, {})).toEqual([{ field: null, message: "This could not be found. It may have been deleted." }]);
    const body = failureOf(422, { errors: [{ pointer: "/body/name", reason: "too long" }, { pointer: "/path/id", reason: "bad" }] });
    expect(errorsFromFailure(body, {}).map(errorText)).toEqual(["This was not accepted (too long)", "This was not accepted (bad)"]);
  });
  it("reads a problem document defensively and marks what a retry may fix", () => {
    const f = failureOf(422, { title: "Invalid", errors: [{ pointer: "/body/x", reason: "bad" }, { nope: 1 }] });
    expect(f.errors).toEqual([{ pointer: "/body/x", reason: "bad" }]);
    expect(f.retryable).toBe(false);
    expect(failureOf(503, null).retryable).toBe(true);
  });
});

describe("the credential", () => {
  it("carries its registration's id", () => {
    expect(registrationIdOf("cvo_6f1c2d0e9b8a4c7d8e9f0a1b2c3d4e5f_Zx3secret")).toBe(
      "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    );
    expect(registrationIdOf("  cvo_6f1c2d0e9b8a4c7d8e9f0a1b2c3d4e5f_abc  ")).not.toBeNull();
    expect(registrationIdOf("6f1c2d0e9b8a4c7d8e9f0a1b2c3d4e5f")).toBeNull();
  });
});

describe("the SHA-256 computed in the browser", () => {
  it("equals the whole file's hash however the file is sliced", async () => {
    const bytes = new Uint8Array(1_000_003).map((_, i) => (i * 31) % 251);
    const blob = new Blob([bytes]);
    const expected = createHash("sha256").update(bytes).digest("hex");
    const seen: number[] = [];
    expect(await sha256Of(blob, (n) => seen.push(n), 65_536)).toBe(expected);
    expect(seen.at(-1)).toBe(bytes.length);
    expect(seen.length).toBe(Math.ceil(bytes.length / 65_536));
    expect(await sha256Of(new Blob([]))).toBe(createHash("sha256").digest("hex"));
  });
});

describe("a camera's field of view", () => {
  it("is a wedge from the camera, its arc at the range in the bearing's direction", () => {
    const points = wedge(43, -87.9, 90, 60, 100);
    expect(points[0]).toEqual([43, -87.9]);
    expect(points.at(-1)).toEqual([43, -87.9]);
    const middle = points[Math.floor(points.length / 2)]!;
    expect(middle[1]).toBeGreaterThan(-87.9); // east of the camera
    expect(Math.abs(middle[0] - 43)).toBeLessThan(1e-4);
  });
});

describe("an email or phone as typed", () => {
  it("takes an email with a domain, and a phone with its area code, as people write them", () => {
    for (const ok of ["dana@example.org", " dana.rivera+cams@mail.example.com ", "(414) 555-0123", "+1 414 555 0123", "414.555.0123", "414-555-0123 ext. 12", "+52 55 1234 5678"])
      expect(contactProblem(ok)).toBeNull();
  });
  it("names what is wrong in the resident's words, by what was meant", () => {
    expect(contactProblem("dana@example")).toBe("register.error_email");
    expect(contactProblem("dana @example.org")).toBe("register.error_email");
    expect(contactProblem("not an email 😀")).toBe("register.error_phone");
    expect(contactProblem("555-012")).toBe("register.error_phone");
    expect(contactProblem("1234567890123456")).toBe("register.error_phone");
    expect(contactProblem("<b>414 555 0123</b>")).toBe("register.error_phone");
  });
});
