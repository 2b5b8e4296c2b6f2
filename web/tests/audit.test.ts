import { describe, expect, it } from "vitest";
import { auditQuery } from "../src/audit";

const blank = { since: "", until: "", actor: "", action: "", caseNumber: "", target: "", shape: "none" as const, lat: "", lon: "", radius: "200", bbox: "", corners: "" };

describe("the audit trail's filters as the API's query", () => {
  it("leaves out what is empty and trims what is typed", () => {
    expect(auditQuery(blank)).toEqual({ query: {}, errors: [] });
    expect(auditQuery({ ...blank, actor: " det-a ", caseNumber: "C-1" }).query).toEqual({ actor: "det-a", case_number: "C-1" });
  });

  it("sends a circle as near and radius_m, a rectangle as bbox, a polygon closed", () => {
    expect(auditQuery({ ...blank, shape: "circle", lat: "43.04", lon: "-87.9" }).query).toEqual({ near: "-87.9,43.04", radius_m: "200" });
    expect(auditQuery({ ...blank, shape: "rectangle", bbox: "-88, 43, -87.9, 43.1" }).query).toEqual({ bbox: "-88,43,-87.9,43.1" });
    const polygon = auditQuery({ ...blank, shape: "polygon", corners: "-88, 43\n-87.9, 43\n-87.9, 43.1" }).query.polygon!;
    expect(JSON.parse(polygon)).toEqual({ type: "Polygon", coordinates: [[[-88, 43], [-87.9, 43], [-87.9, 43.1], [-88, 43]]] });
  });

  it("says at its field what is typed wrong, and sends nothing of it", () => {
    const fields = (f: Partial<typeof blank> | Record<string, string>) => auditQuery({ ...blank, ...f }).errors.map((e) => e.field);
    expect(fields({ shape: "circle", lat: "95", lon: "0" })).toEqual(["au-lat"]);
    expect(fields({ shape: "circle", lat: "43", lon: "-87", radius: "0" })).toEqual(["au-radius"]);
    expect(fields({ shape: "rectangle", bbox: "-87, 43, -88, 43.1" })).toEqual(["au-bbox"]);
    expect(fields({ shape: "polygon", corners: "-88, 43\n-87.9, 43" })).toEqual(["au-corners"]);
    expect(fields({ target: "not-an-id" })).toEqual(["au-target"]);
  });
});
