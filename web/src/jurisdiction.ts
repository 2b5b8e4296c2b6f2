/** Reading an agency's jurisdiction from a GeoJSON file, before the API judges its shape. */

import type { components } from "./api/registry";
import type { MessageKey } from "./i18n";

export type Geometry = components["schemas"]["Polygon"] | components["schemas"]["MultiPolygon"];

/** The polygon a GeoJSON text holds: a Polygon or MultiPolygon, bare or as the geometry of a Feature (or of a
 * FeatureCollection's only feature). The shape itself (closed rings, no crossing) is the API's to judge. */
export function jurisdictionOf(text: string): { geometry: Geometry } | { problem: MessageKey } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: "program.file_not_json" };
  }
  const obj = (v: unknown): Record<string, unknown> | null => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
  let node = obj(value);
  if (node?.type === "FeatureCollection") {
    const features = Array.isArray(node.features) ? node.features : [];
    if (features.length !== 1) return { problem: "program.file_one_feature" };
    node = obj(features[0]);
  }
  if (node?.type === "Feature") node = obj(node.geometry);
  if (!node || (node.type !== "Polygon" && node.type !== "MultiPolygon") || !Array.isArray(node.coordinates)) {
    return { problem: "program.file_not_polygon" };
  }
  return { geometry: node as unknown as Geometry };
}
