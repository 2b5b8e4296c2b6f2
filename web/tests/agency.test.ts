import { describe, expect, it } from "vitest";
import { jurisdictionOf } from "../src/jurisdiction";
import { safeNext } from "../src/oidc";
import { sessionFromToken } from "../src/staff";

const jwt = (claims: object) =>
  ["e30", Buffer.from(JSON.stringify(claims)).toString("base64url"), "sig"].join(".");

describe("the agency session", () => {
  it("reads role and agency from the token's claims as the services do", () => {
    const s = sessionFromToken(jwt({ sub: "demo.admin", role: "agency_admin", agency: "demo", exp: 1900000000 }), "oidc");
    expect(s).toMatchObject({ role: "agency_admin", roles: ["agency_admin"], agency: "demo", sub: "demo.admin", via: "oidc", expiresAt: 1900000000 });
    expect(sessionFromToken(jwt({ roles: ["supervisor", "auditor"], agency: "zürich-pd" }), "oidc")).toMatchObject({ role: "supervisor", agency: "zürich-pd" });
  });
  it("refuses a token that names no role or no agency, or is not a JWT", () => {
    expect(sessionFromToken(jwt({ sub: "x", agency: "demo" }), "oidc")).toBeNull();
    expect(sessionFromToken(jwt({ sub: "x", role: "investigator" }), "oidc")).toBeNull();
    expect(sessionFromToken(jwt({ role: 3, agency: "demo" }), "oidc")).toBeNull();
    expect(sessionFromToken("opaque-token", "oidc")).toBeNull();
  });
});

describe("where a sign-in returns", () => {
  it("keeps a path of the portal with its query", () => {
    for (const ok of ["/agency", "/agency/requests?state=sent", "/agency/requests/3f0e-1", "/agency/program"]) {
      expect(safeNext(ok)).toBe(ok);
    }
  });
  it("never leaves the portal, nor returns to the callback", () => {
    for (const bad of ["//evil.example", "/\\evil.example/", "/\tevil", "https://evil.example", "javascript:alert(1)", "agency", "/a b", "/agency/callback", "/agency/callback?code=x", 3, null]) {
      expect(safeNext(bad)).toBe("/agency/sign-in");
    }
  });
});

describe("a jurisdiction file", () => {
  const polygon = { type: "Polygon", coordinates: [[[0, 0], [1, 0], [1, 1], [0, 0]]] };
  it("gives the polygon, bare, as a Feature or as a collection's only feature", () => {
    for (const text of [polygon, { type: "Feature", properties: {}, geometry: polygon }, { type: "FeatureCollection", features: [{ type: "Feature", geometry: polygon }] }]) {
      expect(jurisdictionOf(JSON.stringify(text))).toEqual({ geometry: polygon });
    }
  });
  it("names what is wrong otherwise", () => {
    expect(jurisdictionOf("{nope")).toEqual({ problem: "program.file_not_json" });
    expect(jurisdictionOf(JSON.stringify({ type: "Point", coordinates: [0, 0] }))).toEqual({ problem: "program.file_not_polygon" });
    expect(jurisdictionOf(JSON.stringify({ type: "FeatureCollection", features: [] }))).toEqual({ problem: "program.file_one_feature" });
    expect(jurisdictionOf("null")).toEqual({ problem: "program.file_not_polygon" });
  });
});
