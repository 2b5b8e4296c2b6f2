/** The coverage map's rules on the page: what geo_query's coverage answers hold (hexagonal cells with a count of
 * cameras), how counts are grouped into the legend's classes, where a cell is (its centre, for the text
 * alternative), and the gaps an agency admin recruits in — groups of neighbouring cells with no camera. The
 * public page and the admin's layer draw; this module decides. Nothing here touches Leaflet. */

import type { paths as GeoPaths } from "./api/geo";

/** The public sizes (GET /v1/coverage) and the agency's (GET /v1/coverage/agency), from the contract. */
export type PublicSize = NonNullable<NonNullable<GeoPaths["/v1/coverage"]["get"]["parameters"]["query"]>["size"]>;
export type AgencySize = NonNullable<NonNullable<GeoPaths["/v1/coverage/agency"]["get"]["parameters"]["query"]>["size"]>;
export const PUBLIC_SIZES: readonly PublicSize[] = [1000, 5000];
export const AGENCY_SIZES: readonly AgencySize[] = [250, 1000, 5000];

/** The public coverage page of a program (and a cell size). */
export function coverageHref(slug: string, size?: number): string {
  const q = new URLSearchParams({ agency: slug });
  if (size) q.set("size", String(size));
  return `/coverage?${q.toString()}`;
}

export interface CoverageCell {
  type: "Feature";
  id: string;
  geometry: { type: "Polygon"; coordinates: [number, number][][] };
  properties: { size_m: number; i: number; j: number; cameras: number };
}

export interface CoverageCollection {
  type: "FeatureCollection";
  size_m: number;
  agency?: string;
  min_cameras?: number; // public answers: k, the fewest cameras a shown cell holds
  rounded_to?: number; // public answers: counts are rounded down to a multiple of this
  features: CoverageCell[];
}

/** A hexagon's ground area: the grid (EPSG:6933) is equal-area, so this holds at every latitude. */
export function cellAreaKm2(sizeM: number): number {
  return ((3 * Math.sqrt(3)) / 2) * sizeM * sizeM / 1e6;
}

/** The centre of a cell's hexagon as [lon, lat]: the mean of its six corners. */
export function cellCentre(cell: CoverageCell): [number, number] {
  const ring = cell.geometry.coordinates[0] ?? [];
  const corners = ring.length > 1 && ring[0]![0] === ring[ring.length - 1]![0] && ring[0]![1] === ring[ring.length - 1]![1] ? ring.slice(0, -1) : ring;
  if (!corners.length) return [0, 0];
  const lon = corners.reduce((s, p) => s + p[0], 0) / corners.length;
  const lat = corners.reduce((s, p) => s + p[1], 0) / corners.length;
  return [lon, lat];
}

/** One colour class of the legend: counts from `min` to `max` (null: no upper bound). */
export interface CountClass {
  min: number;
  max: number | null;
  colour: string;
}

// A sequential blue scale (USWDS blues), light for few cameras, dark for many; readable on the plain map.
export const CLASS_COLOURS = ["#d9e8f6", "#73b3e7", "#2378c3", "#162e51"] as const;
export const EMPTY_COLOUR = "#ffbc78"; // the admin's cells with no camera: orange, outside the blue scale
const NICE = [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];

/** Up to four classes for the counts shown (0 excluded: an empty cell is its own class): the first starts at the
 * smallest count, the others at round numbers near the quartiles, so a legend reads "5–9, 10–24, 25 or more". */
export function countClasses(counts: number[]): CountClass[] {
  const positive = counts.filter((n) => n > 0).sort((a, b) => a - b);
  if (!positive.length) return [];
  const least = positive[0]!;
  const nice = (x: number) => NICE.filter((v) => v <= x).pop() ?? least;
  const starts = [least];
  for (const q of [0.25, 0.5, 0.75]) {
    const v = nice(positive[Math.min(positive.length - 1, Math.floor(q * positive.length))]!);
    if (v > starts[starts.length - 1]!) starts.push(v);
  }
  return starts.map((min, i) => ({
    min,
    max: i + 1 < starts.length ? starts[i + 1]! - 1 : null,
    // The darkest colours for the most cameras; a lone class takes a middle blue (the lightest would vanish on a
    // plain map, the darkest would hide the map under it).
    colour: CLASS_COLOURS[starts.length === 1 ? 2 : i + (CLASS_COLOURS.length - starts.length)]!,
  }));
}

export function classOf(classes: CountClass[], n: number): CountClass | null {
  for (let i = classes.length - 1; i >= 0; i--) if (n >= classes[i]!.min) return classes[i]!;
  return null;
}

/** The neighbours of hexagon (i, j) of PostGIS's ST_HexagonGrid: flat-topped, in columns; odd columns sit half
 * a row higher, so a column's side neighbours are rows j and j+1 (odd i) or j-1 and j (even i). */
export function neighbours(i: number, j: number): [number, number][] {
  const side = (i & 1) !== 0 ? j + 1 : j - 1;
  return [
    [i, j - 1],
    [i, j + 1],
    [i - 1, j],
    [i - 1, side],
    [i + 1, j],
    [i + 1, side],
  ];
}

/** A gap: neighbouring cells with no camera, largest first. */
export interface Gap {
  cells: number;
  areaKm2: number;
  centre: [number, number]; // lon, lat: the mean of its cells' centres
}

export function gaps(cells: CoverageCell[]): Gap[] {
  const empty = new Map<string, CoverageCell>();
  for (const c of cells) if (c.properties.cameras === 0) empty.set(`${c.properties.i},${c.properties.j}`, c);
  const seen = new Set<string>();
  const out: Gap[] = [];
  for (const [key, start] of empty) {
    if (seen.has(key)) continue;
    seen.add(key);
    const group: CoverageCell[] = [];
    const queue = [start];
    while (queue.length) {
      const c = queue.pop()!;
      group.push(c);
      for (const [i, j] of neighbours(c.properties.i, c.properties.j)) {
        const k = `${i},${j}`;
        const n = empty.get(k);
        if (n && !seen.has(k)) {
          seen.add(k);
          queue.push(n);
        }
      }
    }
    const centres = group.map(cellCentre);
    out.push({
      cells: group.length,
      areaKm2: group.length * cellAreaKm2(start.properties.size_m),
      centre: [centres.reduce((s, p) => s + p[0], 0) / centres.length, centres.reduce((s, p) => s + p[1], 0) / centres.length],
    });
  }
  return out.sort((a, b) => b.cells - a.cells || a.centre[1] - b.centre[1] || a.centre[0] - b.centre[0]);
}

/** The cells in the order the text alternative lists them: most cameras first, then north to south. */
export function byCount(cells: CoverageCell[]): CoverageCell[] {
  return [...cells].sort((a, b) => b.properties.cameras - a.properties.cameras || cellCentre(b)[1] - cellCentre(a)[1]);
}
