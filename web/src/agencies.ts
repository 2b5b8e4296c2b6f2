/** Agencies' public names by slug (the contracts name agencies by slug in registrations and reports), read once
 * per page view from the public GET /v1/agencies/{slug}; a slug whose name cannot be read is shown as is. */

import { attempt, registry } from "./api/client";

const known = new Map<string, string>();

export async function agencyNames(slugs: string[]): Promise<Map<string, string>> {
  const missing = [...new Set(slugs)].filter((s) => !known.has(s));
  await Promise.all(
    missing.map(async (slug) => {
      const outcome = await attempt(() => registry().GET("/v1/agencies/{slug}", { params: { path: { slug } } }));
      if (outcome.ok) known.set(slug, outcome.data.properties.name);
    }),
  );
  return new Map(slugs.map((s) => [s, known.get(s) ?? s]));
}
