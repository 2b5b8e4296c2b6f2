/** An address typed by the resident, found by the configured geocoder (Nominatim's search API) — only when the
 * deployment names one (CANVASS_GEOCODER_URL); it is not a Canvass service, so its small answer is typed here. */

import { config } from "./config";
import { language } from "./i18n";

export interface Found {
  lat: number;
  lon: number;
  name: string;
}

export async function geocode(query: string): Promise<Found[] | null> {
  const base = config().geocoder_url;
  if (!base) return [];
  const url = new URL(base);
  url.searchParams.set("q", query);
  url.searchParams.set("format", "jsonv2");
  url.searchParams.set("limit", "5");
  url.searchParams.set("accept-language", language());
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    const body = (await response.json()) as { lat?: unknown; lon?: unknown; display_name?: unknown }[];
    return body
      .map((r) => ({ lat: Number(r.lat), lon: Number(r.lon), name: typeof r.display_name === "string" ? r.display_name : "" }))
      .filter((r) => Number.isFinite(r.lat) && Number.isFinite(r.lon));
  } catch {
    return null;
  }
}
