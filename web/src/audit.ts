/** The auditor's rules, apart from the page that draws them: who is an auditor (the staff session's role) and
 * the audit trail's filters as the API's query, with the errors of those typed wrong. */

import type { FieldError } from "./forms";
import { t } from "./i18n";
import { staff, type Staff } from "./staff";
import { closeRing, localToIso, parseRing } from "./workspace";

export type Shape = "none" | "circle" | "rectangle" | "polygon";

export function auditor(): Staff | null {
  const s = staff();
  return s && s.role === "auditor" ? s : null;
}

/** The filters as the API's query (empty ones left out); the errors of those typed wrong. */
export function auditQuery(f: {
  since: string;
  until: string;
  actor: string;
  action: string;
  caseNumber: string;
  target: string;
  shape: Shape;
  lat: string;
  lon: string;
  radius: string;
  bbox: string;
  corners: string;
}): { query: Record<string, string>; errors: FieldError[] } {
  const query: Record<string, string> = {};
  const errors: FieldError[] = [];
  const since = f.since ? localToIso(f.since) : null;
  const until = f.until ? localToIso(f.until) : null;
  if (since) query.since = since;
  if (until) query.until = until;
  if (f.actor.trim()) query.actor = f.actor.trim();
  if (f.action.trim()) query.action = f.action.trim();
  if (f.caseNumber.trim()) query.case_number = f.caseNumber.trim();
  if (f.target.trim()) {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(f.target.trim())) {
      errors.push({ field: "au-target", message: t("audit.error_target") });
    } else query.target = f.target.trim();
  }
  if (f.shape === "circle") {
    const lat = Number(f.lat);
    const lon = Number(f.lon);
    const radius = Number(f.radius);
    if (!f.lat || !f.lon || !(Math.abs(lat) <= 90) || !(Math.abs(lon) <= 180)) errors.push({ field: "au-lat", message: t("audit.error_point") });
    else if (!(radius > 0)) errors.push({ field: "au-radius", message: t("audit.error_radius") });
    else {
      query.near = `${lon},${lat}`;
      query.radius_m = String(radius);
    }
  } else if (f.shape === "rectangle") {
    const parts = f.bbox.split(",").map((p) => Number(p.trim()));
    const [w, s, e, n] = parts;
    if (parts.length !== 4 || parts.some((p) => !Number.isFinite(p)) || !(w! < e! && s! < n!)) errors.push({ field: "au-bbox", message: t("audit.error_bbox") });
    else query.bbox = parts.join(",");
  } else if (f.shape === "polygon") {
    const ring = parseRing(f.corners);
    if (!ring || ring.length < 3) errors.push({ field: "au-corners", message: t("audit.error_corners") });
    else query.polygon = JSON.stringify({ type: "Polygon", coordinates: [closeRing(ring)] });
  }
  return { query, errors };
}
