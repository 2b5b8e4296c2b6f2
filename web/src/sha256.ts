/** SHA-256 of a file computed in the browser as it is read, a slice at a time, so a 2 GB video never has to
 * fit in memory (Web Crypto's digest takes the whole input at once; @noble/hashes is incremental). */

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

export const CHUNK_BYTES = 4 * 1024 * 1024;

export interface Sliceable {
  size: number;
  slice(start: number, end: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

export async function sha256Of(
  file: Sliceable,
  onProgress: (readBytes: number) => void = () => {},
  chunkBytes = CHUNK_BYTES,
): Promise<string> {
  const hash = sha256.create();
  for (let offset = 0; offset < file.size; offset += chunkBytes) {
    const end = Math.min(file.size, offset + chunkBytes);
    hash.update(new Uint8Array(await file.slice(offset, end).arrayBuffer()));
    onProgress(end);
  }
  return bytesToHex(hash.digest());
}
