import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  circleAreaM2,
  compass,
  decodeRoute,
  encodeRoute,
  faces,
  filterQuery,
  nextLink,
  parseRing,
  pathLengthM,
  ringAreaM2,
  routeAreaM2,
  tileFilter,
  verifiedBody,
  windowHours,
  type CameraFeature,
} from "../src/workspace";

type Props = CameraFeature["properties"];
const camera = (p: Partial<Props>): Props =>
  ({ direction_deg: null, fov_deg: null, range_m: null, distance_m: null, bearing_deg: null, ...p }) as Props;

describe("a camera facing the incident", () => {
  it("looks back along the bearing from the incident, within its field of view and range", () => {
    // The camera is 20 m south of the incident (bearing 180 from it) and looks north.
    expect(faces(camera({ direction_deg: 0, fov_deg: 90, range_m: 40, distance_m: 20, bearing_deg: 180 }))).toBe(true);
    expect(faces(camera({ direction_deg: 40, fov_deg: 90, range_m: 40, distance_m: 20, bearing_deg: 180 }))).toBe(true);
    expect(faces(camera({ direction_deg: 50, fov_deg: 90, range_m: 40, distance_m: 20, bearing_deg: 180 }))).toBe(false);
    expect(faces(camera({ direction_deg: 180, fov_deg: 90, range_m: 40, distance_m: 20, bearing_deg: 180 }))).toBe(false);
    // Across north: looking 350, the incident due north of it.
    expect(faces(camera({ direction_deg: 350, fov_deg: 60, range_m: 40, distance_m: 20, bearing_deg: 180 }))).toBe(true);
  });
  it("is out of range beyond the camera's range, and unknown without a direction", () => {
    expect(faces(camera({ direction_deg: 0, fov_deg: 90, range_m: 15, distance_m: 20, bearing_deg: 180 }))).toBe(false);
    expect(faces(camera({ fov_deg: 360, distance_m: 5, bearing_deg: 0, direction_deg: 0 }))).toBe(true);
    expect(faces(camera({ distance_m: 5, bearing_deg: 0 }))).toBe(false);
  });
  it("names the compass point of a bearing", () => {
    expect([0, 44, 46, 180, 225, 330, 359].map((d) => compass(d))).toEqual(["N", "NE", "NE", "S", "SW", "NW", "N"]);
    expect(compass(270, "N,NE,E,SE,S,SO,O,NO")).toBe("O");
  });
});

describe("the caps as the page measures them", () => {
  it("measures a small square and a circle within a percent of the geodesic area", () => {
    // 0.01° × 0.01° at the equator: about 1,113 m × 1,106 m.
    const area = ringAreaM2([[0, 0], [0.01, 0], [0.01, 0.01], [0, 0.01]]);
    expect(area).toBeGreaterThan(1_225_000);
    expect(area).toBeLessThan(1_240_000);
    expect(circleAreaM2(400)).toBeCloseTo(502_654.8, 0);
    expect(windowHours("2026-11-20T21:30:00Z", "2026-11-20T23:00:00Z")).toBe(1.5);
  });
  it("reads typed corners, one lon, lat a line, and refuses anything else", () => {
    expect(parseRing("-87.9, 43.0\n-87.8 43.0\n\n-87.8;43.1")).toEqual([[-87.9, 43], [-87.8, 43], [-87.8, 43.1]]);
    expect(parseRing("-87.9, 43.0, 7")).toBeNull();
    expect(parseRing("north, 43")).toBeNull();
    expect(parseRing("-200, 43")).toBeNull();
  });
});

describe("the map's pages", () => {
  it("asks only for the filters chosen, and follows the next link", () => {
    expect(filterQuery({ ownerKinds: [], placements: ["outdoor", "indoor"], liveOnly: false, incidentAt: null })).toEqual({});
    expect(filterQuery({ ownerKinds: ["business"], placements: ["indoor"], liveOnly: true, incidentAt: "2026-11-20T22:15:00.000Z" })).toEqual({
      owner_kind: "business",
      placement: "indoor",
      live: "true",
      incident_at: "2026-11-20T22:15:00.000Z",
      only_available: "true",
    });
    const base = "http://geo.example";
    expect(nextLink({ links: [{ rel: "self", href: "/a" }] }, base)).toBeNull();
    expect(nextLink({ links: [{ rel: "next", href: "/v1/ogc/collections/cameras/items?cursor=x" }] }, base)).toBe(
      "http://geo.example/v1/ogc/collections/cameras/items?cursor=x",
    );
    expect(nextLink({ links: [{ rel: "next", href: "http://other.example/p?cursor=y" }] }, base)).toBe("http://other.example/p?cursor=y");
  });
});

describe("a download checked as it streams", () => {
  const bytes = new Uint8Array(300_000).map((_, i) => (i * 7) % 256);
  const hex = createHash("sha256").update(bytes).digest("hex");
  const streamed = () =>
    new Response(
      new ReadableStream({
        start(c) {
          for (let i = 0; i < bytes.length; i += 65_536) c.enqueue(bytes.slice(i, i + 65_536));
          c.close();
        },
      }),
      { headers: { "Content-Type": "video/mp4" } },
    );
  it("keeps the file when its SHA-256 is the record's, reporting progress", async () => {
    const seen: number[] = [];
    const out = await verifiedBody(streamed(), hex, (n) => seen.push(n));
    expect(out.ok).toBe(true);
    if (out.ok) {
      expect(out.sha256).toBe(hex);
      expect(out.blob.size).toBe(bytes.length);
    }
    expect(seen.at(-1)).toBe(bytes.length);
    expect(seen.length).toBe(5);
  });
  it("refuses a file whose SHA-256 is not the record's, offering nothing", async () => {
    const other = hex.replace(/^./, hex[0] === "0" ? "1" : "0");
    const out = await verifiedBody(streamed(), other);
    expect(out).toEqual({ ok: false, reason: "mismatch", sha256: hex });
  });
  it("reports a transfer broken off, and a refusal with its problem", async () => {
    const broken = new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(bytes.slice(0, 1000));
          c.error(new Error("reset"));
        },
      }),
    );
    expect(await verifiedBody(broken, hex)).toEqual({ ok: false, reason: "broken" });
    const refused = new Response(JSON.stringify({ title: "Evidence integrity check failed" }), { status: 500 });
    expect(await verifiedBody(refused, hex)).toEqual({ ok: false, reason: "refused", status: 500, body: '{"title":"Evidence integrity check failed"}' });
  });
});

describe("a route carried from the map to a new request", () => {
  const route = { points: [[-87.93, 43.04], [-87.92, 43.04], [-87.92, 43.05]] as [number, number][], buffer_m: 60, start: "2026-11-20T22:15:00.000Z", speed: "driving" as const, margin_s: 90 };

  it("comes back from the address as it was drawn", () => {
    expect(decodeRoute(new URLSearchParams({ route: encodeRoute(route) }).get("route"))).toEqual(route);
  });

  it("is no route when the address was edited into something else", () => {
    expect(decodeRoute(null)).toBeNull();
    expect(decodeRoute("not json")).toBeNull();
    expect(decodeRoute(JSON.stringify([[[-87.93, 43.04]], 60, route.start, "driving", 90]))).toBeNull(); // one point
    expect(decodeRoute(JSON.stringify([route.points, 60, route.start, "flying", 90]))).toBeNull();
    expect(decodeRoute(JSON.stringify([[[-200, 43.04], [-87.92, 43.04]], 60, route.start, "driving", 90]))).toBeNull();
  });

  it("measures its length and the area of its buffer", () => {
    // 0.01 degree of longitude at 43.04 N and 0.01 degree of latitude, on the sphere.
    const east = 0.01 * (Math.PI / 180) * 6_378_137 * Math.cos((43.04 * Math.PI) / 180);
    const north = 0.01 * (Math.PI / 180) * 6_378_137;
    expect(pathLengthM(route.points)).toBeCloseTo(east + north, 0);
    expect(routeAreaM2(route.points, 60)).toBeCloseTo(2 * 60 * (east + north) + Math.PI * 3600, -1);
    expect(routeAreaM2(route.points.slice(0, 1), 60)).toBe(0);
  });
});

describe("the filters applied to the cameras of a tile", () => {
  const none = { ownerKinds: [], placements: [], liveOnly: false, incidentAt: null };
  const shop = { owner_kind: "business", placement: "outdoor", live_mode: "on_alert" };
  const home = { owner_kind: "residential", placement: null, live_mode: "never" };
  it("keeps what the search would keep: kind, placement (an unknown one is not a match), live sharing", () => {
    expect([shop, home].filter(tileFilter(none))).toEqual([shop, home]);
    expect([shop, home].filter(tileFilter({ ...none, ownerKinds: ["residential"] }))).toEqual([home]);
    expect([shop, home].filter(tileFilter({ ...none, placements: ["outdoor"] }))).toEqual([shop]);
    // Every choice ticked is no filter (as the search is sent none): the camera of unknown placement stays.
    expect([shop, home].filter(tileFilter({ ...none, placements: ["outdoor", "indoor"] }))).toEqual([shop, home]);
    expect([shop, home].filter(tileFilter({ ...none, liveOnly: true }))).toEqual([shop]);
    // The incident time is not in the tiles: the map keeps every camera, the search applies it.
    expect([shop, home].filter(tileFilter({ ...none, incidentAt: "2026-12-01T10:00:00Z" }))).toEqual([shop, home]);
  });
});
