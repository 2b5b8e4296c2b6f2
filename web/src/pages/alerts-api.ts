/** community_api's typed client (tips and alerts), generated from its committed contract, and the one call the
 * typed client cannot make: a multipart form with files (a tip and its follow-ups). */

import createClient from "openapi-fetch";
import { failureOf, NETWORK_FAILURE, type Outcome } from "../api/client";
import { config } from "../config";
import type { components, paths } from "../api/community";

export type TipCreated = components["schemas"]["TipCreated"];
export type TipsterView = components["schemas"]["TipsterView"];
export type SubscriptionView = components["schemas"]["SubscriptionView"];
export type AlertView = components["schemas"]["AlertView"];
export type Category = components["schemas"]["SubscriptionInput"]["categories"][number];
export const CATEGORIES: Category[] = ["crime", "traffic", "weather", "missing_person", "community", "emergency"];

let client: ReturnType<typeof createClient<paths>> | null = null;

export function community(): ReturnType<typeof createClient<paths>> {
  client ??= createClient<paths>({ baseUrl: config().community_api_url });
  return client;
}

/** POSTs a multipart form to community_api (the browser sets its boundary), folded into an Outcome. */
export async function postForm<T>(path: string, form: FormData, headers: Record<string, string> = {}): Promise<Outcome<T>> {
  let response: Response;
  try {
    response = await fetch(`${config().community_api_url}${path}`, { method: "POST", body: form, headers });
  } catch {
    return { ok: false, failure: NETWORK_FAILURE };
  }
  const body: unknown = await response.json().catch(() => null);
  if (response.ok) return { ok: true, data: body as T, response };
  return { ok: false, failure: failureOf(response.status, body) };
}
