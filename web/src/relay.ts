/** Calls to live_relay, the service that carries a camera's live video from the owner's edge agent to an agency's
 * viewer. Its contract (POST /v1/viewings, GET /v1/viewings/{id}/stream, the owner's
 * GET /v1/registrations/{id}/edge-agent and /viewings) is not among the generated clients: its video is read as a
 * stream, not as JSON. Every failure comes back as the portal's one `Failure`, with the problem's `type` kept. */

import { failureOf, NETWORK_FAILURE, type Failure } from "./api/client";
import { config } from "./config";

export interface Viewing {
  id: string;
  camera_id: string;
  window_id: string;
  registration_id: string;
  window_expires_at: string;
  grant: string;
  grant_expires_at: string;
  stream: string;
}

/** The owner's edge agent as the relay sees it now (GET /v1/registrations/{id}/edge-agent). */
export interface Presence {
  online: boolean;
  agent_id?: string | null;
  connected_at?: string | null;
  cameras?: string[];
  streaming?: string[];
}

/** A viewing of one of the owner's cameras (GET /v1/registrations/{id}/viewings): never who watched. */
export interface OwnerViewing {
  viewing_id: string;
  agency: string;
  camera_id: string;
  window_id: string;
  started_at: string;
  ended_at: string | null;
  seconds?: number | null;
  bytes?: number | null;
  ended_by?: string | null;
}

export type RelayFailure = Failure & { kind: string | null };
export type RelayOutcome<T> = { ok: true; data: T } | { ok: false; failure: RelayFailure };

/** The relay's base URL (the portal's configuration; none when the deployment has no relay). */
export function relayUrl(): string | null {
  return config().live_relay_url ?? null;
}

/** The problem's kind: the last segment of its `type` URI (`no-open-window`, `window-ended`, ...). */
export function problemKind(body: unknown): string | null {
  const type = body && typeof body === "object" && "type" in body ? body.type : null;
  return typeof type === "string" ? (type.split("/").pop() ?? null) : null;
}

export async function relayFailure(response: Response): Promise<RelayFailure> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { ...failureOf(response.status, body), kind: problemKind(body) };
}

async function call<T>(path: string, init: RequestInit): Promise<RelayOutcome<T>> {
  const base = relayUrl();
  if (!base) return { ok: false, failure: { ...NETWORK_FAILURE, kind: "no-relay" } };
  let response: Response;
  try {
    response = await fetch(base + path, init);
  } catch {
    return { ok: false, failure: { ...NETWORK_FAILURE, kind: null } };
  }
  if (!response.ok) return { ok: false, failure: await relayFailure(response) };
  return { ok: true, data: (await response.json()) as T };
}

/** A viewing of a camera: its single-use grant, asked for with the agency user's token. */
export function createViewing(token: string, cameraId: string): Promise<RelayOutcome<Viewing>> {
  return call<Viewing>("/v1/viewings", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ camera_id: cameraId }),
  });
}

/** Whether the registration's edge agent is connected to the relay now (the owner's credential). */
export function agentPresence(credential: string, registrationId: string): Promise<RelayOutcome<Presence>> {
  return call<Presence>(`/v1/registrations/${encodeURIComponent(registrationId)}/edge-agent`, {
    headers: { Authorization: `Bearer ${credential}`, Accept: "application/json" },
  });
}

/** Each viewing of the registration's cameras, newest first (the owner's credential). */
export function ownerViewings(credential: string, registrationId: string): Promise<RelayOutcome<OwnerViewing[]>> {
  return call<OwnerViewing[]>(`/v1/registrations/${encodeURIComponent(registrationId)}/viewings`, {
    headers: { Authorization: `Bearer ${credential}`, Accept: "application/json" },
  });
}

/** The relay's WebSocket address for the agent's configuration (wss:// for https://). */
export function agentRelayUrl(): string {
  const base = relayUrl() ?? location.origin;
  return base.replace(/^http/, "ws") + "/v1/edge-agents/connect";
}
