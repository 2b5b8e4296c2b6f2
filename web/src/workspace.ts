/** The agency workspace's shared rules: who may use it (the staff session's role and agency), the cameras
 * shared with the agency read page by page from geo_query, what "facing" and the agency's caps mean on the
 * page, and a download whose SHA-256 is checked as it streams. The pages draw; this module decides. */

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { config } from "./config";
import type { components as GeoComponents } from "./api/geo";
import type { components as RegistryComponents } from "./api/registry";
import type { components as RequestsComponents } from "./api/requests";
import { staff, type Staff } from "./staff";

export type CameraFeature = GeoComponents["schemas"]["CameraFeature"];
export type CameraCollection = GeoComponents["schemas"]["CameraCollection"];
export type RouteSearch = GeoComponents["schemas"]["RouteSearch"];
export type RouteCollection = GeoComponents["schemas"]["RouteCollection"];
export type RouteCameraFeature = GeoComponents["schemas"]["RouteCameraFeature"];
export type Policy = RegistryComponents["schemas"]["Policy"];
export type AgencyFeature = RegistryComponents["schemas"]["AgencyReadFeature"];
export type ContactRead = RegistryComponents["schemas"]["ContactRead"];
export type FootageRequest = RequestsComponents["schemas"]["RequestOut"];
export type RequestItem = RequestsComponents["schemas"]["RequestItem"];
export type RequestCreate = RequestsComponents["schemas"]["RequestCreate"];
export type RouteIn = RequestsComponents["schemas"]["RouteIn"];
export type HistoryEvent = RequestsComponents["schemas"]["EventOut"];
export type EvidenceItem = RequestsComponents["schemas"]["EvidenceOut"];
export type Custody = RequestsComponents["schemas"]["CustodyExport"];

/** The roles that work in the workspace (search, requests); an agency admin's page is elsewhere. */
export const WORKSPACE_ROLES = ["investigator", "supervisor"];

export function agencyUser(): Staff | null {
  const s = staff();
  return s && WORKSPACE_ROLES.includes(s.role) ? s : null;
}

/** Who may open the cameras map: the workspace's roles, and the agency admin (who sees the coverage layer there;
 * geo_query lets an admin search, not read contacts or send requests). */
export function mapUser(): Staff | null {
  const s = staff();
  return s && (WORKSPACE_ROLES.includes(s.role) || s.roles.includes("agency_admin")) ? s : null;
}

export function isAgencyAdmin(s: Staff | null): boolean {
  return !!s && s.roles.includes("agency_admin");
}

export const OWNER_KINDS = ["residential", "business", "school", "place_of_worship", "nonprofit", "government"] as const;
export const PLACEMENTS = ["outdoor", "indoor"] as const;
export const CATEGORIES = [
  "burglary",
  "theft",
  "robbery",
  "assault",
  "vehicle_crime",
  "vandalism",
  "shooting",
  "homicide",
  "traffic_collision",
  "missing_person",
  "fraud",
  "other",
] as const;

/** The camera filters every geo_query search takes (empty: no filter). */
export interface CameraFilters {
  ownerKinds: string[]; // none chosen: every kind
  placements: string[];
  liveOnly: boolean;
  incidentAt: string | null; // RFC 3339; with it only cameras whose footage of it is likely still kept
}

export function filterQuery(f: CameraFilters): Record<string, string> {
  const q: Record<string, string> = {};
  if (f.ownerKinds.length && f.ownerKinds.length < OWNER_KINDS.length) q.owner_kind = f.ownerKinds.join(",");
  if (f.placements.length && f.placements.length < PLACEMENTS.length) q.placement = f.placements.join(",");
  if (f.liveOnly) q.live = "true";
  if (f.incidentAt) {
    q.incident_at = f.incidentAt;
    q.only_available = "true";
  }
  return q;
}

/** Cameras per page of the first map: 10,000 cameras come in five answers, each drawn as it arrives. */
export const MAP_PAGE = 2000;

/** The filters a camera tile carries (owner kind, placement, live sharing), applied on the page to the cameras a
 * tile holds, as geo_query applies them to a search; an incident time is not in the tiles (the search applies it). */
export function tileFilter(f: CameraFilters): (c: { owner_kind: string; placement: string | null; live_mode: string }) => boolean {
  // Every choice ticked is no filter, as filterQuery sends none (a camera of unknown placement then stays).
  const kinds = f.ownerKinds.length && f.ownerKinds.length < OWNER_KINDS.length ? f.ownerKinds : null;
  const placements = f.placements.length && f.placements.length < PLACEMENTS.length ? f.placements : null;
  return (c) =>
    (!kinds || kinds.includes(c.owner_kind)) &&
    (!placements || (c.placement != null && placements.includes(c.placement))) &&
    (!f.liveOnly || c.live_mode !== "never");
}

/** Above this many cameras the workspace map draws them from geo_query's vector tiles instead of loading every
 * page: 10,000 cameras are five pages (about 4 MB of GeoJSON, a few seconds, every camera held in the tab), which
 * the map carries well (tests/portal/test_agency_map_scale.py); a city's 50,000 would be 25 pages and 20 MB before
 * the map is whole. The tiles fetch only what is in view, whatever the number. */
export const TILE_MAP_ABOVE = 10_000;

export interface PageStats {
  requests: number;
  bytes: number;
}

/** Every camera the agency may see, following the OGC items' `next` links; `onPage` sees each page as it
 * arrives (the map draws what it has so far). Owners' contacts are never asked for here. */
export async function loadAllCameras(
  token: string,
  filters: CameraFilters,
  onPage: (cameras: CameraFeature[], stats: PageStats) => void,
  signal?: AbortSignal,
  stop?: () => Promise<boolean>,
): Promise<{ cameras: CameraFeature[]; stats: PageStats; stopped: boolean }> {
  const base = config().geo_query_url.replace(/\/$/, "");
  const params = new URLSearchParams({ limit: String(MAP_PAGE), contacts: "false", ...filterQuery(filters) });
  let url: string | null = `${base}/v1/ogc/collections/cameras/items?${params.toString()}`;
  const cameras: CameraFeature[] = [];
  const stats: PageStats = { requests: 0, bytes: 0 };
  while (url) {
    // More than one page: the caller may rather not load them all (the map then draws from tiles).
    if (stats.requests === 1 && stop && (await stop())) return { cameras, stats, stopped: true };
    const response: Response = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/geo+json" },
      signal,
    });
    const text = await response.text();
    stats.requests += 1;
    stats.bytes += new TextEncoder().encode(text).length;
    if (!response.ok) throw new PageFailure(response.status, text);
    const page = JSON.parse(text) as CameraCollection;
    cameras.push(...page.features);
    signal?.throwIfAborted();
    onPage(cameras, stats);
    url = nextLink(page, base);
  }
  return { cameras, stats, stopped: false };
}

/** How many cameras the agency may see within a box (west, south, east, north) under the filters: one search of a
 * single camera asking for `numberMatched`. */
export async function countCameras(token: string, filters: CameraFilters, bbox: [number, number, number, number], signal?: AbortSignal): Promise<number> {
  const base = config().geo_query_url.replace(/\/$/, "");
  const params = new URLSearchParams({ bbox: bbox.map((v) => v.toFixed(6)).join(","), limit: "1", count: "true", contacts: "false", ...filterQuery(filters) });
  const response = await fetch(`${base}/v1/cameras/bbox?${params.toString()}`, {
    headers: { Authorization: `Bearer ${token}`, Accept: "application/geo+json" },
    signal,
  });
  const text = await response.text();
  if (!response.ok) throw new PageFailure(response.status, text);
  const matched = (JSON.parse(text) as { numberMatched?: number }).numberMatched;
  if (typeof matched !== "number") throw new PageFailure(response.status, text);
  return matched;
}

export class PageFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`page failed: ${status}`);
  }
}

export function nextLink(page: { links: { rel: string; href: string }[] }, base: string): string | null {
  const next = page.links.find((l) => l.rel === "next");
  if (!next) return null;
  return new URL(next.href, `${base}/`).toString();
}

/** Whether the incident lies in a camera's field of view (its direction ± fov/2, out to its range): the
 * bearing the search answered is from the incident to the camera, so the camera looks back along it. */
export function faces(camera: CameraFeature["properties"], defaultRangeM = 30): boolean {
  const { direction_deg: direction, fov_deg: fov, distance_m: distance, bearing_deg: bearing } = camera;
  if (direction == null || fov == null || distance == null || bearing == null) return false;
  if (distance > (camera.range_m ?? defaultRangeM)) return false;
  if (fov >= 360) return true;
  const back = (bearing + 180) % 360;
  const off = Math.abs(((back - direction + 540) % 360) - 180);
  return off <= fov / 2;
}

const COMPASS = "N,NE,E,SE,S,SW,W,NW";

/** The compass point of a bearing, in the language's abbreviations (eight, comma-separated). */
export function compass(deg: number, names: string = COMPASS): string {
  const points = names.split(",");
  return points[Math.round(((deg % 360) + 360) % 360 / 45) % 8] ?? points[0] ?? "";
}

const EARTH_RADIUS_M = 6_378_137;

/** The area of a lon/lat ring on the sphere, in m² (the caps are checked the same way by the API, on the
 * spheroid: the two differ by well under a percent at a city's size). */
export function ringAreaM2(ring: [number, number][]): number {
  if (ring.length < 3) return 0;
  let total = 0;
  for (let i = 0; i < ring.length; i++) {
    const [lon1, lat1] = ring[i]!;
    const [lon2, lat2] = ring[(i + 1) % ring.length]!;
    total += ((lon2 - lon1) * Math.PI) / 180 * (2 + Math.sin((lat1 * Math.PI) / 180) + Math.sin((lat2 * Math.PI) / 180));
  }
  return Math.abs((total * EARTH_RADIUS_M * EARTH_RADIUS_M) / 2);
}

export function circleAreaM2(radiusM: number): number {
  return Math.PI * radiusM * radiusM;
}

export function windowHours(startIso: string, endIso: string): number {
  return (Date.parse(endIso) - Date.parse(startIso)) / 3_600_000;
}

/** A datetime-local field's value (the officer's local time) as an RFC 3339 instant, or null. */
export function localToIso(value: string): string | null {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** An instant as a datetime-local field's value, in the officer's local time. */
export function isoToLocal(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Typed polygon corners, one "lon, lat" a line, or null where a line is not a pair of numbers. */
export function parseRing(text: string): [number, number][] | null {
  const points: [number, number][] = [];
  for (const line of text.split(/\n/).map((l) => l.trim()).filter(Boolean)) {
    const parts = line.split(/[\s,;]+/).filter(Boolean).map(Number);
    if (parts.length !== 2 || !parts.every(Number.isFinite)) return null;
    const [lon, lat] = parts as [number, number];
    if (Math.abs(lon) > 180 || Math.abs(lat) > 90) return null;
    points.push([lon, lat]);
  }
  return points;
}

/** A route of travel as the workspace draws it: its points in order, the buffer, a start and a speed, the
 * margin. The same body is a route search's (geo_query) and a footage request's `route` (requests_api). */
export interface DrawnRoute {
  points: [number, number][]; // lon, lat
  buffer_m: number;
  start: string; // RFC 3339
  speed: "walking" | "driving";
  margin_s: number;
}

/** Metres per second, as geo_query reads `walking` and `driving`. */
export const ROUTE_SPEEDS = { walking: 1.4, driving: 13.9 } as const;

export function routeBody(r: DrawnRoute): RouteSearch & RouteIn {
  return {
    path: { type: "LineString", coordinates: r.points },
    buffer_m: r.buffer_m,
    start: r.start,
    speed: r.speed,
    margin_s: r.margin_s,
  };
}

/** The route carried from the map to a new request, in the page's address (so a reload keeps it). */
export function encodeRoute(r: DrawnRoute): string {
  return JSON.stringify([r.points.map(([lon, lat]) => [Number(lon.toFixed(6)), Number(lat.toFixed(6))]), r.buffer_m, r.start, r.speed, r.margin_s]);
}

export function decodeRoute(text: string | null): DrawnRoute | null {
  if (!text) return null;
  try {
    const [points, buffer, start, speed, margin] = JSON.parse(text) as unknown[];
    const pts = parseRing(Array.isArray(points) ? points.map((p) => (Array.isArray(p) ? p.join(",") : "")).join("\n") : "");
    if (!pts || pts.length < 2 || typeof buffer !== "number" || typeof start !== "string" || !Number.isFinite(Date.parse(start))) return null;
    if ((speed !== "walking" && speed !== "driving") || typeof margin !== "number") return null;
    return { points: pts, buffer_m: buffer, start, speed, margin_s: margin };
  } catch {
    return null; // an address edited by hand: no route
  }
}

/** The length of a lon/lat path on the sphere, in metres (the API measures on the spheroid). */
export function pathLengthM(points: [number, number][]): number {
  let total = 0;
  const rad = Math.PI / 180;
  for (let i = 1; i < points.length; i++) {
    const [lon1, lat1] = points[i - 1]!;
    const [lon2, lat2] = points[i]!;
    const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
    total += 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
  }
  return total;
}

/** The area of a path's buffer: a band either side of it and the round ends (its bends overlap a little). */
export function routeAreaM2(points: [number, number][], bufferM: number): number {
  return points.length < 2 ? 0 : 2 * bufferM * pathLengthM(points) + Math.PI * bufferM * bufferM;
}

export function closeRing(points: [number, number][]): [number, number][] {
  return [...points, points[0]!];
}

export type DownloadOutcome =
  | { ok: true; blob: Blob; sha256: string }
  | { ok: false; reason: "mismatch"; sha256: string }
  | { ok: false; reason: "refused"; status: number; body: string }
  | { ok: false; reason: "broken" };

/** Reads an answer's body a chunk at a time, hashing as it goes, and keeps the file only when its SHA-256 is
 * the one recorded at upload: a file that is not the evidence is never offered to save. */
export async function verifiedBody(
  response: Response,
  expected: string,
  onProgress: (bytes: number) => void = () => {},
): Promise<DownloadOutcome> {
  if (!response.ok) return { ok: false, reason: "refused", status: response.status, body: await response.text() };
  if (!response.body) return { ok: false, reason: "broken" };
  const hash = sha256.create();
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  const reader = response.body.getReader();
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      chunks.push(value);
      read += value.length;
      onProgress(read);
    }
  } catch {
    // The service breaks a transfer whose bytes stop matching the record.
    return { ok: false, reason: "broken" };
  }
  const actual = bytesToHex(hash.digest());
  if (actual !== expected.toLowerCase()) return { ok: false, reason: "mismatch", sha256: actual };
  return { ok: true, blob: new Blob(chunks, { type: response.headers.get("Content-Type") ?? "application/octet-stream" }), sha256: actual };
}

export function formatBytes(n: number, format: (n: number, digits?: number) => string): string {
  if (n < 1024) return `${format(n)} B`;
  if (n < 1024 * 1024) return `${format(n / 1024, 1)} KiB`;
  if (n < 1024 ** 3) return `${format(n / 1024 / 1024, 1)} MiB`;
  return `${format(n / 1024 ** 3, 2)} GiB`;
}
