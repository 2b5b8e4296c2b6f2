/** The typed clients of the three services, generated from the committed contracts (openapi/*.json): a path,
 * parameter or field the contracts do not have fails the type check. Every call the portal makes goes through
 * here, and every failure comes back as one `Failure` the pages know how to show. */

import createClient from "openapi-fetch";
import { config } from "../config";
import type { components as RegistryComponents, paths as RegistryPaths } from "./registry";
import type { paths as GeoPaths } from "./geo";
import type { components as RequestsComponents, paths as RequestsPaths } from "./requests";

export type Registration = RegistryComponents["schemas"]["RegistrationFeature"];
export type RegistrationCreated = RegistryComponents["schemas"]["RegistrationCreated"];
export type RegistrationCreate = RegistryComponents["schemas"]["RegistrationCreate"];
export type RegistrationPatch = RegistryComponents["schemas"]["RegistrationPatch"];
// As the reads give it: the geometry is null only when asked for names (skipGeometry).
export type Agency = RegistryComponents["schemas"]["AgencyReadFeature"];
export type Camera = RegistryComponents["schemas"]["CameraOut"];
export type OwnerRequest = RequestsComponents["schemas"]["OwnerRequestOut"];
export type Evidence = RequestsComponents["schemas"]["EvidenceOut"];
export type Transparency = RequestsComponents["schemas"]["TransparencyReport"];
export type InvalidParam = RegistryComponents["schemas"]["InvalidParam"];

/** What went wrong with a call: a problem document from the service, or no answer at all. */
export interface Failure {
  status: number; // 0: the network failed (no answer)
  title: string;
  detail: string | null;
  kind: string | null; // the problem's type, its last segment ("idempotency-key-reused")
  errors: InvalidParam[];
  retryable: boolean; // a network failure or a 503 may succeed when tried again
}

export type Outcome<T> = { ok: true; data: T; response: Response } | { ok: false; failure: Failure };

let clients: {
  registry: ReturnType<typeof createClient<RegistryPaths>>;
  geo: ReturnType<typeof createClient<GeoPaths>>;
  requests: ReturnType<typeof createClient<RequestsPaths>>;
} | null = null;

function all() {
  if (!clients) {
    const c = config();
    clients = {
      registry: createClient<RegistryPaths>({ baseUrl: c.registry_api_url }),
      geo: createClient<GeoPaths>({ baseUrl: c.geo_query_url }),
      requests: createClient<RequestsPaths>({ baseUrl: c.requests_api_url }),
    };
  }
  return clients;
}

export const registry = () => all().registry;
export const geo = () => all().geo;
export const requests = () => all().requests;

export function bearer(credential: string): { Authorization: string } {
  return { Authorization: `Bearer ${credential}` };
}

export function failureOf(status: number, body: unknown): Failure {
  const problem = (body && typeof body === "object" ? body : {}) as {
    type?: unknown;
    title?: unknown;
    detail?: unknown;
    errors?: unknown;
  };
  const errors = Array.isArray(problem.errors)
    ? (problem.errors as unknown[]).filter(
        (e): e is InvalidParam =>
          !!e && typeof e === "object" && "pointer" in e && typeof e.pointer === "string" && "reason" in e && typeof e.reason === "string",
      )
    : [];
  return {
    status,
    title: typeof problem.title === "string" ? problem.title : "",
    detail: typeof problem.detail === "string" ? problem.detail : null,
    kind: typeof problem.type === "string" ? (problem.type.split("/").pop() ?? null) : null,
    errors,
    retryable: status === 0 || status === 503 || status === 502 || status === 504,
  };
}

export const NETWORK_FAILURE: Failure = {
  status: 0,
  title: "",
  detail: null,
  kind: null,
  errors: [],
  retryable: true,
};

/** Runs one openapi-fetch call and folds its three outcomes (data, problem, no answer) into one. */
export async function attempt<T>(
  call: () => Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<Outcome<T>> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call();
  } catch {
    return { ok: false, failure: NETWORK_FAILURE };
  }
  if (result.response.ok) {
    return { ok: true, data: result.data as T, response: result.response };
  }
  return { ok: false, failure: failureOf(result.response.status, result.error) };
}

/** The ETag to send back in If-Match: the version the page last read. */
export function ifMatch(version: number): { "If-Match": string } {
  return { "If-Match": `"${version}"` };
}
