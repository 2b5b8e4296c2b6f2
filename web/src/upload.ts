/** Uploading footage with a progress bar. fetch() reports no upload progress, so this one call uses
 * XMLHttpRequest; its answer is still typed from the contract (the 201 of POST /v1/owner/evidence/{id}). */

import { config } from "./config";
import { failureOf, NETWORK_FAILURE, type Evidence, type Outcome } from "./api/client";
import type { paths } from "./api/requests";

type Stored = paths["/v1/owner/evidence/{request_id}"]["post"]["responses"][201]["content"]["application/json"];

export function uploadEvidence(
  requestId: string,
  credential: string,
  file: File,
  cameraId: string | null,
  onProgress: (sent: number, total: number) => void,
): Promise<Outcome<Evidence>> {
  return new Promise((resolve) => {
    const form = new FormData();
    if (cameraId) form.append("camera_id", cameraId);
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${config().requests_api_url}/v1/owner/evidence/${encodeURIComponent(requestId)}`);
    xhr.setRequestHeader("Authorization", `Bearer ${credential}`);
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener("error", () => resolve({ ok: false, failure: NETWORK_FAILURE }));
    xhr.addEventListener("load", () => {
      let body: unknown;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 201) {
        resolve({ ok: true, data: body as Stored, response: new Response(null, { status: 201 }) });
      } else {
        resolve({ ok: false, failure: failureOf(xhr.status, body) });
      }
    });
    xhr.send(form);
  });
}
