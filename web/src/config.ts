/** The portal's runtime configuration, read once from the server's /config.json (never built into the bundle,
 * so one build serves any deployment). */

export interface PortalConfig {
  registry_api_url: string;
  geo_query_url: string;
  requests_api_url: string;
  community_api_url: string;
  live_relay_url?: string; // live_relay: agencies' live video, and whether an owner's edge agent is connected
  tile_url: string | null;
  tile_attribution: string | null;
  geocoder_url: string | null;
  languages: string[];
  terms_version: string;
  dev_sign_in: boolean;
  edge_package?: string | null; // the edge agent's source package on this server (/downloads/…), for owners to install
  agency_sign_in?: Record<string, AgencyProvider>; // agency slug → its own identity provider
}

export interface AgencyProvider {
  issuer: string;
  client_id: string;
  scope: string;
}

let current: PortalConfig | null = null;

export async function loadConfig(): Promise<PortalConfig> {
  const response = await fetch("/config.json", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`config.json: ${response.status}`);
  current = (await response.json()) as PortalConfig;
  return current;
}

export function config(): PortalConfig {
  if (!current) throw new Error("the configuration is not loaded yet");
  return current;
}
