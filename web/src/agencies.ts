/** Agencies as the public sees them: their names by slug (the contracts name agencies by slug in registrations and
 * reports), read once per page view from the public GET /v1/agencies/{slug}, a slug whose name cannot be read
 * shown as is; and the list to choose one from by name (the public GET /v1/agencies), where the form sends its
 * slug — a resident never types an agency's short code. Both are read without the jurisdictions
 * (skipGeometry): a statewide list of boundaries is megabytes a phone need not download to show names. */

import { attempt, registry, type Failure } from "./api/client";
import { h } from "./dom";

const known = new Map<string, string>();

export async function agencyNames(slugs: string[]): Promise<Map<string, string>> {
  const missing = [...new Set(slugs)].filter((s) => !known.has(s));
  await Promise.all(
    missing.map(async (slug) => {
      const outcome = await attempt(() => registry().GET("/v1/agencies/{slug}", { params: { path: { slug }, query: { skipGeometry: true } } }));
      if (outcome.ok) known.set(slug, outcome.data.properties.name);
    }),
  );
  return new Map(slugs.map((s) => [s, known.get(s) ?? s]));
}

export interface AgencyChoice {
  slug: string;
  name: string;
}

// The public list is paged (a `next` link with a cursor): followed to its end, within reason.
const PAGE = 1000;
const MAX_PAGES = 10;
// Read again after a minute at most: a form drawn anew (another language, a step back) does not wait for it.
const FRESH_MS = 60_000;
let recent: { at: number; choices: AgencyChoice[] } | null = null;

/** Every agency, by name: the slugs to send and the names to show. */
export async function agencyChoices(): Promise<{ ok: true; choices: AgencyChoice[] } | { ok: false; failure: Failure }> {
  if (recent && Date.now() - recent.at < FRESH_MS) return { ok: true, choices: recent.choices };
  const choices: AgencyChoice[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const outcome = await attempt(() =>
      registry().GET("/v1/agencies", { params: { query: { limit: PAGE, skipGeometry: true, ...(cursor ? { cursor } : {}) } } }),
    );
    if (!outcome.ok) return outcome;
    for (const a of outcome.data.features) {
      choices.push({ slug: a.properties.slug, name: a.properties.name });
      known.set(a.properties.slug, a.properties.name);
    }
    const next = outcome.data.links?.find((l) => l.rel === "next")?.href;
    cursor = next ? (new URL(next, location.href).searchParams.get("cursor") ?? undefined) : undefined;
    if (!cursor) break;
  }
  choices.sort((a, b) => a.name.localeCompare(b.name) || a.slug.localeCompare(b.slug));
  recent = { at: Date.now(), choices };
  return { ok: true, choices };
}

/** A labelled list of the agencies by name (a native select: typed to, and moved through with the keyboard);
 * `value` is preselected when it is among them (a link that names its agency), and so is the only one there is. */
export function agencyField(o: {
  id: string;
  label: string;
  hint: string;
  choose: string;
  choices: AgencyChoice[];
  value: string;
  onChange: (slug: string) => void;
}): HTMLElement {
  const chosen = o.choices.some((c) => c.slug === o.value) ? o.value : o.choices.length === 1 ? o.choices[0]!.slug : "";
  if (chosen !== o.value) o.onChange(chosen);
  const select = h(
    "select",
    { class: "usa-select", id: o.id, name: o.id, "aria-describedby": `${o.id}-hint` },
    h("option", { value: "" }, o.choose),
    o.choices.map((c) => h("option", { value: c.slug }, c.name)),
  );
  select.value = chosen;
  select.addEventListener("change", () => o.onChange(select.value));
  return h(
    "div",
    { class: "usa-form-group", "data-field": o.id },
    h("label", { class: "usa-label", for: o.id }, o.label),
    h("div", { class: "usa-hint", id: `${o.id}-hint` }, o.hint),
    select,
  );
}
